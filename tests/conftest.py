"""Shared fixtures.

Every test that touches the database runs once per backend: SQLite always, and PostgreSQL
too when TRAPLINE_TEST_DATABASE_URL points at a server (CI sets it). Each test session gets
its own freshly migrated database; each test starts from empty tables.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.factories import Tenant, make_tenant
from trapline.alerts import make_senders
from trapline.app import create_app
from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.models import Base
from trapline.db.open import open_database
from trapline.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("TRAPLINE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    # Settings must never come from the developer's own environment or .env file.
    for name in list(os.environ):
        if name.startswith("TRAPLINE_") and name != "TRAPLINE_TEST_DATABASE_URL":
            del os.environ[name]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not POSTGRES_URL:
        pytest.skip("TRAPLINE_TEST_DATABASE_URL is not set")
    return POSTGRES_URL


def create_postgres_database(admin_url: str) -> str:
    """A new empty database on the test server; returns its URL."""
    name = f"trapline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "trapline.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    url = create_postgres_database(POSTGRES_URL)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture(scope="session")
def shared_database(database_url: str) -> Iterator[Database]:
    # As the server opens it: on SQLite, the queue in its own file.
    db = open_database(database_url, pool_size=5)
    yield db
    db.dispose()


@pytest.fixture
def database(shared_database: Database) -> Iterator[Database]:
    yield shared_database
    _empty_tables(shared_database)


def _empty_tables(db: Database) -> None:
    # DELETE beats TRUNCATE on tables this small; ids keep counting up, which is harmless.
    tables = list(reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # One round trip for all of them (10 ms → 1.6 ms a test, thousands of tests).
            connection.exec_driver_sql(";".join(f'DELETE FROM "{table.name}"' for table in tables))
            return
        for table in tables:
            connection.execute(table.delete())
    if db.queue_apart:
        with db.queue.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM ingest_queue")
            connection.exec_driver_sql("DELETE FROM session_signal")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    # No background workers: tests that need events processed drain the queue themselves.
    return load_settings(
        data_dir=tmp_path_factory.mktemp("data"), database_url=database_url, public_url="http://testserver", workers=0
    )


@pytest.fixture(scope="session")
def app(settings: Settings, shared_database: Database) -> FastAPI:
    # One app per backend: building one costs more than most tests do.
    return create_app(settings, shared_database)


@pytest.fixture
def client(app: FastAPI, database: Database) -> Iterator[TestClient]:
    # Ids come back after the tables are emptied (SQLite): what the app cached by project
    # id belongs to an earlier test.
    app.capture.controls.clear()  # type: ignore[attr-defined]
    app.state.sdk_config.clear()
    app.sentry.keys.clear()  # type: ignore[attr-defined]
    app.state.login_throttle.clear()  # a test's failed sign-ins must not lock out the next's
    app.state.pressure.clear()  # a project's spent budget, a test's queue bound
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def tenant(database: Database) -> Tenant:
    """An organization with a user, a project and one key per scope set."""
    with database.session(write=True) as session:
        return make_tenant(session)


@pytest.fixture
def other_tenant(database: Database) -> Tenant:
    with database.session(write=True) as session:
        return make_tenant(session, name="Other")


@pytest.fixture(params=["/api/environments", "/api/projects"])
def prefix(request: pytest.FixtureRequest) -> str:
    """Both path prefixes PostHog serves the project API under."""
    value: str = request.param
    return value


def open_settings(app: FastAPI, **overrides: Any) -> Settings:
    """The app's settings with alerts allowed to reach this machine (the tests' receivers)."""
    settings: Settings = app.state.settings
    return settings.model_copy(update={"alerts_allow_private_networks": True, **overrides})


@pytest.fixture
def local_alerts(app: FastAPI) -> Iterator[Settings]:
    """Alerts may reach 127.0.0.1 (the receivers the tests start) for the length of the test."""
    saved = app.state.settings, app.state.senders
    app.state.settings = open_settings(app)
    app.state.senders = make_senders(app.state.settings)
    try:
        yield app.state.settings
    finally:
        app.state.settings, app.state.senders = saved


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    # Parameters made with uuid4() differ between processes (gzip bodies too); pytest-xdist's workers must
    # collect the same test ids, so a UUID inside a parameter's id reads as "<uuid>".
    # Gzip bodies carry the time they were made in their header: they read as their size.
    if isinstance(val, str) and _UUID.search(val):
        return _UUID.sub("<uuid>", val)
    if isinstance(val, bytes) and val.startswith(b"\x1f\x8b"):
        return f"<gzip {len(val)} bytes>"
    return None
