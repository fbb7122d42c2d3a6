"""Rate limits in the pipeline: what is over a budget is not stored, counted per reason,
and every worker spends the same budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.capture import exception, exception_event, post_batch
from tests.concurrency import run_together
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.events.models import DroppedEvents, ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.limits.models import ErrorTrackingSettings
from trapline.limits.rates import Limit, allowance
from trapline.usage.models import UsageDay
from trapline.worker import Worker, WorkerOptions


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC))


def limit(database: Database, project_id: int, **values: Any) -> None:
    with database.session(write=True) as session:
        session.merge(ErrorTrackingSettings(project_id=project_id, **values))
        session.commit()


def send(client: TestClient, tenant: Tenant, count: int, *, type_: str = "ValueError", per_request: int = 50) -> None:
    for start in range(0, count, per_request):
        events = [exception_event(exception(type_)) for _ in range(min(per_request, count - start))]
        assert post_batch(client, tenant.project_token, *events).status_code == 200


def process(database: Database, clock: Clock, batch_events: int = 1000) -> None:
    Worker(database, WorkerOptions(clock=clock, batch_events=batch_events)).drain()


def stored_count(database: Database, type_: str | None = None) -> int:
    with database.session(write=False) as session:
        query = select(func.count()).select_from(ExceptionEvent)
        if type_ is not None:
            query = query.where(ExceptionEvent.search_text.like(f"{type_.lower()}%"))
        return int(session.scalar(query) or 0)


def drops(database: Database) -> dict[str, int]:
    with database.session(write=False) as session:
        return {row.reason: row.count for row in session.scalars(select(DroppedEvents))}


def occurrences(database: Database) -> int:
    with database.session(write=False) as session:
        return int(session.scalar(select(func.sum(IssueFingerprint.occurrences))) or 0)


# --- pure ---------------------------------------------------------------------------------------


def test_buckets_are_aligned_to_the_epoch_so_every_process_agrees():
    hourly = Limit(100)
    bucket = hourly.bucket(datetime(2026, 12, 2, 10, 59, 59, tzinfo=UTC))
    assert bucket.start == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert bucket.end == datetime(2026, 12, 2, 11, tzinfo=UTC)
    seven = Limit(5, 7).bucket(datetime(1970, 1, 1, 0, 15, tzinfo=UTC))
    assert seven.start == datetime(1970, 1, 1, 0, 14, tzinfo=UTC)
    assert seven.end == datetime(1970, 1, 1, 0, 21, tzinfo=UTC)


def test_a_limit_needs_a_positive_value_and_defaults_to_an_hour():
    assert Limit.of(None, 5) is None
    assert Limit.of(0, 5) is None
    assert Limit.of(10, None) == Limit(10, 60)
    assert allowance(Limit(10), 7) == 3
    assert allowance(Limit(10), 12) == 0


# --- the pipeline ---------------------------------------------------------------------------------


def test_a_project_limit_stores_its_budget_per_bucket_and_counts_the_rest(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    limit(database, tenant.project_id, project_rate_limit_value=100, project_rate_limit_bucket_size_minutes=1)
    send(client, tenant, 500)
    process(database, clock, batch_events=120)
    assert stored_count(database) == 100
    assert occurrences(database) == 100
    assert drops(database) == {"rate_limited_project": 400}

    # The next minute's bucket takes another 100.
    send(client, tenant, 150)
    clock.at += timedelta(minutes=1)
    process(database, clock)
    assert stored_count(database) == 200
    assert drops(database) == {"rate_limited_project": 450}
    with database.session(write=False) as session:
        usage = {row.outcome: row.count for row in session.scalars(select(UsageDay))}
    assert usage == {"stored": 200, "rate_limited_project": 450}


def test_an_issue_limit_bounds_each_issue_alone(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    limit(database, tenant.project_id, per_issue_rate_limit_value=30)
    send(client, tenant, 100, type_="ValueError")
    send(client, tenant, 20, type_="KeyError")
    process(database, clock, batch_events=40)
    assert stored_count(database, "valueerror") == 30
    assert stored_count(database, "keyerror") == 20
    assert drops(database) == {"rate_limited_issue": 70}
    assert occurrences(database) == 50


def test_without_settings_nothing_is_limited(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    limit(database, tenant.project_id, project_rate_limit_value=None, per_issue_rate_limit_value=None)
    send(client, tenant, 120)
    process(database, clock)
    assert stored_count(database) == 120
    assert drops(database) == {}


def test_events_over_the_project_budget_create_no_issue(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    limit(database, tenant.project_id, project_rate_limit_value=5)
    send(client, tenant, 5, type_="ValueError")
    process(database, clock)
    send(client, tenant, 5, type_="KeyError")
    process(database, clock)
    with database.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(IssueFingerprint)) == 1
    assert drops(database) == {"rate_limited_project": 5}


def test_workers_running_at_once_share_one_budget(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    limit(database, tenant.project_id, project_rate_limit_value=250, per_issue_rate_limit_value=200)
    for _ in range(120):  # both issues in every request
        events = [exception_event(exception(type_)) for type_ in ("ValueError", "KeyError") for _ in range(5)]
        assert post_batch(client, tenant.project_token, *events).status_code == 200
    errors = run_together(lambda: process(database, clock, batch_events=50), 4)
    assert not errors
    assert stored_count(database) == 250
    assert occurrences(database) == 250
    assert stored_count(database, "valueerror") <= 200
    assert stored_count(database, "keyerror") <= 200
    counted = drops(database)
    assert counted.get("rate_limited_project", 0) + counted.get("rate_limited_issue", 0) == 1200 - 250
