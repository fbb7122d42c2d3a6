"""SQLite as a server database: concurrent writers queue instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import func, select

from trapline.accounts.models import Organization
from trapline.db import migrate
from trapline.db.checkpoint import AUTOCHECKPOINT_BYTES
from trapline.db.engine import PAGE_SIZE, QUEUE_PAGE_SIZE, Database, make_engine
from trapline.db.open import open_database


def test_concurrent_read_then_write_transactions_do_not_deadlock(tmp_path: Path):
    db = Database(make_engine(f"sqlite:///{tmp_path / 'c.db'}", busy_timeout_seconds=30))
    migrate.upgrade(db.engine)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                with db.session(write=True) as session:
                    # read first, then write: the pattern that makes DEFERRED transactions fail
                    count = session.scalar(select(func.count()).select_from(Organization)) or 0
                    session.add(Organization(name=f"{n}-{i}-{count}"))
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Organization)) == 150
    db.dispose()


def test_objects_stay_readable_after_their_session_closes(tmp_path: Path):
    db = Database(make_engine(f"sqlite:///{tmp_path / 'd.db'}"))
    migrate.upgrade(db.engine)
    with db.session(write=True) as session:
        org = Organization(name="kept")
        session.add(org)
        session.commit()
    with db.session(write=False) as session:
        loaded = session.scalars(select(Organization)).one()
    assert loaded.name == "kept" and loaded.created_at.tzinfo is not None
    db.dispose()


def _pragma(path: Path, name: str) -> int:
    connection = sqlite3.connect(path)
    try:
        value: int = connection.execute(f"PRAGMA {name}").fetchone()[0]
        return value
    finally:
        connection.close()


def test_new_files_get_their_pages_and_old_files_keep_theirs(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path / 'trapline.db'}")
    try:
        migrate.upgrade(db.engine)
    finally:
        db.dispose()
    # The database's indexes take entries all over them: small pages; the queue's rows come
    # and go in order: large ones.
    assert _pragma(tmp_path / "trapline.db", "page_size") == PAGE_SIZE == 4096
    assert _pragma(tmp_path / "trapline.queue.db", "page_size") == QUEUE_PAGE_SIZE == 16_384

    old = tmp_path / "old.db"
    connection = sqlite3.connect(old)
    connection.execute("PRAGMA page_size = 16384")  # as the previous version made databases
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    engine = make_engine(f"sqlite:///{old}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA page_size").scalar() == 16_384
            # The log's bound is the same in bytes whatever the file's pages.
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == AUTOCHECKPOINT_BYTES // 16_384
    finally:
        engine.dispose()
