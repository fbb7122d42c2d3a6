"""Drops counted at the door (refusals, Sentry items that are not stored): on SQLite they
travel through the queue's file (capture's side: test_queue_file), and a worker adds them to
the counters exactly once (see trapline.events.door_drops)."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select, update

from tests.capture import exception_event
from tests.factories import Tenant
from trapline.db.engine import Database
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
