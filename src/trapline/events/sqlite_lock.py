"""Writing to SQLite from capture and the queue: waiting for a file's one write lock in short
steps, write transactions on driver connections, and capture's own connection that commits
without waiting for the disk and syncs the log itself (``SqliteWriter``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trapline.db.checkpoint import sync_log
from trapline.db.engine import Database

__all__ = ["SqliteWriter", "write_transaction"]

# How often capture's commit looks again for SQLite's write lock while another writer (a worker
# storing a batch) holds it.
_LOCK_POLL_SECONDS = 0.0005


def _begin_immediate(cursor: Any, timeout_ms: int | None = None) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in steps of ``_LOCK_POLL_SECONDS`` up to
    the busy timeout: ``timeout_ms`` on a connection whose own is 0 (``SqliteWriter``), else the
    connection's own, set aside meanwhile.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, so a request
    waiting for a worker's batch to commit waited on average half a step more than needed, and
    every request of the flush waited with it.
    """
    if timeout_ms is not None:
        _poll_begin_immediate(cursor, timeout_ms)
        return
    own_ms = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    cursor.execute("PRAGMA busy_timeout = 0")
    try:
        _poll_begin_immediate(cursor, own_ms)
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {int(own_ms)}")


@contextmanager
def write_transaction(connection: Any, timeout_ms: int | None = None) -> Iterator[Any]:
    """A cursor of a SQLite driver connection in a ``BEGIN IMMEDIATE`` transaction (see
    ``_begin_immediate``), committed when the block ends and rolled back if it raises."""
    cursor = connection.cursor()
    _begin_immediate(cursor, timeout_ms)
    try:
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (it does on some SQLITE_FULL errors): a second
        # ROLLBACK would fail and hide why the first statement did.
        if connection.in_transaction:
            cursor.execute("ROLLBACK")
        raise


def _poll_begin_immediate(cursor: Any, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            cursor.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(_LOCK_POLL_SECONDS)


class SqliteWriter:
    """A pooled SQLite connection kept by capture's flusher for its life, its busy timeout 0
    (``enqueue`` waits for the lock itself): no checkout, reset and busy-timeout switch per
    flush, each a round trip through the driver that gives the interpreter lock away.

    Its commits do not wait for the disk (``synchronous=NORMAL``); ``sync`` does, after the
    write lock is given back. With ``FULL`` SQLite syncs the log while it holds the lock, and
    that sync (~2 ms here) was most of the time capture held it: workers storing batches
    waited behind it. Syncing the log file ourselves after the commit makes the transaction
    as durable as ``FULL`` before its requests are answered. The log is replayed in order and
    chained by checksums, so a later transaction (a worker's) never survives without this one.
    """

    def __init__(self, db: Database) -> None:
        self.connection: Any = db.engine.raw_connection()
        cursor = self.connection.cursor()
        self.timeout_ms = int(cursor.execute("PRAGMA busy_timeout").fetchone()[0])
        cursor.execute("PRAGMA busy_timeout = 0")
        self._synchronous = int(cursor.execute("PRAGMA synchronous").fetchone()[0])
        path = db.engine.url.database
        journal = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        # Only a file in WAL mode has a log to sync; anything else keeps SQLite's own syncs.
        self._path = path if path and path != ":memory:" and journal == "wal" else None
        if self._path is not None:
            cursor.execute("PRAGMA synchronous = NORMAL")

    def sync(self) -> None:
        """Make every transaction committed so far survive a power loss."""
        if self._path is not None:
            sync_log(self._path)

    def close(self) -> None:
        """Give the connection back to the pool as it was."""
        cursor = self.connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {self.timeout_ms}")
        cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
        self.connection.close()
