"""The background checkpointer copies the log into the database file; commits no longer do."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from trapline.db.checkpoint import AUTOCHECKPOINT_BYTES
from trapline.db.engine import Database, make_engine
from trapline.db.open import open_database

ROWS = 5000  # ~1,250 pages of 16 kB (20 MB): past SQLite's default of 1,000 pages, under our 64 MB


def _fill(db: Database, *, create: bool = True) -> None:
    if create:
        with db.session(write=True) as session:
            session.execute(text("CREATE TABLE blob_rows (id INTEGER PRIMARY KEY, body TEXT)"))
            session.commit()
    for _ in range(0, ROWS, 100):
        with db.session(write=True) as session:
            session.execute(
                text("INSERT INTO blob_rows (body) VALUES (:body)"), [{"body": "x" * 4000} for _ in range(100)]
            )
            session.commit()


def test_commits_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = Database(make_engine(f"sqlite:///{path}"))
    try:
        with db.engine.connect() as connection:
            page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() * page_size == AUTOCHECKPOINT_BYTES
        _fill(db)
        # Past 1,000 pages SQLite's default would have copied them in a commit by now.
        assert os.path.getsize(path) < 100 * 4096

        [checkpointer] = db.checkpointers()
        checkpointer.interval = 0.02
        checkpointer.start()
        try:
            deadline = time.monotonic() + 10
            while os.path.getsize(path) < ROWS * 4000 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            checkpointer.stop()
        assert os.path.getsize(path) >= ROWS * 4000
        with db.session(write=False) as session:
            assert session.execute(text("SELECT count(*) FROM blob_rows")).scalar() == ROWS
    finally:
        db.dispose()


def test_no_checkpointer_on_postgresql() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    assert Database(engine).checkpointers() == []


def test_a_locked_database_is_reported_once_and_checkpointed_after(tmp_path: Path, caplog) -> None:
    path = tmp_path / "db.sqlite"
    db = Database(make_engine(f"sqlite:///{path}"))
    try:
        _fill(db)
        db.engine.dispose()  # an exclusive lock needs every other connection closed
        [checkpointer] = db.checkpointers()
        checkpointer.interval = 0.02
        holder = sqlite3.connect(path, isolation_level=None)
        # An exclusive lock (what a vacuum takes) makes every checkpoint fail meanwhile.
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("COMMIT")
        checkpointer.start()
        try:
            time.sleep(0.3)
            holder.close()
            size = os.path.getsize(path)
            _fill(db, create=False)  # as many pages again, into the log
            deadline = time.monotonic() + 10
            while os.path.getsize(path) < size + ROWS * 4000 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            checkpointer.stop()
        assert os.path.getsize(path) >= size + ROWS * 4000
        failures = [r for r in caplog.records if r.getMessage() == "background checkpoint failed"]
        assert len(failures) == 1
    finally:
        db.dispose()


def test_the_queue_file_has_its_own_checkpointer(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'trapline.db'}")
    try:
        assert [c.path for c in db.checkpointers()] == [
            str(tmp_path / "trapline.db"),
            str(tmp_path / "trapline.queue.db"),
        ]
    finally:
        db.dispose()
