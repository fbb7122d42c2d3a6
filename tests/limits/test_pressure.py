"""Back-pressure at the door: what capture and Sentry's endpoint answer when the project's
budget is spent, the queue is backed up or the disk is low."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.capture import drain, exception_event, post_batch
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.diskspace import DiskSpace
from trapline.events.models import DroppedEvents, QueuedRequest
from trapline.ingest.pressure import Pressure
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.limits.rates import Limit
from trapline.sentry.endpoint import sentry_rate_limit_headers


def spend_budget(database: Database, project_id: int, *, value: int = 10, minutes: int = 60) -> None:
    bucket = Limit(value, minutes).bucket(datetime.now(UTC))
    with database.session(write=True) as session:
        session.merge(
            ErrorTrackingSettings(
                project_id=project_id,
                project_rate_limit_value=value,
                project_rate_limit_bucket_size_minutes=minutes,
            )
        )
        session.merge(
            RateLimitCounter(
                project_id=project_id, scope="", bucket_start=bucket.start, bucket_end=bucket.end, count=value
            )
        )
        session.commit()


def pressure(app: FastAPI) -> Pressure:
    found: Pressure = app.state.pressure
    return found


def drops(database: Database) -> dict[str, int]:
    drain(database)  # with SQLite's queue in its own file, a worker carries the door's counts
    with database.session(write=False) as session:
        return {row.reason: row.count for row in session.scalars(select(DroppedEvents))}


def queued(database: Database) -> int:
    """Events queued (a queue may also hold counts of drops, which have none)."""
    with database.queue.session(write=False) as session:
        return session.scalar(select(func.coalesce(func.sum(QueuedRequest.event_count), 0)))


def test_a_spent_project_budget_is_answered_429_until_the_bucket_ends(
    app: FastAPI, client: TestClient, tenant: Tenant, database: Database
):
    spend_budget(database, tenant.project_id)
    pressure(app).read_project(tenant.project_id)
    response = post_batch(client, tenant.project_token, exception_event(), exception_event())
    assert response.status_code == 429
    assert response.json() == {
        "type": "throttled",
        "code": "rate_limited_project",
        "detail": response.json()["detail"],
        "attr": None,
        "quota_limited": ["exceptionEvent"],
    }
    assert "10 events per 60 minutes" in response.json()["detail"]
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 3600
    assert queued(database) == 0  # no event: only their count
    assert drops(database) == {"rate_limited_project": 2}


def test_a_request_without_exceptions_is_not_refused(
    app: FastAPI, client: TestClient, tenant: Tenant, database: Database
):
    spend_budget(database, tenant.project_id)
    pressure(app).read_project(tenant.project_id)
    pageview = {"event": "$pageview", "distinct_id": "u", "properties": {}}
    assert post_batch(client, tenant.project_token, pageview).status_code == 200


def test_an_unspent_budget_lets_events_in(app: FastAPI, client: TestClient, tenant: Tenant, database: Database):
    spend_budget(database, tenant.project_id, value=10)
    with database.session(write=True) as session:
        for counter in session.scalars(select(RateLimitCounter)):
            counter.count = 9
        session.commit()
    pressure(app).read_project(tenant.project_id)
    assert post_batch(client, tenant.project_token, exception_event()).status_code == 200
    assert queued(database) == 1


def test_a_backed_up_queue_answers_503_with_retry_after(
    app: FastAPI, client: TestClient, tenant: Tenant, database: Database
):
    for _ in range(3):
        assert post_batch(client, tenant.project_token, exception_event(), exception_event()).status_code == 200
    door = pressure(app)
    door.queue_max_events = 5
    assert door.read_backlog().events == 6
    response = post_batch(client, tenant.project_token, exception_event())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["code"] == "queue_backlog"
    assert queued(database) == 6
    assert drops(database) == {}  # the SDK keeps them and sends them again


def test_an_old_backlog_answers_503(app: FastAPI, client: TestClient, tenant: Tenant, database: Database):
    assert post_batch(client, tenant.project_token, exception_event()).status_code == 200
    with database.queue.session(write=True) as session:
        for row in session.scalars(select(QueuedRequest)):
            row.received_at = datetime.now(UTC) - timedelta(hours=1)
        session.commit()
    door = pressure(app)
    door.queue_max_wait_seconds = 600
    assert door.read_backlog().oldest_wait_seconds >= 3500
    response = post_batch(client, tenant.project_token, exception_event())
    assert (response.status_code, response.json()["code"]) == (503, "queue_backlog")


def test_a_low_disk_answers_503(app: FastAPI, client: TestClient, tenant: Tenant, tmp_path: Path):
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    pressure(app).disk = DiskSpace([tmp_path], free * 2)
    response = post_batch(client, tenant.project_token, exception_event())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert response.json()["code"] == "disk_low"
    assert "TRAPLINE_DISK_MIN_FREE" in response.json()["detail"]
    assert client.get("/_readyz").json()["accepting_events"] is False


def test_readyz_reports_the_queue(client: TestClient, tenant: Tenant):
    assert post_batch(client, tenant.project_token, exception_event(), exception_event()).status_code == 200
    body = client.get("/_readyz").json()
    assert body["accepting_events"] is True
    assert body["queue"]["events_waiting"] == 2
    assert body["disk"] == "ok"


@pytest.mark.parametrize("path", ["/api/{id}/envelope/", "/api/{id}/store/"])
def test_sentry_sdks_get_relays_rate_limit_headers(
    app: FastAPI, client: TestClient, tenant: Tenant, database: Database, path: str
):
    with database.session(write=False) as session:
        from trapline.projects.models import Project

        project = session.get(Project, tenant.project_id)
        assert project is not None
        key = project.sentry_public_key
    spend_budget(database, tenant.project_id)
    pressure(app).read_project(tenant.project_id)
    event = {"event_id": "a" * 32, "exception": {"values": [{"type": "ValueError", "value": "x"}]}}
    if "envelope" in path:
        import orjson

        body = b"\n".join([orjson.dumps({"event_id": "a" * 32}), orjson.dumps({"type": "event"}), orjson.dumps(event)])
    else:
        import orjson

        body = orjson.dumps(event)
    response = client.post(
        path.format(id=tenant.project_id),
        content=body,
        headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
    )
    assert response.status_code == 429
    seconds = response.headers["retry-after"]
    assert response.headers["x-sentry-rate-limits"] == f"{seconds}:error:project:rate_limited_project"
    assert drops(database) == {"rate_limited_project": 1}


def test_an_installation_refusal_stops_every_sentry_category():
    from trapline.ingest.pressure import Refusal

    headers = dict(sentry_rate_limit_headers(Refusal("queue_backlog", 30, "behind")))
    assert headers == {b"retry-after": b"30", b"x-sentry-rate-limits": b"30::organization:queue_backlog"}
