"""A project deleted while its events wait in the queue: they are discarded, not stored,
counted or parked, and the rest of their batch is stored as usual."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import delete, func, select

from tests.capture import exception_event
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.models import DroppedEvents, ExceptionEvent, QueuedRequest
from trapline.projects.models import Project
from trapline.worker import Worker


def test_a_deleted_projects_queued_events_and_drop_counts_are_discarded(
    database: Database, tenant: Tenant, other_tenant: Tenant, caplog: pytest.LogCaptureFixture
):
    def request(project_id: int) -> queue.NewRequest:
        return queue.NewRequest(project_id, utcnow(), None, orjson.dumps([exception_event(), exception_event()]))

    queue.enqueue(database, [request(tenant.project_id), request(other_tenant.project_id)])
    if database.queue_apart:  # PostgreSQL counts drops at the door, with the project there
        queue.enqueue(database, [], drops=[queue.NewDrop(other_tenant.project_id, "rate_limited_project", 4)])
    with database.session(write=True) as session:
        session.execute(delete(Project).where(Project.id == other_tenant.project_id))
        session.commit()

    result = Worker(database).drain()

    assert (result.stored, result.failed_requests) == (2, 0)
    with database.session(write=False) as session:
        stored = session.execute(select(ExceptionEvent.project_id, func.count()).group_by(ExceptionEvent.project_id))
        assert dict(stored.all()) == {tenant.project_id: 2}
        assert session.scalars(select(DroppedEvents)).all() == []
    with database.queue.session(write=False) as session:
        assert session.scalars(select(QueuedRequest.id)).all() == []  # nothing parked
    [record] = [r for r in caplog.records if r.getMessage() == "events of deleted projects discarded"]
    assert record.__dict__["projects"] == [other_tenant.project_id]
