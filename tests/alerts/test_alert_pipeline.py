"""What the pipeline sets off: each trigger, filters, what never fires, throttling.

Events go in through capture and a worker (with a clock the test moves); what comes out is
read from the outbox (``alert_delivery``), before anything is sent.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.alerts.conftest import BASE_URL, Clock, api, create_alert, send, webhook
from tests.capture import exception, exception_event, post_batch
from tests.factories import Tenant, make_user
from trapline.alerts.dispatch import prune_alert_state
from trapline.alerts.models import AlertDelivery, FingerprintMinute, FingerprintUser, IssueBucket, SpikeEvent
from trapline.db.engine import Database
from trapline.worker import Worker, WorkerOptions

HOOK = webhook("https://hooks.example.com/trapline")


def outbox(database: Database, **where: Any) -> list[AlertDelivery]:
    with database.session(write=False) as session:
        query = select(AlertDelivery).order_by(AlertDelivery.created_at, AlertDelivery.id)
        for key, value in where.items():
            query = query.where(getattr(AlertDelivery, key) == value)
        return list(session.scalars(query))


def kinds(database: Database) -> list[str]:
    return [row.kind for row in outbox(database) if row.status != "throttled"]


def errors(n: int, type_: str = "ValueError", **props: Any) -> list[dict[str, Any]]:
    return [exception_event(exception(type_, f"boom {i}"), distinct_id=f"user-{i}", **props) for i in range(n)]


def set_status(client: TestClient, tenant: Tenant, issue_id: str, status: str) -> None:
    response = client.patch(api(tenant, "issues", issue_id), json={"status": status}, headers=tenant.headers())
    assert response.status_code in (200, 204), response.text


# --- created and reopened ----------------------------------------------------------------------


def test_a_new_issue_fires_created_once_with_posthogs_shape(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    alert = create_alert(client, tenant, name="new errors", destination=HOOK)
    event = exception_event(exception("KeyError", "'sku'"), order_id=3)
    result = send(client, tenant, database, clock, event)
    assert result.notifications == 1
    send(client, tenant, database, clock, exception_event(exception("KeyError", "'sku'")))  # same issue again

    [row] = outbox(database)
    assert (row.kind, row.status, str(row.alert_id)) == ("issue_created", "pending", alert["id"])
    body = row.payload
    issue_id = str(row.issue_id)
    assert body["event"]["event"] == "$error_tracking_issue_created"
    assert body["event"]["distinct_id"] == issue_id
    assert uuid.UUID(body["event"]["uuid"]) == row.event_uuid
    assert body["event"]["url"] == f"{BASE_URL}/project/{tenant.project_id}/error_tracking/{issue_id}"
    props = body["event"]["properties"]
    assert (props["name"], props["description"], props["status"]) == ("KeyError", "'sku'", "active")
    assert props["fingerprint"] and "assignee" not in props
    assert props["exception_timestamp"]
    assert props["exception_props"]["order_id"] == 3
    assert props["exception_props"]["$exception_types"] == ["KeyError"]
    assert props["exception_props"]["$exception_fingerprint"] == props["fingerprint"]
    assert body["project"] == {
        "id": tenant.project_id,
        "name": "Acme web",
        "url": f"{BASE_URL}/project/{tenant.project_id}/error_tracking",
    }
    assert body["person"] is None
    assert body["issue"]["occurrences"] == 1 and body["issue"]["url"] == body["event"]["url"]
    assert body["alert"] == {"id": alert["id"], "name": "new errors", "trigger": "issue_created"}


def test_a_resolved_issue_that_gets_an_event_fires_reopened(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(client, tenant, trigger={"type": "issue_reopened"}, destination=HOOK)
    send(client, tenant, database, clock, exception_event())
    assert outbox(database) == []  # created: nobody listens
    [issue] = client.get(api(tenant, "issues"), headers=tenant.headers()).json()["results"]
    set_status(client, tenant, issue["id"], "resolved")

    send(client, tenant, database, clock, exception_event())
    send(client, tenant, database, clock, exception_event())  # active again: nothing more
    [row] = outbox(database)
    assert row.kind == "issue_reopened"
    props = row.payload["event"]["properties"]
    assert props["status"] == "active" and props["name"] == "ValueError"
    assert row.payload["issue"]["occurrences"] == 2


def test_the_assignee_is_in_the_payload_as_posthogs_json_string(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(client, tenant, destination=HOOK)
    rule = {"filters": {"type": "AND", "values": []}, "assignee": {"type": "user", "id": tenant.user_id}}
    assert client.post(api(tenant, "assignment_rules"), json=rule, headers=tenant.headers()).status_code == 201
    send(client, tenant, database, clock, exception_event())
    [row] = outbox(database)
    assert json.loads(row.payload["event"]["properties"]["assignee"]) == {"type": "user", "id": tenant.user_id}


# --- filters ---------------------------------------------------------------------------------------


def test_filters_route_web_and_backend_errors_to_different_alerts(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    web = create_alert(
        client, tenant, name="web", destination=HOOK,
        filters={"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["web"]}]},
    )  # fmt: skip
    backend = create_alert(
        client, tenant, name="backend", destination=HOOK,
        filters={"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "is_not", "value": ["web"]}]},
    )  # fmt: skip
    send(client, tenant, database, clock, exception_event(exception("TypeError"), **{"$lib": "web"}))
    send(client, tenant, database, clock, exception_event(exception("KeyError")))
    by_alert = {str(row.alert_id): row.payload["event"]["properties"]["name"] for row in outbox(database)}
    assert by_alert == {web["id"]: "TypeError", backend["id"]: "KeyError"}


def test_filters_see_the_issue_its_level_and_its_assignee(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    with database.session(write=True) as session:
        other = make_user(session, tenant.organization_id, email="oncall@example.com")
        session.commit()
        other_id = other.id
    create_alert(
        client, tenant, destination=HOOK,
        filters={"type": "AND", "values": [
            {"key": "assignee", "type": "error_tracking_issue", "operator": "exact", "value": ["oncall@example.com"]},
            {"key": "$exception_level", "type": "event", "operator": "exact", "value": ["fatal"]},
        ]},
    )  # fmt: skip
    rule = {
        "filters": {"type": "AND", "values": [{"key": "$exception_types", "operator": "exact", "value": ["KeyError"]}]},
        "assignee": {"type": "user", "id": other_id},
    }
    assert client.post(api(tenant, "assignment_rules"), json=rule, headers=tenant.headers()).status_code == 201
    send(client, tenant, database, clock, exception_event(exception("KeyError"), **{"$exception_level": "fatal"}))
    send(client, tenant, database, clock, exception_event(exception("KeyError", "x", frames=[])))  # error, not fatal
    send(client, tenant, database, clock, exception_event(exception("TypeError"), **{"$exception_level": "fatal"}))
    assert [row.payload["event"]["properties"]["name"] for row in outbox(database)] == ["KeyError"]


# --- what never fires ------------------------------------------------------------------------------


def test_suppressed_dropped_and_retried_events_fire_nothing(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(client, tenant, destination=HOOK)
    create_alert(client, tenant, trigger={"type": "issue_frequency", "threshold": 1, "window_minutes": 60},
                 destination=HOOK)  # fmt: skip
    rule = {
        "filters": {"type": "AND", "values": [{"key": "$exception_types", "operator": "exact", "value": ["Noise"]}]}
    }
    assert client.post(api(tenant, "suppression_rules"), json=rule, headers=tenant.headers()).status_code == 201
    send(client, tenant, database, clock, exception_event(exception("Noise")))  # suppressed by a rule
    send(client, tenant, database, clock, exception_event(exception("X", frames=[]), **{"$exception_list": []}))
    assert outbox(database) == []

    first = exception_event(exception("KeyError"))
    send(client, tenant, database, clock, first)
    assert kinds(database) == ["issue_created"]
    send(client, tenant, database, clock, first)  # the SDK retried a request that got through
    assert kinds(database) == ["issue_created"]  # not counted again: still 1 event in the window

    [issue] = client.get(api(tenant, "issues"), headers=tenant.headers()).json()["results"]
    set_status(client, tenant, issue["id"], "suppressed")
    send(client, tenant, database, clock, *errors(3, "KeyError"))
    assert kinds(database) == ["issue_created"]


def test_a_disabled_alert_fires_nothing(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    create_alert(client, tenant, destination=HOOK, enabled=False)
    send(client, tenant, database, clock, exception_event())
    assert outbox(database) == []


# --- frequency and users ---------------------------------------------------------------------------


def test_frequency_fires_once_at_the_threshold_then_again_after_falling_back(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(
        client, tenant, destination=HOOK, trigger={"type": "issue_frequency", "threshold": 5, "window_minutes": 10}
    )
    send(client, tenant, database, clock, *errors(3))
    assert kinds(database) == []
    send(client, tenant, database, clock, *errors(2))  # 5: not more than 5
    assert kinds(database) == []
    send(client, tenant, database, clock, *errors(1))  # 6 > 5
    assert kinds(database) == ["issue_frequency"]
    props = outbox(database)[0].payload["event"]["properties"]
    assert (props["count"], props["threshold"], props["window_minutes"]) == (6, 5, 10)
    assert outbox(database)[0].payload["event"]["event"] == "$error_tracking_issue_frequency"
    send(client, tenant, database, clock, *errors(10))  # still above: quiet
    assert kinds(database) == ["issue_frequency"]

    clock.advance(minutes=11)  # every event has left the window
    send(client, tenant, database, clock, *errors(20))  # crosses again in one batch
    assert kinds(database) == ["issue_frequency", "issue_frequency"]


def test_frequency_with_an_interval_repeats_while_above(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(
        client, tenant, destination=HOOK,
        trigger={"type": "issue_frequency", "threshold": 2, "window_minutes": 60, "interval_minutes": 15},
    )  # fmt: skip
    send(client, tenant, database, clock, *errors(3))
    clock.advance(minutes=5)
    send(client, tenant, database, clock, *errors(1))
    assert kinds(database) == ["issue_frequency"]
    clock.advance(minutes=11)
    send(client, tenant, database, clock, *errors(1))
    assert kinds(database) == ["issue_frequency", "issue_frequency"]


def test_users_counts_distinct_users(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    create_alert(
        client, tenant, destination=HOOK, trigger={"type": "issue_users", "threshold": 2, "window_minutes": 30}
    )
    same_user = [exception_event(distinct_id="alice") for _ in range(10)]
    send(client, tenant, database, clock, *same_user)
    send(client, tenant, database, clock, exception_event(distinct_id="bob"))
    assert kinds(database) == []
    send(client, tenant, database, clock, exception_event(distinct_id="carol"), exception_event(distinct_id="alice"))
    [row] = outbox(database)
    assert row.kind == "issue_users"
    assert row.payload["event"]["properties"]["users"] == 3


# --- spikes -----------------------------------------------------------------------------------------


def spike_config(client: TestClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = client.patch(api(tenant, "spike_detection_config", "update_config"), json=body, headers=tenant.headers())
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def test_a_quiet_baseline_then_a_burst_spikes_once_within_the_cooldown(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(client, tenant, trigger={"type": "issue_spiking"}, destination=HOOK)
    spike_config(client, tenant, threshold=20)
    for _ in range(11):  # an hour of 2 events per 5 minutes
        send(client, tenant, database, clock, *errors(2))
        clock.advance(minutes=5)
    assert kinds(database) == []

    send(client, tenant, database, clock, *errors(19))  # 19 < threshold 20
    assert kinds(database) == []
    send(client, tenant, database, clock, *errors(2))  # 21 > 2 * 10 and ≥ 20
    [row] = outbox(database)
    assert row.kind == "issue_spiking"
    props = row.payload["event"]["properties"]
    assert row.payload["event"]["event"] == "$error_tracking_issue_spiking"
    assert (props["current_bucket_value"], props["computed_baseline"]) == (21, 2.0)
    assert set(props) >= {"name", "description", "computed_baseline", "current_bucket_value"}

    clock.advance(minutes=5)
    send(client, tenant, database, clock, *errors(100))  # spiking still, but snoozed
    assert kinds(database) == ["issue_spiking"]
    clock.advance(minutes=6)  # 11 minutes after the spike: the 10-minute cooldown is over
    send(client, tenant, database, clock, *errors(500))
    assert kinds(database) == ["issue_spiking", "issue_spiking"]

    events = client.get(api(tenant, "spike_events"), headers=tenant.headers()).json()
    assert events["count"] == 2
    assert [e["current_bucket_value"] for e in events["results"]] == [500, 21]
    assert events["results"][0]["issue"]["name"] == "ValueError"


def test_a_new_issue_is_measured_against_the_projects_baseline(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    spike_config(client, tenant, threshold=1)
    for _ in range(11):  # another issue: 1 event per bucket for the hour before
        send(client, tenant, database, clock, *errors(1, "KeyError"))
        clock.advance(minutes=5)
    # The new issue has no history of its own. The project's rate per issue is 1 in each of the
    # 11 buckets before, and 55 in this one (55 events, 1 issue): (11 + 55) / 12 = 5.5, and
    # 55 is not more than 55.
    send(client, tenant, database, clock, *errors(55, "TypeError"))
    with database.session(write=False) as session:
        assert list(session.scalars(select(SpikeEvent))) == []
    send(client, tenant, database, clock, *errors(1, "TypeError"))  # (11 + 56) / 12 * 10 = 55.8 < 56
    with database.session(write=False) as session:
        [spike] = session.scalars(select(SpikeEvent))
    assert spike.current_bucket_value == 56
    assert spike.computed_baseline == pytest.approx(67 / 12)


def test_the_detector_can_be_turned_off(client: TestClient, tenant: Tenant, database: Database, clock: Clock):
    create_alert(client, tenant, trigger={"type": "issue_spiking"}, destination=HOOK)
    config = spike_config(client, tenant, enabled=False, threshold=1)
    assert config == {"enabled": False, "threshold": 1, "multiplier": 10, "snooze_duration_minutes": 10}
    send(client, tenant, database, clock, *errors(50))
    with database.session(write=False) as session:
        assert list(session.scalars(select(IssueBucket))) == []
    assert kinds(database) == []


# --- throttling -------------------------------------------------------------------------------------


def test_a_throttled_alert_sends_n_then_one_summary(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    alert = create_alert(client, tenant, destination=HOOK, throttle={"max_messages": 2, "per_minutes": 30})
    send(client, tenant, database, clock, *[exception_event(exception(f"Error{i}")) for i in range(5)])
    clock.advance(minutes=1)
    send(client, tenant, database, clock, exception_event(exception("LateError")))
    rows = outbox(database, alert_id=uuid.UUID(alert["id"]))
    statuses = sorted((row.kind, row.status) for row in rows)
    assert statuses == [("issue_created", "pending")] * 2 + [("issue_created", "throttled")] * 4 + [
        ("summary", "pending")
    ]
    [summary] = [row for row in rows if row.kind == "summary"]
    assert summary.summary_count == 4
    assert summary.next_attempt_at == clock.now + timedelta(minutes=29)  # made a minute ago, for 30
    assert all(row.summary_id == summary.id for row in rows if row.status == "throttled")


def test_counts_are_kept_only_as_long_as_the_longest_window(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(
        client, tenant, destination=HOOK, trigger={"type": "issue_users", "threshold": 9, "window_minutes": 30}
    )
    create_alert(client, tenant, destination=HOOK, trigger={"type": "issue_frequency", "threshold": 9,
                                                            "window_minutes": 90})  # fmt: skip
    send(client, tenant, database, clock, *errors(3))
    with database.session(write=False) as session:
        assert len(list(session.scalars(select(FingerprintUser)))) == 3
        assert [row.count for row in session.scalars(select(FingerprintMinute))] == [3]
    prune_alert_state(database, clock.now + timedelta(minutes=32))
    with database.session(write=False) as session:
        assert list(session.scalars(select(FingerprintUser))) == []  # past the 30-minute window
        assert len(list(session.scalars(select(FingerprintMinute)))) == 1  # within 90
        assert len(list(session.scalars(select(IssueBucket)))) == 1
    prune_alert_state(database, clock.now + timedelta(minutes=93))
    with database.session(write=False) as session:
        assert list(session.scalars(select(FingerprintMinute))) == []
        assert list(session.scalars(select(IssueBucket))) == []  # the detector looks back an hour


def test_a_flood_of_users_records_no_more_per_minute_than_the_thresholds_need(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock
):
    create_alert(
        client, tenant, destination=HOOK, trigger={"type": "issue_users", "threshold": 4, "window_minutes": 10}
    )
    worker = Worker(database, WorkerOptions(base_url=BASE_URL, clock=clock))

    def flood(*events: dict[str, Any]) -> None:
        for event in events:
            event["timestamp"] = clock.now.isoformat()
        assert post_batch(client, tenant.project_token, *events).status_code == 200
        worker.drain()

    def recorded() -> int:
        with database.session(write=False) as session:
            return len(list(session.scalars(select(FingerprintUser))))

    flood(*errors(40))  # 40 users in one minute
    flood(*[exception_event(distinct_id=f"more-{n}") for n in range(40)])
    assert recorded() == 5  # 4 + 1: enough to know the minute is above 4
    [row] = outbox(database)
    assert row.payload["event"]["properties"]["users"] == 5
    clock.advance(minutes=1)
    flood(*errors(3))  # a new minute is counted from scratch
    assert recorded() == 8
    assert len(outbox(database)) == 1  # still above: no second message
    # Another worker knows nothing of the first's rows: it records up to the cap again.
    send(client, tenant, database, clock, *[exception_event(distinct_id=f"late-{n}") for n in range(9)])
    assert recorded() == 8 + 5  # it does not know of the 3 the first one wrote this minute
