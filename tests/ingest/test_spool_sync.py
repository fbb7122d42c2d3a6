"""Capture's commits are synced to disk after SQLite's write lock is given back, and before
the requests are answered: as durable as ``synchronous=FULL``, without making workers wait
for the disk."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from trapline.accounts.models import Organization
from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.types import utcnow
from trapline.events.queue import NewRequest, SqliteWriter, enqueue
from trapline.projects.models import Project


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Database, Path, int]]:
    path = tmp_path / "trapline.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    database = Database(engine)
    with database.session(write=True) as session:
        organization = Organization(name="o")
        session.add(organization)
        session.flush()
        project = Project(organization_id=organization.id, name="p", api_token="phc_sync")
        session.add(project)
        session.commit()
        project_id = project.id
    yield database, path, project_id
    database.dispose()


def test_a_flush_is_synced_after_its_commit_with_the_write_lock_free(
    sqlite_file: tuple[Database, Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, path, project_id = sqlite_file
    seen: list[tuple[int, int, bool]] = []
    real_fsync = os.fdatasync

    def watched_fsync(descriptor: int) -> None:
        # Another connection sees the rows (committed) and takes the write lock (free).
        other = sqlite3.connect(path, timeout=0)
        try:
            queued = other.execute("SELECT count(*) FROM ingest_queue").fetchone()[0]
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            lock_free = True
        except sqlite3.OperationalError:
            lock_free = False
        finally:
            other.close()
        seen.append((os.fstat(descriptor).st_ino, queued, lock_free))
        real_fsync(descriptor)

    writer = SqliteWriter(database)
    try:
        assert writer.connection.cursor().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        monkeypatch.setattr(os, "fdatasync", watched_fsync)
        enqueue(database, [NewRequest(project_id, utcnow(), None, b'{"batch": []}')], writer=writer)
    finally:
        writer.close()
    assert seen == [(os.stat(f"{path}-wal").st_ino, 1, True)]


def test_the_writers_connection_goes_back_to_the_pool_as_it_came(sqlite_file: tuple[Database, Path, int]) -> None:
    database, _path, project_id = sqlite_file
    writer = SqliteWriter(database)
    enqueue(database, [NewRequest(project_id, utcnow(), None, b"{}")], writer=writer)
    writer.close()
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        # FULL (2) and the engine's busy timeout, as every other pooled connection has them.
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        connection.close()
