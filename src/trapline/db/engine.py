"""Engines and sessions for SQLite and PostgreSQL.

SQLite needs care to be a good server database:

* WAL lets readers run while one writer writes; ``foreign_keys`` is off by default in SQLite;
  ``busy_timeout`` makes a second writer wait for the lock instead of failing at once.
* Python's sqlite3 module opens transactions lazily and in DEFERRED mode, so a transaction
  that reads and then writes must *upgrade* its lock, and two such transactions deadlock
  (SQLITE_BUSY, which busy_timeout cannot fix). We take transaction control away from the
  driver and emit ``BEGIN`` ourselves: ``BEGIN IMMEDIATE`` for sessions that will write, so
  they queue for the write lock up front, plain ``BEGIN`` for read-only sessions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from trapline.db.checkpoint import WalCheckpointer, autocheckpoint_pages, sync_log

__all__ = ["PAGE_SIZE", "QUEUE_PAGE_SIZE", "Database", "make_engine"]

_SQLITE_BEGIN = "trapline_sqlite_begin"
# SQLite's page for a new database file: its default, 4 kB. Every stored event adds an entry
# to each of exception_event's indexes, and the entries of a batch land on pages all over them
# (the uuid index: posthog-python's uuids are random; the fingerprint index: one place per
# issue), so once the indexes outgrow a batch, a commit writes about one page per event per
# index, and a page as large again to the database file at the checkpoint. Measured with
# 1,000,000 events stored and random uuids (bench/pipeline_bench.py's batches): 159-185 µs of
# CPU per event with 4 kB pages against 186-213 with 16 kB; with 10,000,000, 160-197 against
# 173-201. On an empty database 16 kB pages cost ~3% less (150 against 154 µs).
PAGE_SIZE = 4096
# The queue's file (``events.queue_file``) takes 16 kB pages: its rows come and go in id order,
# so a commit fills whole pages, and a queued request (~3 kB of JSON) fills most of a 4 kB
# page: a page and a system call per row. Measured apart: capture's flush
# 20 → 13.5 µs of CPU per request (system time 10 → 4); 8 and 32 kB did no better, and with
# 64 kB the log's checkpoints stalled capture.
QUEUE_PAGE_SIZE = 16_384


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(
    url: str,
    *,
    busy_timeout_seconds: float = 10.0,
    pool_size: int = 10,
    reprocessable: bool = False,
    page_size: int = PAGE_SIZE,
) -> Engine:
    """An engine for ``url`` with Trapline's connection settings applied.

    ``reprocessable``: every write of this engine's users can be lost in a power cut without
    losing anything: a worker's commit stores events and removes their queue rows together,
    so losing it puts the rows back to be processed again. Such engines skip waiting for the
    disk on commit (SQLite ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``);
    a later durable commit, such as ingestion's next one, flushes them anyway.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_seconds},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )
        _configure_sqlite(engine, busy_timeout_seconds, "NORMAL" if reprocessable else "FULL", page_size)
        return engine
    # Bound how long a request waits on a lock or a runaway query before failing loudly.
    options = f"-c lock_timeout={int(busy_timeout_seconds * 1000)}"
    if reprocessable:
        options += " -c synchronous_commit=off"
    return create_engine(
        url,
        json_serializer=_json_dumps,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": options},
    )


def _configure_sqlite(engine: Engine, busy_timeout_seconds: float, synchronous: str, page_size: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see module doc
        cursor = dbapi_connection.cursor()
        # Only a file without content yet takes it (before WAL mode fixes the size for good);
        # an existing file keeps its own.
        cursor.execute(f"PRAGMA page_size={page_size}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        # FULL: a transaction that reported success is on disk even if the machine loses power.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Workers checkpoint in the background (db/checkpoint.py); this bounds the log without them.
        file_page_size = cursor.execute("PRAGMA page_size").fetchone()[0]  # an old file keeps its own
        cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages(file_page_size)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        deadline = time.monotonic() + busy_timeout_seconds
        while True:
            try:
                connection.exec_driver_sql(f"BEGIN {mode}")
                return
            except OperationalError as error:
                # SQLite answers "locked" without calling its busy handler in a few races
                # (a connection opening while the last one closes and checkpoints the WAL):
                # seen once in CI under load. Waiting out the busy timeout ourselves makes
                # those behave like the ordinary wait for the lock.
                if "locked" not in str(error.orig) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.002)


class Database:
    """The engine plus the two kinds of session the application opens.

    ``queue``: where the ingest queue lives. A SQLite file keeps it in a file of its own (see
    ``trapline.events.queue_file``), so that capture's commits never wait for SQLite's one
    write lock while a worker stores a batch; elsewhere it is this database itself.
    """

    def __init__(self, engine: Engine, queue: Database | None = None) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.queue: Database = queue if queue is not None else self
        writer = engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"}) if self.is_sqlite else engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool) -> Iterator[Session]:
        """A session whose uncommitted work is rolled back when it closes.

        Closing (rather than rolling back) keeps the loaded attributes of the objects it
        returned, so they stay readable after the block.
        """
        factory = self._write if write else self._read
        with factory() as session:
            yield session

    @property
    def queue_apart(self) -> bool:
        """Whether the queue is in a database of its own (its commits are not this one's)."""
        return self.queue is not self

    @property
    def path(self) -> str | None:
        """The SQLite file (None on PostgreSQL and in memory)."""
        path = self.engine.url.database
        return path if self.is_sqlite and path and path != ":memory:" else None

    def sync_log(self) -> None:
        """Make what was committed to this SQLite file so far survive a power loss, whatever
        ``synchronous`` it was committed with (nothing to do on PostgreSQL or in memory)."""
        if self.path is not None:
            sync_log(self.path)

    def checkpointers(self) -> list[WalCheckpointer]:
        """Background checkpointers for this SQLite file and the queue's (none on PostgreSQL)."""
        files = [self] + ([self.queue] if self.queue_apart else [])
        return [WalCheckpointer(db.path) for db in files if db.path is not None]

    def dispose(self) -> None:
        self.engine.dispose()
        if self.queue_apart:
            self.queue.engine.dispose()
