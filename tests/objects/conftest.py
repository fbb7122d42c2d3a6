"""Stores to test: memory, a folder, and S3 as served by moto's server, started here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from tests.server import free_port
from trapline.api.errors import install_error_handlers
from trapline.objects.local import LocalStore
from trapline.objects.memory import InMemoryStore
from trapline.objects.routes import router
from trapline.objects.s3 import S3Store
from trapline.objects.store import ObjectStore, open_store
from trapline.settings import Settings, load_settings

BUCKET = "trapline-objects"
REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIATRAPLINETEST"
SECRET_ACCESS_KEY = "trapline-test-secret-access-key"
SECRET = b"s" * 48
BASE_URL = "http://testserver"


class Clock:
    """A clock tests move by hand, so that expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url
    server.stop()


def s3_settings(data_dir: Path, endpoint: str, prefix: str = "") -> Settings:
    return load_settings(
        data_dir=data_dir,
        object_store_url=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture
def s3_prefix() -> str:
    # The bucket lives as long as the session; a prefix of its own keeps each test's keys apart.
    return f"tests/{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def s3_session_store(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> S3Store:
    # Built from settings, once: a boto3 client takes ~0.3 s to make (it loads S3's API model).
    store = open_store(s3_settings(tmp_path_factory.mktemp("s3"), s3_endpoint))
    assert isinstance(store, S3Store)
    return store


@pytest.fixture
def s3_store(s3_session_store: S3Store, s3_prefix: str) -> S3Store:
    return S3Store(BUCKET, s3_prefix, s3_session_store.client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local_store(tmp_path: Path, clock: Clock) -> LocalStore:
    return LocalStore(tmp_path / "objects", secret=SECRET, base_url=BASE_URL, clock=clock)


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "memory":
        return InMemoryStore()
    fixture: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return fixture


def objects_app(store: LocalStore) -> FastAPI:
    """The object routes alone, with the API's error bodies, in front of ``store``."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.objects = store
    app.include_router(router)
    return app


@pytest.fixture
def local_http(local_store: LocalStore) -> Iterator[TestClient]:
    with TestClient(objects_app(local_store), base_url=BASE_URL) as client:
        yield client
