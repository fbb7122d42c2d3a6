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
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

__all__ = ["QUEUE_DDL", "create_tables", "queue_path"]

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
