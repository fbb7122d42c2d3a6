"""Capture's commit waits for SQLite's write lock in short steps, up to the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.queue import NewRequest


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'lock.db'}", busy_timeout_seconds=2))
    migrate.upgrade(db.engine)
    return db


def _request() -> NewRequest:
    return NewRequest(project_id=1, received_at=utcnow(), sent_at=None, payload=b"[]", event_count=1)


def _queued(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM ingest_queue").scalar_one())


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def test_enqueue_waits_for_another_writer_then_commits(sqlite_db: Database, tmp_path: Path) -> None:
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "lock.db", 0.3, held))
    holder.start()
    held.wait()
    started = time.monotonic()
    queue.enqueue(sqlite_db, [_request()])
    waited = time.monotonic() - started
    holder.join()
    assert _queued(sqlite_db) == 1
    assert 0.2 <= waited < 1.5
    # The connection's own busy timeout is back for everything else it is used for.
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 2000


def test_enqueue_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'lock.db'}", busy_timeout_seconds=0.2))
    migrate.upgrade(db.engine)
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "lock.db", 1.0, held))
    holder.start()
    held.wait()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        queue.enqueue(db, [_request()])
    holder.join()
    queue.enqueue(db, [_request()])
    assert _queued(db) == 1
