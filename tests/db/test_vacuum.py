"""SQLite gives space back: new databases vacuum incrementally, old ones after `trapline vacuum`."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import make_issue, make_tenant
from trapline.cli import main
from trapline.db import migrate, vacuum
from trapline.db.engine import PAGE_SIZE, QUEUE_PAGE_SIZE, Database, make_engine
from trapline.db.types import utcnow
from trapline.events.models import ExceptionEvent
from trapline.retention import Retention, RetentionOptions, runner


def fresh(path: Path) -> Database:
    db = Database(make_engine(f"sqlite:///{path}"))
    migrate.upgrade(db.engine)
    return db


def fill(db: Database, events: int, days_old: int) -> None:
    with db.session(write=True) as session:
        tenant = make_tenant(session)
        make_issue(session, tenant.project_id, ["fp"])
        when = utcnow() - timedelta(days=days_old)
        session.add_all(
            ExceptionEvent(
                project_id=tenant.project_id,
                uuid=uuid.uuid4(),
                timestamp=when,
                distinct_id="user",
                fingerprint="fp",
                issue_id=uuid.uuid4(),
                search_text="typeerror " * 50,
                properties={"$exception_values": ["x" * 2000]},
            )
            for _ in range(events)
        )
        session.commit()


def page_count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA page_count").fetchone()[0])


def test_a_new_database_is_made_to_vacuum_incrementally(tmp_path: Path):
    db = fresh(tmp_path / "new.db")
    assert vacuum.auto_vacuum_mode(db.engine) == "incremental"
    # Once it has tables, nothing changes it but a full vacuum.
    assert vacuum.prepare_new(db.engine) is False
    db.dispose()


def test_retention_gives_the_pages_of_deleted_events_back(tmp_path: Path):
    path = tmp_path / "space.db"
    db = fresh(path)
    fill(db, 6000, days_old=100)
    before = page_count(path)

    purged = Retention(db, RetentionOptions(batch_size=500)).run(paced=False)

    assert purged.events_expired == 6000
    assert purged.bytes_freed > 0
    assert page_count(path) < before / 2
    assert vacuum.free_bytes(db.engine) <= runner.VACUUM_BYTES
    db.dispose()


def old_style_file(path: Path, page_size: int) -> None:
    """A SQLite file in WAL mode with ``page_size`` pages and auto_vacuum NONE, as made before
    the mode was chosen."""
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA page_size={page_size}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE early (x)")  # a table first: too late for the mode
        connection.commit()
    finally:
        connection.close()  # not left to the garbage collector: it would keep the file open


def old_style_database(path: Path, page_size: int = PAGE_SIZE) -> Database:
    """A database as made before auto_vacuum was chosen (mode NONE)."""
    old_style_file(path, page_size)
    return fresh(path)


def test_an_old_database_keeps_its_size_and_says_how_to_fix_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    db = old_style_database(tmp_path / "old.db")
    assert vacuum.auto_vacuum_mode(db.engine) == "none"
    monkeypatch.setattr(runner, "_hinted_vacuum", False)
    with caplog.at_level(logging.WARNING, logger="trapline.retention"):
        for _ in range(2):
            fill(db, 10, days_old=100)
            assert Retention(db, RetentionOptions()).run(paced=False).bytes_freed == 0
    assert sum("trapline vacuum" in record.getMessage() for record in caplog.records) == 1
    db.dispose()


def test_trapline_vacuum_switches_old_files_and_shrinks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "data" / "trapline.db"
    path.parent.mkdir()
    # The database with the 16 kB pages, and the queue's file with the 4 kB pages, that earlier
    # versions gave them.
    db = old_style_database(path, page_size=16_384)
    old_style_file(path.parent / "trapline.queue.db", 4096)
    fill(db, 2000, days_old=100)
    Retention(db, RetentionOptions()).run(paced=False)
    db.dispose()
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(path.parent))
    monkeypatch.setenv("TRAPLINE_DATABASE_URL", f"sqlite:///{path}")
    before = page_count(path)

    assert main(["vacuum"]) == 0

    out = capsys.readouterr().out
    assert "auto_vacuum none → incremental" in out
    assert "SQLite: " in out and "pages 16 kB → 4 kB" in out.split("SQLite: ")[1].splitlines()[0], out
    assert "pages 4 kB → 16 kB" in out.split("its queue file: ")[1].splitlines()[0], out
    assert page_count(path) * PAGE_SIZE < before * 16_384 / 2
    db = fresh(path)
    assert vacuum.auto_vacuum_mode(db.engine) == "incremental"
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA page_size").scalar() == PAGE_SIZE
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()
    queue = sqlite3.connect(path.parent / "trapline.queue.db")
    try:
        assert queue.execute("PRAGMA page_size").fetchone()[0] == QUEUE_PAGE_SIZE
        assert queue.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        queue.close()
