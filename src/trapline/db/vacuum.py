"""Giving disk space back: SQLite's free pages, a few at a time, and a one-off full vacuum.

SQLite keeps the pages of deleted rows in a free list and reuses them, but only shrinks the
file in an ``auto_vacuum`` mode, and that mode can only be chosen before the first table
exists (``journal_mode=WAL`` already writes the header, so the connection's settings come too
late for it) or by a ``VACUUM`` that rewrites the whole file. So a new database is switched to
``INCREMENTAL`` and vacuumed while it is still empty (instant), and retention then frees
pages with ``incremental_vacuum`` a bounded number per statement, so that the write lock is
never held long. A database made before that is in mode ``NONE`` until ``trapline vacuum``.

PostgreSQL's autovacuum makes deleted rows' space reusable by itself; ``vacuum_full`` runs a
plain ``VACUUM (ANALYZE)`` there, which takes no lock that writers wait for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from trapline.db.engine import PAGE_SIZE

__all__ = ["SpaceReport", "auto_vacuum_mode", "checkpoint", "free_bytes", "prepare_new", "vacuum_full", "vacuum_step"]

_MODES = {0: "none", 1: "full", 2: "incremental"}


@contextmanager
def _driver(engine: Engine) -> Iterator[sqlite3.Connection]:
    # The driver's own connection: these statements must run outside a transaction (the
    # engine's sessions start one with BEGIN), and incremental_vacuum frees one page per
    # step, which only executescript steps to the end.
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        yield driver
    finally:
        raw.close()


def _leave_wal(connection: sqlite3.Connection) -> bool:
    """Switch to a rollback journal; whether it could (not while another connection is open)."""
    try:
        return str(connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]).lower() == "delete"
    except sqlite3.OperationalError:
        return False


def _pragma(connection: sqlite3.Connection, name: str) -> int:
    row = connection.execute(f"PRAGMA {name}").fetchone()
    return int(row[0]) if row else 0


def auto_vacuum_mode(engine: Engine) -> str | None:
    """SQLite's ``auto_vacuum`` mode (``none``, ``full``, ``incremental``); None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    with _driver(engine) as connection:
        return _MODES.get(_pragma(connection, "auto_vacuum"), "none")


def prepare_new(engine: Engine) -> bool:
    """Make an SQLite database that has no table yet give space back incrementally; returns
    whether it did (False for PostgreSQL and for databases with tables)."""
    if engine.dialect.name != "sqlite":
        return False
    with _driver(engine) as connection:
        if _pragma(connection, "auto_vacuum") != 0 or connection.execute("SELECT 1 FROM sqlite_master").fetchone():
            return False
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.execute("VACUUM")
    return True


def free_bytes(engine: Engine) -> int:
    """The size of the pages on SQLite's free list (0 on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return 0
    with _driver(engine) as connection:
        return _pragma(connection, "freelist_count") * _pragma(connection, "page_size")


def vacuum_step(engine: Engine, max_bytes: int) -> int:
    """Give up to ``max_bytes`` of free pages back to the file system (SQLite, ``incremental``
    mode; one short write transaction); returns the bytes of pages still free after it."""
    with _driver(engine) as connection:
        page_size = _pragma(connection, "page_size")
        connection.executescript(f"PRAGMA incremental_vacuum({max(1, int(max_bytes) // page_size)})")
        return _pragma(connection, "freelist_count") * page_size


def checkpoint(engine: Engine) -> None:
    """Copy what the WAL holds into the database file, without waiting for anyone (SQLite's
    ``PASSIVE`` checkpoint; a no-op on PostgreSQL).

    A connection that deleted much calls this itself: otherwise the next commit that takes the
    WAL past its size (often ingestion's) does that copying, and the file only shrinks after
    an incremental vacuum once it is done.
    """
    if engine.dialect.name != "sqlite":
        return
    with _driver(engine) as connection:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


@dataclass(frozen=True)
class SpaceReport:
    mode_before: str | None
    mode_after: str | None
    # The database file's size (SQLite; None on PostgreSQL), after a checkpoint of the WAL.
    bytes_before: int | None
    bytes_after: int | None
    # SQLite's page size, which the rewrite brings to a new file's (``engine.PAGE_SIZE``, or the
    # queue file's ``QUEUE_PAGE_SIZE``).
    page_size_before: int | None = None
    page_size_after: int | None = None


def vacuum_full(engine: Engine, page_size: int = PAGE_SIZE) -> SpaceReport:
    """Rewrite an SQLite database compactly, in ``incremental`` mode from then on and with
    ``page_size``, a new file's (it needs free disk space as large as the database, and blocks writers
    until done); on PostgreSQL, ``VACUUM (ANALYZE)``."""
    if engine.dialect.name != "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
        return SpaceReport(None, None, None, None)
    path = Path(engine.url.database or "")
    # The pool's idle connections keep the file open, and a file open elsewhere keeps its page
    # size (see below): close them first.
    engine.dispose()
    with _driver(engine) as connection:
        before = _MODES.get(_pragma(connection, "auto_vacuum"), "none")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size_before = path.stat().st_size if path.is_file() else None
        page_before = _pragma(connection, "page_size")
        # A file in WAL mode keeps its page size through a VACUUM: only one with a rollback
        # journal takes a new one. Leaving WAL needs the file to itself; with another
        # connection open it stays in WAL, and keeps its pages.
        resized = page_before != page_size and _leave_wal(connection)
        if resized:
            connection.execute(f"PRAGMA page_size={page_size}")
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.execute("VACUUM")
        if resized:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = _MODES.get(_pragma(connection, "auto_vacuum"), "none")
        page_after = _pragma(connection, "page_size")
    return SpaceReport(
        before, after, size_before, path.stat().st_size if path.is_file() else None, page_before, page_after
    )
