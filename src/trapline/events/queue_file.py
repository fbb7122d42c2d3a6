"""The ingest queue's own SQLite file, beside the database file (``trapline.db`` →
``trapline.queue.db``).

SQLite lets one transaction write at a time per file. With the queue in the database file,
capture's commits (every accepted request) queued behind a worker's batch (hundreds of
events, their issues and rollups), and the worker behind capture's: measured, capture spent a
third of its time waiting for the lock and the machine sat half idle. In a file of its own
the queue has its own lock: capture waits only for claims and acks, which are short.

The price is that storing a batch and removing its requests from the queue are two commits
in two files, where they were one. ``trapline.events.queue`` keeps processing exactly-once
across them: the batch's transaction records its queue ids in ``ingest_done`` (a second
store of the same request fails there), the database's log is synced before the queue rows
go, and a claim drops rows already done. Ids in this file are never reused (AUTOINCREMENT),
so a done mark cannot match a later request.

Session signals (what a browser session did that an autocapture trigger waits for) are kept
here too: capture writes them with the requests that carry them, in one transaction, so a
worker that claims a request sees what its session did, and capture never waits for the
database's lock (signals in the database had to be committed there first, behind a batch).
For the same reason the counts of what capture refuses at the door travel here as requests
without events (``door_drops``).

PostgreSQL, and SQLite in memory, keep the queue in the database: their queue and batch
commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from trapline.db.engine import Database
from trapline.events.sqlite_lock import write_transaction

__all__ = [
    "NEXT_ID_NEVER_REUSED",
    "QUEUE_DDL",
    "SIGNAL_DDL",
    "adopt_queued",
    "adopt_signals",
    "create_tables",
    "forget_done",
    "queue_path",
]

log = logging.getLogger(__name__)

# The tables of migration 0002, with ids that are never reused.
QUEUE_DDL = (
    """CREATE TABLE IF NOT EXISTS ingest_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL,
        received_at DATETIME NOT NULL,
        sent_at VARCHAR(64),
        event_count INTEGER NOT NULL,
        claimed_by VARCHAR(64),
        claimed_until DATETIME,
        attempts INTEGER NOT NULL,
        failed_at DATETIME,
        last_error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS ingest_payload (
        id INTEGER PRIMARY KEY REFERENCES ingest_queue (id) ON DELETE CASCADE,
        payload BLOB NOT NULL
    )""",
)


# The session_signal table of the database (migration 0008), without its project's foreign key:
# a deleted project's signals expire with the rest.
SIGNAL_DDL = (
    """CREATE TABLE IF NOT EXISTS session_signal (
        project_id INTEGER NOT NULL,
        session_id VARCHAR(200) NOT NULL,
        signal VARCHAR(300) NOT NULL,
        first_at DATETIME NOT NULL,
        expires_at DATETIME NOT NULL,
        PRIMARY KEY (project_id, session_id, signal)
    )""",
    "CREATE INDEX IF NOT EXISTS ix_session_signal_expires_at ON session_signal (expires_at)",
)


def queue_path(url: str) -> Path | None:
    """The queue's file for a database URL: beside a SQLite file, else None (no file of its own)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    path = Path(parsed.database)
    return path.with_name(f"{path.stem}.queue{path.suffix or '.db'}")


def create_tables(engine: Engine) -> bool:
    """Create the queue's tables if missing; returns whether the queue's were (a new queue file)."""
    with engine.begin() as connection:
        if not _has_table(connection.connection, "session_signal"):  # new, or from before signals moved here
            for statement in SIGNAL_DDL:
                connection.exec_driver_sql(statement)
        if _has_table(connection.connection, "ingest_queue"):
            return False
        for statement in QUEUE_DDL:
            connection.exec_driver_sql(statement)
    return True


# AUTOINCREMENT's high-water mark: ids of deleted rows are never handed out again.
NEXT_ID_NEVER_REUSED = (
    "SELECT max(coalesce(max(id), 0), coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ingest_queue'), 0)) + 1 "
    "FROM ingest_queue"
)


def forget_done(db: Database) -> None:
    """Delete every done mark (for a queue file that starts over; see ``open_database``)."""
    with db.engine.raw_connection() as connection:
        if not _has_table(connection, "ingest_done"):
            return  # not migrated yet: no marks
        with write_transaction(connection) as cursor:
            cursor.execute("DELETE FROM ingest_done")


def adopt_queued(db: Database) -> None:
    """Move requests an older version left queued in the database into the queue's own file,
    oldest first, a chunk at a time (each synced into the queue before it leaves the database).
    A crash between the two commits leaves a chunk in both: its events are stored once (by
    uuid), though counts of drops and usage may see them twice; upgrades are rare."""
    if not db.queue_apart:
        return
    with db.engine.raw_connection() as connection, db.queue.engine.raw_connection() as queue_connection:
        if not _has_table(connection, "ingest_queue"):
            return  # a new database, not migrated yet
        while True:
            with write_transaction(connection) as cursor:
                rows = cursor.execute(_LEFT_IN_DATABASE).fetchall()
                if not rows:
                    return
                _adopt_sqlite(queue_connection, rows)
                db.queue.sync_log()
                marks = ", ".join("?" * len(rows))
                cursor.execute(f"DELETE FROM ingest_queue WHERE id IN ({marks})", [row[0] for row in rows])


def adopt_signals(db: Database) -> None:
    """Move session signals an older version kept in the database into the queue's file (merged
    with any there: the earliest time, the latest expiry). Committed into the queue before they
    leave the database; a crash between the two leaves them in both, which merges the same."""
    if not db.queue_apart:
        return
    with db.engine.raw_connection() as connection, db.queue.engine.raw_connection() as queue_connection:
        if not _has_table(connection, "session_signal") or connection.execute(_ANY_SIGNAL).fetchone() is None:
            return  # not migrated yet, or nothing to move (every start but the first)
        with write_transaction(connection) as cursor:
            rows = cursor.execute(
                "SELECT project_id, session_id, signal, first_at, expires_at FROM session_signal"
            ).fetchall()
            with write_transaction(queue_connection) as queue_cursor:
                queue_cursor.executemany(_MERGE_SIGNAL, rows)
            db.queue.sync_log()
            cursor.execute("DELETE FROM session_signal")


def _has_table(connection: Any, name: str) -> bool:
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


_ANY_SIGNAL = "SELECT 1 FROM session_signal LIMIT 1"
_MERGE_SIGNAL = (
    "INSERT INTO session_signal (project_id, session_id, signal, first_at, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (project_id, session_id, signal) DO UPDATE SET "
    "first_at = min(session_signal.first_at, excluded.first_at), "
    "expires_at = max(session_signal.expires_at, excluded.expires_at)"
)

_LEFT_IN_DATABASE = (
    "SELECT q.id, q.project_id, q.received_at, q.sent_at, q.event_count, q.attempts, q.failed_at, q.last_error, "
    "p.payload FROM ingest_queue q JOIN ingest_payload p ON p.id = q.id ORDER BY q.id LIMIT 1000"
)


def _adopt_sqlite(connection: Any, rows: Sequence[Any]) -> None:
    with write_transaction(connection) as cursor:
        first = cursor.execute(NEXT_ID_NEVER_REUSED).fetchone()[0]
        moved = [(first + n, *row[1:]) for n, row in enumerate(rows)]
        cursor.executemany(
            "INSERT INTO ingest_queue (id, project_id, received_at, sent_at, event_count, attempts, failed_at, "
            "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [row[:8] for row in moved],
        )
        cursor.executemany(
            "INSERT INTO ingest_payload (id, payload) VALUES (?, ?)", [(row[0], row[8]) for row in moved]
        )
