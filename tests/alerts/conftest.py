"""Alerts tests: an app whose alerts may reach this machine, a clock to move, and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.capture import post_batch
from tests.factories import Tenant
from trapline.alerts import make_senders
from trapline.alerts.dispatch import Dispatcher
from trapline.db.engine import Database
from trapline.pipeline import BatchResult
from trapline.settings import Settings
from trapline.worker import Worker, WorkerOptions

BASE_URL = "http://trapline.test"


@dataclass
class Clock:
    """The time of processing, which a test moves forward."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    # A bucket's start, plus a minute: the 5-minute buckets are easy to reason about.
    return Clock(datetime(2026, 12, 2, 12, 1, tzinfo=UTC))


def api(tenant: Tenant, *parts: str, prefix: str = "/api/projects") -> str:
    return "/".join([f"{prefix}/{tenant.project_id}/error_tracking", *parts]) + "/"


def create_alert(client: TestClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "alert")
    body.setdefault("trigger", {"type": "issue_created"})
    response = client.post(api(tenant, "alerts"), json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    alert: dict[str, Any] = response.json()
    return alert


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url, **extra}


def process(database: Database, clock: Clock) -> BatchResult:
    return Worker(database, WorkerOptions(base_url=BASE_URL, clock=clock)).drain()


def send(client: TestClient, tenant: Tenant, database: Database, clock: Clock, *events: dict[str, Any]) -> BatchResult:
    """Capture the events (happening now, by the clock) and process them."""
    for event in events:
        event.setdefault("timestamp", clock.now.isoformat())
    assert post_batch(client, tenant.project_token, *events).status_code == 200
    return process(database, clock)


def dispatcher(database: Database, settings: Settings, clock: Clock | None = None) -> Dispatcher:
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    return Dispatcher(
        database, make_senders(settings), sender_id="test-sender", base_url=BASE_URL, poll_seconds=0.05, **options
    )
