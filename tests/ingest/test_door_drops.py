"""Drops counted at the door (refusals, Sentry items that are not stored): on SQLite they
travel through the queue's file, so capture never waits for the database's write lock, and a
worker adds them to the counters exactly once (see trapline.events.door_drops)."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update

from tests.capture import exception_event
from tests.factories import Tenant
from trapline.db import migrate
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.models import DroppedEvents, QueuedRequest
from trapline.usage.models import UsageDay
from trapline.worker import Worker


def dropped(database: Database) -> dict[str, int]:
    with database.session(write=False) as session:
        return {row.reason: row.count for row in session.scalars(select(DroppedEvents))}


def usage(database: Database) -> dict[str, int]:
    with database.session(write=False) as session:
        return {row.outcome: row.count for row in session.scalars(select(UsageDay))}


def test_a_refusal_is_counted_while_a_worker_holds_the_database_write_lock(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path / 'trapline.db'}", busy_timeout_seconds=0.5)
    try:
        migrate.upgrade(db.engine)
        writer = queue.SqliteWriter(db.queue)
        holder = sqlite3.connect(tmp_path / "trapline.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # what a worker storing a batch holds
        try:
            started = time.monotonic()
            queue.enqueue(db, [], drops=[queue.NewDrop(1, "rate_limited_project", 5, "over")], writer=writer)
            # In the database this waited out the busy timeout (the batch) and failed.
            assert time.monotonic() - started < 0.4
        finally:
            holder.execute("COMMIT")
            holder.close()
            writer.close()
        with db.queue.session(write=False) as session:
            [row] = session.execute(select(QueuedRequest.project_id, QueuedRequest.event_count)).all()
        assert tuple(row) == (1, 0)  # a count, not events
    finally:
        db.dispose()


def test_a_worker_adds_the_door_drops_to_the_counters_and_the_days_usage(database: Database, tenant: Tenant):
    event = queue.NewRequest(tenant.project_id, utcnow(), None, orjson.dumps([exception_event()]))
    queue.enqueue(
        database,
        [event],
        drops=[
            queue.NewDrop(tenant.project_id, "rate_limited_project", 3, "over 10 per hour"),
            queue.NewDrop(tenant.project_id, "sentry_session", 2),
            queue.NewDrop(tenant.project_id, "rate_limited_project", 4, "over 10 per hour"),
        ],
    )

    result = Worker(database).drain()

    assert result.stored == 1
    assert result.dropped == {}  # the pipeline dropped nothing itself
    assert dropped(database) == {"rate_limited_project": 7, "sentry_session": 2}
    assert usage(database) == {"stored": 1, "rate_limited_project": 7, "sentry_session": 2}
    with database.session(write=False) as session:
        row = session.scalars(select(DroppedEvents).where(DroppedEvents.reason == "rate_limited_project")).one()
    assert row.last_detail == "over 10 per hour"
    assert row.last_dropped_at is not None and utcnow() - row.last_dropped_at < timedelta(minutes=1)


def test_door_drops_are_counted_once_when_a_worker_dies_between_its_two_commits(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    if not database.queue_apart:
        pytest.skip("PostgreSQL counts drops at the door itself")
    queue.enqueue(database, [], drops=[queue.NewDrop(tenant.project_id, "sentry_client_report", 6)])
    # The batch commits its counts, then the worker dies before the queue forgets the request.
    monkeypatch.setattr(queue, "acked", lambda db, ids: None)
    Worker(database).drain()
    monkeypatch.undo()
    with database.queue.session(write=True) as session:  # its lease runs out
        session.execute(update(QueuedRequest).values(claimed_until=utcnow() - timedelta(seconds=1)))
        session.commit()

    Worker(database).drain()

    assert dropped(database) == {"sentry_client_report": 6}
    assert usage(database) == {"sentry_client_report": 6}
    with database.queue.session(write=False) as session:
        assert session.scalars(select(QueuedRequest.id)).all() == []
