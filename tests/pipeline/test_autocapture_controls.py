"""Autocapture controls enforced on the server, through real requests.

Each test configures the project's web controls through the API, sends what posthog-js sends
(pageviews, custom events, autocaptured and manual ``$exception`` events) to capture, runs the
worker, and reads back what was stored and what was dropped, and why.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.capture import drain, exception, exception_event, post_batch
from tests.factories import Tenant
from trapline.autocapture.controls import prune_signals
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent, SessionSignal

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SHOP = "https://shop.example.com"


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def controls(client: TestClient, tenant: Tenant, **fields: Any) -> None:
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/autocapture_controls",
        json=fields,
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text


def browser_event(name: str, session: str, url: str, seconds: float, **properties: Any) -> dict[str, Any]:
    return {
        "event": name,
        "uuid": str(uuid.uuid4()),
        "timestamp": at(seconds),
        "properties": {
            "distinct_id": f"visitor-{session}",
            "$lib": "web",
            "$lib_version": "1.449.2",
            "$session_id": session,
            "$current_url": url,
            **properties,
        },
    }


def browser_exception(
    session: str, url: str = f"{SHOP}/", seconds: float = 10, *, handled: bool = False, **properties: Any
) -> dict[str, Any]:
    """A ``$exception`` as posthog-js sends it: autocaptured (unhandled) unless ``handled``."""
    event = browser_event("$exception", session, url, seconds, **properties)
    entry = exception("TypeError", f"x is undefined ({session})", frames=[])
    entry["mechanism"] = {"type": "onerror" if not handled else "generic", "handled": handled, "synthetic": False}
    event["properties"].update({"$exception_list": [entry], "$exception_level": "error"})
    return event


def send(client: TestClient, tenant: Tenant, *events: dict[str, Any]) -> None:
    response = post_batch(client, tenant.project_token, *events, path="/e/")
    assert response.status_code == 200, response.text


def process(database: Database) -> None:
    result = drain(database)
    assert not result.failed_requests


def kept_sessions(database: Database, tenant: Tenant) -> set[str]:
    with database.session(write=False) as session:
        rows = session.scalars(select(ExceptionEvent).where(ExceptionEvent.project_id == tenant.project_id))
        return {row.properties["$session_id"] for row in rows}


def dropped(client: TestClient, tenant: Tenant) -> dict[str, int]:
    response = client.get(
        f"/api/projects/{tenant.project_id}/error_tracking/dropped_events/", headers=tenant.headers("read")
    )
    assert response.status_code == 200, response.text
    return {row["reason"]: row["count"] for row in response.json()["results"]}


def test_the_url_blocklist_drops_autocaptured_exceptions_on_those_pages(
    client: TestClient, tenant: Tenant, database: Database
):
    controls(client, tenant, url_blocklist=[{"url": "/admin(/|$)", "matching": "regex"}])
    send(
        client,
        tenant,
        browser_exception("s-admin", f"{SHOP}/admin/users"),
        browser_exception("s-shop", f"{SHOP}/products/7"),
        browser_exception("s-administrator", f"{SHOP}/administrators"),
    )
    process(database)
    assert kept_sessions(database, tenant) == {"s-shop", "s-administrator"}
    assert dropped(client, tenant) == {"autocapture_url_blocked": 1}
    response = client.get(
        f"/api/environments/{tenant.project_id}/error_tracking/dropped_events", headers=tenant.headers()
    )
    [row] = response.json()["results"]
    assert row["last_detail"] == f"{SHOP}/admin/users is on the autocapture URL blocklist"


def test_a_url_trigger_keeps_the_sessions_that_visited_a_matching_page_before(
    client: TestClient, tenant: Tenant, database: Database
):
    controls(client, tenant, url_triggers=[{"url": "/checkout", "matching": "regex"}])
    send(client, tenant, browser_event("$pageview", "visited", f"{SHOP}/checkout", 1))
    send(
        client,
        tenant,
        browser_exception("visited", f"{SHOP}/thanks", 20),  # after the checkout page
        browser_exception("never", f"{SHOP}/thanks", 20),  # this session never went there
        browser_exception("on-the-page", f"{SHOP}/checkout?step=2", 20),  # the exception's own URL
    )
    # A session that reached the page only after its exception: that exception predates the trigger.
    send(client, tenant, browser_exception("late", f"{SHOP}/", 5))
    send(client, tenant, browser_event("$pageview", "late", f"{SHOP}/checkout", 30))
    process(database)
    assert kept_sessions(database, tenant) == {"visited", "on-the-page"}
    assert dropped(client, tenant) == {"autocapture_not_triggered": 2}


def test_an_event_trigger_keeps_sessions_that_sent_that_event(client: TestClient, tenant: Tenant, database: Database):
    controls(client, tenant, event_triggers=["checkout_started"])
    send(client, tenant, browser_event("checkout_started", "buyer", f"{SHOP}/cart", 1))
    send(client, tenant, browser_event("$pageview", "browser", f"{SHOP}/cart", 1))
    send(
        client,
        tenant,
        browser_exception("buyer", seconds=10),
        browser_exception("browser", seconds=10),
        # The trigger and the exception in one request, the trigger first, as posthog-js batches them.
        browser_event("checkout_started", "same-batch", f"{SHOP}/cart", 8),
        browser_exception("same-batch", seconds=9),
    )
    process(database)
    assert kept_sessions(database, tenant) == {"buyer", "same-batch"}
    assert dropped(client, tenant) == {"autocapture_not_triggered": 1}


def test_signals_are_kept_per_session_and_forgotten_when_they_expire(
    client: TestClient, tenant: Tenant, database: Database
):
    controls(client, tenant, event_triggers=["checkout_started"])
    send(
        client,
        tenant,
        browser_event("checkout_started", "s1", f"{SHOP}/", 50),
        browser_event("checkout_started", "s1", f"{SHOP}/", 5),  # arrives later, happened earlier
        browser_event("checkout_started", "s1", f"{SHOP}/", 70),
        browser_event("$pageview", "s2", f"{SHOP}/", 5),
    )
    # Beside the queued requests (on SQLite in the queue's file; see trapline.events.queue_file).
    with database.queue.session(write=False) as session:
        rows = session.scalars(select(SessionSignal).where(SessionSignal.project_id == tenant.project_id)).all()
    [row] = rows
    assert (row.session_id, row.signal) == ("s1", "event:checkout_started")
    assert row.first_at.replace(tzinfo=UTC) == START + timedelta(seconds=5)
    assert prune_signals(database.queue, START + timedelta(hours=1)) == 0
    assert prune_signals(database.queue, START + timedelta(days=2)) == 1


def test_a_linked_flag_keeps_events_that_carry_it(client: TestClient, tenant: Tenant, database: Database):
    controls(client, tenant, linked_feature_flag={"id": 3, "key": "new-checkout"})
    send(
        client,
        tenant,
        browser_exception("flag-on", **{"$feature/new-checkout": True}),
        browser_exception("flag-variant", **{"$feature/new-checkout": "test"}),
        browser_exception("flag-active", **{"$active_feature_flags": ["other", "new-checkout"]}),
        browser_exception("flag-off", **{"$feature/new-checkout": False}),
        browser_exception("no-flag", **{"$active_feature_flags": ["other"]}),
    )
    process(database)
    assert kept_sessions(database, tenant) == {"flag-on", "flag-variant", "flag-active"}
    assert dropped(client, tenant) == {"autocapture_not_triggered": 2}


def test_a_linked_flag_with_a_variant_needs_that_variant(client: TestClient, tenant: Tenant, database: Database):
    controls(client, tenant, linked_feature_flag={"id": 3, "key": "new-checkout", "variant": "test"})
    send(
        client,
        tenant,
        browser_exception("test", **{"$feature/new-checkout": "test"}),
        browser_exception("control", **{"$feature/new-checkout": "control"}),
        browser_exception("bare", **{"$feature/new-checkout": True}),
    )
    process(database)
    assert kept_sessions(database, tenant) == {"test"}


def test_the_sample_rate_keeps_a_share_of_sessions_always_the_same_ones(
    client: TestClient, tenant: Tenant, database: Database
):
    controls(client, tenant, sample_rate="0.30")
    sessions = [f"session-{n}" for n in range(300)]
    # Two exceptions per session, in separate requests: a session is in or out as a whole.
    send(client, tenant, *[browser_exception(s, seconds=1) for s in sessions])
    send(client, tenant, *[browser_exception(s, seconds=2) for s in sessions])
    process(database)
    with database.session(write=False) as session:
        rows = session.scalars(select(ExceptionEvent).where(ExceptionEvent.project_id == tenant.project_id)).all()
    per_session: dict[str, int] = {}
    for row in rows:
        per_session[row.properties["$session_id"]] = per_session.get(row.properties["$session_id"], 0) + 1
    assert set(per_session.values()) == {2}
    assert 60 <= len(per_session) <= 120  # 30% of 300, give or take
    assert dropped(client, tenant) == {"autocapture_not_sampled": 2 * (300 - len(per_session))}


@pytest.mark.parametrize(("rate", "kept"), [("0.00", 0), ("1.00", 20)])
def test_sample_rates_zero_and_one(client: TestClient, tenant: Tenant, database: Database, rate: str, kept: int):
    controls(client, tenant, sample_rate=rate)
    send(client, tenant, *[browser_exception(f"s{n}") for n in range(20)])
    process(database)
    assert len(kept_sessions(database, tenant)) == kept


TRIGGERS = {
    "url_triggers": [{"url": "/checkout", "matching": "regex"}],
    "event_triggers": ["coupon_applied"],
}


def _url_and_event_sessions(client: TestClient, tenant: Tenant) -> None:
    send(
        client,
        tenant,
        browser_event("$pageview", "url-only", f"{SHOP}/checkout", 1),
        browser_event("coupon_applied", "event-only", f"{SHOP}/cart", 1),
        browser_event("$pageview", "both", f"{SHOP}/checkout", 1),
        browser_event("coupon_applied", "both", f"{SHOP}/checkout", 2),
        browser_event("$pageview", "neither", f"{SHOP}/", 1),
    )
    send(client, tenant, *[browser_exception(s) for s in ("url-only", "event-only", "both", "neither")])


def test_match_type_all_needs_every_configured_trigger(client: TestClient, tenant: Tenant, database: Database):
    controls(client, tenant, match_type="all", **TRIGGERS)
    _url_and_event_sessions(client, tenant)
    process(database)
    assert kept_sessions(database, tenant) == {"both"}
    assert dropped(client, tenant) == {"autocapture_not_triggered": 3}


def test_match_type_any_needs_one_of_them(client: TestClient, tenant: Tenant, database: Database):
    controls(client, tenant, match_type="any", **TRIGGERS)
    _url_and_event_sessions(client, tenant)
    process(database)
    assert kept_sessions(database, tenant) == {"url-only", "event-only", "both"}
    assert dropped(client, tenant) == {"autocapture_not_triggered": 1}


def test_match_type_any_with_a_sample_rate_keeps_triggered_sessions_outside_the_sample(
    client: TestClient, tenant: Tenant, database: Database
):
    controls(client, tenant, match_type="any", sample_rate="0.00", **TRIGGERS)
    _url_and_event_sessions(client, tenant)
    process(database)
    assert kept_sessions(database, tenant) == {"url-only", "event-only", "both"}


def test_manual_captures_and_other_sdks_are_never_affected(client: TestClient, tenant: Tenant, database: Database):
    controls(
        client,
        tenant,
        sample_rate="0.00",
        event_triggers=["never-sent"],
        url_blocklist=[{"url": ".*", "matching": "regex"}],
    )
    server_side = exception_event(
        exception("KeyError", "'sku'"), **{"$session_id": "python", "$current_url": f"{SHOP}/admin"}
    )
    server_side["properties"]["$exception_list"][0]["mechanism"]["handled"] = False  # sys.excepthook
    send(
        client,
        tenant,
        browser_exception("manual", f"{SHOP}/admin", handled=True),  # posthog.captureException(error)
        browser_exception("autocaptured", f"{SHOP}/admin"),
        server_side,
    )
    process(database)
    assert kept_sessions(database, tenant) == {"manual", "python"}
    assert dropped(client, tenant) == {"autocapture_url_blocked": 1}


def test_without_controls_every_exception_is_kept(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, *[browser_exception(f"s{n}", f"{SHOP}/admin") for n in range(5)])
    process(database)
    assert len(kept_sessions(database, tenant)) == 5
    assert dropped(client, tenant) == {}


def test_dropped_events_needs_a_key_for_the_project(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    path = f"/api/projects/{tenant.project_id}/error_tracking/dropped_events"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=tenant.headers("none")).status_code == 403
    assert client.get(path, headers=other_tenant.headers()).status_code == 404
