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

from trapline.db.checkpoint import sync_log
from trapline.db.engine import Database
from trapline.events.sqlite_lock import write_transaction

__all__ = ["NEXT_ID_NEVER_REUSED", "QUEUE_DDL", "adopt_queued", "create_tables", "forget_done", "queue_path"]

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
    """Create the queue's tables if missing; returns whether they were (a new queue file)."""
    with engine.begin() as connection:
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_queue'"
        if connection.exec_driver_sql(exists).first() is not None:
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
    connection = db.engine.raw_connection()
    try:
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_done'"
        if connection.cursor().execute(table).fetchone() is None:
            return  # not migrated yet: no marks
        with write_transaction(connection) as cursor:
            cursor.execute("DELETE FROM ingest_done")
    finally:
        connection.close()


def adopt_queued(db: Database) -> None:
    """Move requests an older version left queued in the database into the queue's own file,
    oldest first, a chunk at a time (each synced into the queue before it leaves the database).
    A crash between the two commits leaves a chunk in both: its events are stored once (by
    uuid), though counts of drops and usage may see them twice; upgrades are rare."""
    if not db.queue_apart:
        return
    connection = db.engine.raw_connection()
    queue_connection = db.queue.engine.raw_connection()
    try:
        cursor = connection.cursor()
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_queue'"
        if cursor.execute(table).fetchone() is None:
            return  # a new database, not migrated yet
        while True:
            with write_transaction(connection) as cursor:
                rows = cursor.execute(_LEFT_IN_DATABASE).fetchall()
                if not rows:
                    return
                _adopt_sqlite(queue_connection, rows)
                if db.queue.path is not None:
                    sync_log(db.queue.path)
                marks = ", ".join("?" * len(rows))
                cursor.execute(f"DELETE FROM ingest_queue WHERE id IN ({marks})", [row[0] for row in rows])
    finally:
        queue_connection.close()
        connection.close()


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
