"""Opening the database: the engine, and on SQLite the queue's file beside it."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Engine, event

from trapline.db import vacuum
from trapline.db.engine import PAGE_SIZE, QUEUE_PAGE_SIZE, Database, make_engine
from trapline.events.queue_file import adopt_queued, adopt_signals, create_tables, forget_done, queue_path

__all__ = ["open_database"]


def open_database(
    url: str, *, busy_timeout_seconds: float = 10.0, pool_size: int = 10, reprocessable: bool = False
) -> Database:
    """The database at ``url``; a SQLite file gets its queue in a file of its own (see
    ``trapline.events.queue_file``), created if missing, with any requests an older version
    left queued in the database (and its session signals) moved there."""

    def engine(at: str, page_size: int) -> Engine:
        return make_engine(
            at,
            busy_timeout_seconds=busy_timeout_seconds,
            pool_size=pool_size,
            reprocessable=reprocessable,
            page_size=page_size,
        )

    main = engine(url, PAGE_SIZE)
    path = queue_path(url)
    if path is None:
        return Database(main)
    queue_engine = engine(f"sqlite:///{path}", QUEUE_PAGE_SIZE)
    event.listen(queue_engine, "connect", _overwrite_only_for_free)
    vacuum.prepare_new(queue_engine)  # a drained backlog's pages can go back (retention)
    created = create_tables(queue_engine)
    db = Database(main, Database(queue_engine))
    if created:
        # A new queue file hands out ids from 1 again: marks left from a queue file that was
        # deleted would match its requests and drop them unprocessed.
        forget_done(db)
    adopt_signals(db)  # before the requests: a worker that sees one sees its session's signals
    adopt_queued(db)
    return db


def _overwrite_only_for_free(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Debian builds SQLite with secure_delete on: every deleted row is overwritten with zeros,
    # and the queue deletes every request it took, a write of each payload's pages again
    # (the events themselves are kept in the database anyway). FAST zeroes what is deleted
    # only on pages that are written anyway.
    dbapi_connection.execute("PRAGMA secure_delete = FAST")
