"""Presigned URLs used the way PostHog's CLI uses them, against the local store and S3 (moto).

The CLI asks the API for a presigned POST, sends a multipart form (every field as a text part,
then the file as ``file``) and treats any 2xx as success; the server later reads the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from trapline.objects.local import LocalStore
from trapline.objects.s3 import S3Store
from trapline.objects.store import ObjectStore, PresignedPost

KEY = "symbolsets/0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11"
SOURCE_MAP = b'{"version":3,"sources":["app.ts"],"names":[],"mappings":"AAAA"}' + bytes(range(256)) * 64


@dataclass
class Remote:
    store: ObjectStore
    # TestClient is an httpx2 client here, not an httpx one; both send the same requests.
    http: httpx.Client | TestClient


@pytest.fixture(params=["local", "s3"])
def remote(request: pytest.FixtureRequest) -> Iterator[Remote]:
    if request.param == "local":
        local_http: TestClient = request.getfixturevalue("local_http")
        local_store: LocalStore = request.getfixturevalue("local_store")
        yield Remote(local_store, local_http)
        return
    s3_store: S3Store = request.getfixturevalue("s3_store")
    with httpx.Client(timeout=10) as http:
        yield Remote(s3_store, http)


def cli_upload(http: httpx.Client | TestClient, post: PresignedPost, data: bytes) -> Any:
    """What posthog-cli does with a presigned POST: the fields, then the file part."""
    return http.post(post.url, data=post.fields, files={"file": ("chunk.js.map", data, "application/octet-stream")})


def test_cli_upload_then_presigned_download_returns_the_same_bytes(remote: Remote):
    post = remote.store.presigned_post(KEY, max_size=len(SOURCE_MAP), expires_in=300)
    response = cli_upload(remote.http, post, SOURCE_MAP)
    assert response.status_code == 204, response.text
    assert remote.store.get(KEY) == SOURCE_MAP
    assert remote.store.size(KEY) == len(SOURCE_MAP)

    download = remote.http.get(remote.store.presigned_get(KEY, expires_in=300))
    assert download.status_code == 200
    assert download.content == SOURCE_MAP


def test_an_upload_replaces_the_object(remote: Remote):
    remote.store.put(KEY, b"old contents, longer than the new")
    post = remote.store.presigned_post(KEY, max_size=1024, expires_in=300)
    assert cli_upload(remote.http, post, b"new").status_code == 204
    assert remote.store.get(KEY) == b"new"


def test_an_empty_file_can_be_uploaded(remote: Remote):
    post = remote.store.presigned_post(KEY, max_size=1024, expires_in=300)
    assert cli_upload(remote.http, post, b"").status_code == 204
    assert remote.store.get(KEY) == b""


def test_a_presigned_download_of_a_missing_object_is_404(remote: Remote):
    response = remote.http.get(remote.store.presigned_get("symbolsets/missing", expires_in=300))
    assert response.status_code == 404
