"""Migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from trapline.db import migrate
from trapline.db.engine import make_engine
from trapline.db.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("TRAPLINE_TEST_DATABASE_URL is not set")
    url = create_postgres_database(POSTGRES_URL)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_postgres_database(POSTGRES_URL, url)


def test_upgrade_reaches_head_and_matches_the_models(empty_engine: Engine):
    assert migrate.current_revision(empty_engine) is None
    assert not migrate.is_up_to_date(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    with empty_engine.connect() as connection:
        opts = {"compare_type": True, "include_object": migrate.for_dialect(connection.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(connection, opts=opts), Base.metadata)
    assert diff == [], "the models changed without a migration: run alembic revision --autogenerate"


def test_upgrade_twice_is_a_no_op(empty_engine: Engine):
    migrate.upgrade(empty_engine)
    tables = set(inspect(empty_engine).get_table_names())
    migrate.upgrade(empty_engine)
    assert set(inspect(empty_engine).get_table_names()) == tables
    assert {"project", "personal_api_key", "grouping_rule", "issue_fingerprint"} <= tables


def test_concurrent_upgrades_run_the_migration_once(empty_engine: Engine):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(empty_engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrate.is_up_to_date(empty_engine)


def test_sqlite_connections_are_configured_for_a_server(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_seconds=3)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 3000
    engine.dispose()


def test_downgrade_to_base_and_back(empty_engine: Engine):
    migrate.upgrade(empty_engine)
    from alembic import command

    with empty_engine.begin() as connection:
        config = migrate._config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.is_up_to_date(empty_engine)


def test_projects_made_before_sentry_dsns_get_their_own_key(empty_engine: Engine):
    from alembic import command

    with empty_engine.begin() as connection:
        config = migrate._config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        org = "0192c2a0-0000-7000-8000-000000000001"
        connection.execute(text(f"INSERT INTO organization (id, name, created_at) VALUES ('{org}', 'o', '2026-01-01')"))
        for n in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO project (id, organization_id, name, api_token, autocapture_exceptions_opt_in,"
                    f" created_at) VALUES ({n}, '{org}', 'p{n}', 'phc_{n}', true, '2026-01-01')"
                )
            )
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        keys = [row[0] for row in connection.execute(text("SELECT sentry_public_key FROM project ORDER BY id"))]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)
