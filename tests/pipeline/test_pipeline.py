"""The pipeline end to end: events posted to capture, processed by a worker, read through the API.

Each test tells one story of the issue lifecycle or of a rule kind, on both backends.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, cast, select, text

from tests.capture import drain, exception, exception_event, post_batch, python_frame
from tests.factories import Tenant, make_user
from trapline.db.engine import Database
from trapline.events.models import DroppedEvents, ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.pipeline.suppression import should_suppress
from trapline.rules.models import SuppressionRule

TYPE_ERROR = {"key": "$exception_types", "type": "event", "operator": "exact", "value": ["TypeError"]}


def api(tenant: Tenant, *parts: str) -> str:
    return "/".join([f"/api/projects/{tenant.project_id}/error_tracking", *parts]) + "/"


def send(client: TestClient, tenant: Tenant, database: Database, *events: dict[str, Any]) -> None:
    assert post_batch(client, tenant.project_token, *events).status_code == 200
    drain(database)


def issues(client: TestClient, tenant: Tenant, status: str = "all") -> list[dict[str, Any]]:
    response = client.get(api(tenant, "issues") + f"?status={status}&date_from=all", headers=tenant.headers())
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def only_issue(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    [issue] = issues(client, tenant)
    return issue


def stored(database: Database) -> list[ExceptionEvent]:
    with database.session(write=False) as session:
        return list(session.scalars(select(ExceptionEvent).order_by(ExceptionEvent.id)))


def drops(database: Database) -> dict[str, int]:
    with database.session(write=False) as session:
        return {row.reason: row.count for row in session.scalars(select(DroppedEvents))}


def patch(client: TestClient, tenant: Tenant, *parts: str, **body: Any) -> None:
    response = client.patch(api(tenant, *parts), json=body, headers=tenant.headers())
    assert response.status_code in (200, 204), response.text


def create_rule(client: TestClient, tenant: Tenant, kind: str, **body: Any) -> dict[str, Any]:
    response = client.post(api(tenant, kind), json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def match(*values: dict[str, Any], kind: str = "AND") -> dict[str, Any]:
    return {"type": "AND", "values": [{"type": kind, "values": list(values)}]}


# --- issues from events -------------------------------------------------------------------------


def test_an_exception_becomes_an_issue_with_posthogs_output_properties(
    client: TestClient, tenant: Tenant, database: Database
):
    event = exception_event(exception("ValueError", "bad quantity: '0'"), order_id=7, distinct_id="user-42")
    send(client, tenant, database, event)

    issue = only_issue(client, tenant)
    assert (issue["name"], issue["description"], issue["status"]) == ("ValueError", "bad quantity: '0'", "active")
    assert issue["aggregations"]["occurrences"] == 1
    [row] = stored(database)
    props = row.properties
    assert str(row.uuid) == event["uuid"]
    assert props["$exception_issue_id"] == issue["id"]
    assert props["order_id"] == 7
    assert props["$exception_types"] == ["ValueError"]
    assert props["$exception_values"] == ["bad quantity: '0'"]
    assert props["$exception_sources"] == ["app/orders.py"]
    assert props["$exception_functions"] == ["handle", "parse_order"]
    assert props["$exception_handled"] is True
    assert props["$exception_fingerprint"] == props["$exception_proposed_fingerprint"] == row.fingerprint
    assert [part["type"] for part in props["$exception_fingerprint_record"]] == ["exception", "frame", "frame"]
    assert "$cymbal_errors" not in props
    frames = props["$exception_list"][0]["stacktrace"]
    assert frames["type"] == "resolved"
    assert [f["resolved_name"] for f in frames["frames"]] == ["handle", "parse_order"]


def test_the_fingerprint_is_cymbals(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event())
    # type, then per in-app resolved frame: source, module, resolved name (no message: the stack resolved).
    expected = hashlib.sha512(
        b"ValueError" + b"app/orders.py" + b"app.orders" + b"handle" + b"app/orders.py" + b"app.orders" + b"parse_order"
    ).hexdigest()
    assert [row.fingerprint for row in stored(database)] == [expected]


def test_the_same_exception_again_is_the_same_issue(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(), exception_event(distinct_id="user-2"))
    send(client, tenant, database, exception_event(exception("ValueError", "another message")))
    issue = only_issue(client, tenant)
    assert issue["aggregations"]["occurrences"] == 3
    assert issue["aggregations"]["users"] == 2


def test_a_different_exception_is_another_issue(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(), exception_event(exception("KeyError", "'sku'")))
    assert sorted(issue["name"] for issue in issues(client, tenant)) == ["KeyError", "ValueError"]


def test_issue_name_and_description_from_the_event(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(**{"$issue_name": "Checkout broke", "$issue_description": "x"}))
    issue = only_issue(client, tenant)
    assert (issue["name"], issue["description"]) == ("Checkout broke", "x")


def test_a_long_message_is_cut_for_the_description(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(exception("ValueError", "x" * 1000)))
    assert only_issue(client, tenant)["description"] == "x" * 255


def test_a_retried_request_is_not_counted_twice(client: TestClient, tenant: Tenant, database: Database):
    event = exception_event()
    send(client, tenant, database, event)
    send(client, tenant, database, event)  # the SDK timed out after our 200 and sent it again
    assert len(stored(database)) == 1
    assert only_issue(client, tenant)["aggregations"]["occurrences"] == 1


def test_huge_distinct_and_session_ids_are_stored(client: TestClient, tenant: Tenant, database: Database):
    # The columns are indexed; PostgreSQL refuses b-tree entries over ~2.7 kB.
    huge = "u" * 10_000
    send(client, tenant, database, exception_event(distinct_id=huge, **{"$session_id": "s" * 10_000}))
    [event] = stored(database)
    assert event.distinct_id == huge[:200]
    assert event.session_id == "s" * 200
    assert event.properties["$session_id"] == "s" * 10_000
    assert only_issue(client, tenant)["aggregations"]["users"] == 1


def test_a_stack_without_frames_is_grouped_by_message(client: TestClient, tenant: Tenant, database: Database):
    send(
        client,
        tenant,
        database,
        exception_event(exception("ValueError", "a", frames=[])),
        exception_event(exception("ValueError", "b", frames=[])),
    )
    assert sorted(issue["description"] for issue in issues(client, tenant)) == ["a", "b"]


def test_legacy_exception_type_and_message(client: TestClient, tenant: Tenant, database: Database):
    event = exception_event()
    del event["properties"]["$exception_list"]
    event["properties"].update({"$exception_type": "LegacyError", "$exception_message": "old sdk"})
    send(client, tenant, database, event)
    issue = only_issue(client, tenant)
    assert (issue["name"], issue["description"]) == ("LegacyError", "old sdk")


def test_an_invalid_exception_list_is_dropped_and_counted(client: TestClient, tenant: Tenant, database: Database):
    empty = exception_event()
    empty["properties"]["$exception_list"] = []
    wrong = exception_event()
    wrong["properties"]["$exception_list"] = "not a list"
    send(client, tenant, database, empty, wrong, exception_event())
    assert len(stored(database)) == 1
    assert drops(database) == {"invalid_exception": 2}


def test_client_properties_cannot_fake_the_pipelines_own(client: TestClient, tenant: Tenant, database: Database):
    fake_issue = str(uuid.uuid4())
    send(client, tenant, database, exception_event(**{"$exception_issue_id": fake_issue, "$exception_types": ["X"]}))
    [row] = stored(database)
    assert row.properties["$exception_issue_id"] == only_issue(client, tenant)["id"] != fake_issue
    assert row.properties["$exception_types"] == ["ValueError"]


def test_the_stored_properties_name_the_issue_once(client: TestClient, tenant: Tenant, database: Database):
    # Workers serialise the properties before linking and add the issue to the JSON after it.
    fake_issue = str(uuid.uuid4())
    note = 'a "}" inside, ünïcödé ✓ 🎉'
    send(client, tenant, database, exception_event(**{"$exception_issue_id": fake_issue, "note": note}))
    with database.session(write=False) as session:
        [raw] = session.scalars(select(cast(ExceptionEvent.properties, String))).all()
        if database.is_sqlite:  # text, as JSON functions and every reader expect, not a blob
            assert session.scalar(text("SELECT typeof(properties) FROM exception_event")) == "text"
    properties = json.loads(raw)
    assert raw.count('"$exception_issue_id"') == 1
    assert properties["$exception_issue_id"] == only_issue(client, tenant)["id"]
    assert properties["note"] == note
    assert properties == stored(database)[0].properties


def test_a_client_fingerprint_overrides_grouping(client: TestClient, tenant: Tenant, database: Database):
    long = "checkout-" + "x" * 100
    send(
        client,
        tenant,
        database,
        exception_event(exception("ValueError"), **{"$exception_fingerprint": "checkout"}),
        exception_event(exception("KeyError"), **{"$exception_fingerprint": "checkout"}),
        exception_event(**{"$exception_fingerprint": long}),
    )
    rows = stored(database)
    assert [row.fingerprint for row in rows] == ["checkout", "checkout", hashlib.sha512(long.encode()).hexdigest()]
    assert rows[0].properties["$exception_fingerprint_record"] == [{"type": "manual"}]
    assert rows[0].properties["$exception_proposed_fingerprint"] != "checkout"
    assert len(issues(client, tenant)) == 2


# --- lifecycle -------------------------------------------------------------------------------


def test_a_resolved_issue_reopens_on_a_new_event(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event())
    issue_id = only_issue(client, tenant)["id"]
    patch(client, tenant, "issues", issue_id, status="resolved")
    assert issues(client, tenant, "active") == []
    send(client, tenant, database, exception_event())
    issue = only_issue(client, tenant)
    assert (issue["id"], issue["status"], issue["aggregations"]["occurrences"]) == (issue_id, "active", 2)


def test_a_suppressed_issue_drops_its_new_events(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event())
    issue_id = only_issue(client, tenant)["id"]
    patch(client, tenant, "issues", issue_id, status="suppressed")
    send(client, tenant, database, exception_event(), exception_event())
    issue = only_issue(client, tenant)
    assert (issue["status"], issue["aggregations"]["occurrences"]) == ("suppressed", 1)
    assert drops(database) == {"issue_suppressed": 2}


def test_after_a_merge_new_events_go_to_the_target(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(exception("KeyError")), exception_event(exception("TypeError")))
    by_name = {issue["name"]: issue["id"] for issue in issues(client, tenant)}
    response = client.post(
        api(tenant, "issues", by_name["KeyError"], "merge"),
        json={"ids": [by_name["TypeError"]]},
        headers=tenant.headers(),
    )
    assert response.json() == {"success": True}
    send(client, tenant, database, exception_event(exception("TypeError")))
    issue = only_issue(client, tenant)
    assert (issue["id"], issue["aggregations"]["occurrences"]) == (by_name["KeyError"], 3)
    assert stored(database)[-1].properties["$exception_issue_id"] == by_name["KeyError"]


def test_after_a_split_new_events_go_to_the_new_issue(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(exception("KeyError")), exception_event(exception("TypeError")))
    by_name = {issue["name"]: issue["id"] for issue in issues(client, tenant)}
    client.post(
        api(tenant, "issues", by_name["KeyError"], "merge"),
        json={"ids": [by_name["TypeError"]]},
        headers=tenant.headers(),
    )
    type_error_fp = stored(database)[1].fingerprint
    response = client.post(
        api(tenant, "issues", by_name["KeyError"], "split"),
        json={"fingerprints": [{"fingerprint": type_error_fp, "name": "TypeError again"}]},
        headers=tenant.headers(),
    )
    [new_id] = response.json()["new_issue_ids"]
    send(client, tenant, database, exception_event(exception("TypeError")))
    counts = {issue["id"]: issue["aggregations"]["occurrences"] for issue in issues(client, tenant)}
    assert counts == {by_name["KeyError"]: 1, new_id: 2}
    assert stored(database)[-1].properties["$exception_issue_id"] == new_id


# --- suppression rules -------------------------------------------------------------------------


def test_a_suppression_rule_drops_matching_events(client: TestClient, tenant: Tenant, database: Database):
    create_rule(client, tenant, "suppression_rules", filters=match(TYPE_ERROR))
    send(client, tenant, database, exception_event(exception("TypeError")), exception_event(exception("KeyError")))
    assert [issue["name"] for issue in issues(client, tenant)] == ["KeyError"]
    assert drops(database) == {"suppressed_by_rule": 1}


def test_a_rule_from_posthogs_editor_matches_the_exception_properties(
    client: TestClient, tenant: Tenant, database: Database
):
    editor_filter = {
        "key": "$exception_values",
        "type": "error_tracking_issue_property",
        "operator": "icontains",
        "value": "resizeobserver",
    }
    create_rule(client, tenant, "suppression_rules", filters=match(editor_filter))
    send(
        client,
        tenant,
        database,
        exception_event(exception("Error", "ResizeObserver loop limit exceeded")),
        exception_event(exception("Error", "real problem")),
    )
    assert [issue["description"] for issue in issues(client, tenant)] == ["real problem"]


def test_suppression_sampling_is_decided_by_the_event_uuid(client: TestClient, tenant: Tenant, database: Database):
    create_rule(client, tenant, "suppression_rules", filters=match(TYPE_ERROR), sampling_rate=0.5)
    events = [exception_event(exception("TypeError")) for _ in range(60)]
    send(client, tenant, database, *events)
    kept = {event["uuid"] for event in events if not should_suppress(0.5, uuid.UUID(event["uuid"]))}
    assert 0 < len(kept) < 60
    assert {str(row.uuid) for row in stored(database)} == kept


def test_an_empty_suppression_rule_drops_everything(client: TestClient, tenant: Tenant, database: Database):
    create_rule(client, tenant, "suppression_rules")
    send(client, tenant, database, exception_event())
    assert stored(database) == []


def test_rules_apply_in_order_first_match_wins(client: TestClient, tenant: Tenant, database: Database):
    keep_all = create_rule(client, tenant, "suppression_rules", filters=match(TYPE_ERROR), sampling_rate=0.0)
    create_rule(client, tenant, "suppression_rules", filters=match(TYPE_ERROR))
    patch(client, tenant, "suppression_rules", "reorder", orders={keep_all["id"]: -1})
    send(client, tenant, database, exception_event(exception("TypeError")))
    assert len(stored(database)) == 1


# --- grouping rules ----------------------------------------------------------------------------


def test_a_grouping_rule_groups_different_exceptions_and_assigns(
    client: TestClient, tenant: Tenant, database: Database
):
    rule = create_rule(
        client,
        tenant,
        "grouping_rules",
        filters=match({"key": "$exception_sources", "type": "event", "operator": "icontains", "value": "billing/"}),
        assignee={"type": "user", "id": tenant.user_id},
        description="billing",
    )
    billing = [python_frame("charge", filename="billing/pay.py")]
    send(
        client,
        tenant,
        database,
        exception_event(exception("TimeoutError", frames=billing)),
        exception_event(exception("KeyError", frames=billing)),
        exception_event(exception("KeyError")),
    )
    rows = stored(database)
    assert [row.fingerprint for row in rows[:2]] == [f"custom-rule:{rule['id']}"] * 2
    assert rows[0].properties["$exception_fingerprint_record"] == [{"type": "custom", "rule_id": rule["id"]}]
    grouped = next(issue for issue in issues(client, tenant) if issue["aggregations"]["occurrences"] == 2)
    assert grouped["assignee"] == {"type": "user", "id": tenant.user_id}
    listed = client.get(api(tenant, "grouping_rules"), headers=tenant.headers()).json()["results"]
    assert listed[0]["issue"] == {"id": grouped["id"], "name": grouped["name"]}


def test_a_client_fingerprint_beats_a_grouping_rule_and_its_assignee(
    client: TestClient, tenant: Tenant, database: Database
):
    create_rule(
        client, tenant, "grouping_rules", filters=match(TYPE_ERROR), assignee={"type": "user", "id": tenant.user_id}
    )
    send(client, tenant, database, exception_event(exception("TypeError"), **{"$exception_fingerprint": "mine"}))
    [row] = stored(database)
    assert row.fingerprint == "mine"
    assert row.properties["$exception_proposed_fingerprint"].startswith("custom-rule:")
    assert only_issue(client, tenant)["assignee"] is None


# --- assignment rules --------------------------------------------------------------------------


def test_an_assignment_rule_assigns_new_issues(client: TestClient, tenant: Tenant, database: Database):
    create_rule(
        client, tenant, "assignment_rules", filters=match(TYPE_ERROR), assignee={"type": "user", "id": tenant.user_id}
    )
    send(client, tenant, database, exception_event(exception("TypeError")), exception_event(exception("KeyError")))
    assignees = {issue["name"]: issue["assignee"] for issue in issues(client, tenant)}
    assert assignees == {"TypeError": {"type": "user", "id": tenant.user_id}, "KeyError": None}


def test_an_assignment_rule_never_replaces_an_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        other = make_user(session, tenant.organization_id)
        session.commit()
        other_id = other.id
    send(client, tenant, database, exception_event(exception("TypeError")))
    issue_id = only_issue(client, tenant)["id"]
    patch(client, tenant, "issues", issue_id, "assign", assignee={"type": "user", "id": other_id})
    patch(client, tenant, "issues", issue_id, status="resolved")
    create_rule(
        client, tenant, "assignment_rules", filters=match(TYPE_ERROR), assignee={"type": "user", "id": tenant.user_id}
    )
    send(client, tenant, database, exception_event(exception("TypeError")))  # reopens; the rule runs again
    issue = only_issue(client, tenant)
    assert (issue["status"], issue["assignee"]) == ("active", {"type": "user", "id": other_id})


def test_an_assignment_rule_runs_again_on_reopen(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(exception("TypeError")))
    issue_id = only_issue(client, tenant)["id"]
    patch(client, tenant, "issues", issue_id, status="resolved")
    create_rule(
        client, tenant, "assignment_rules", filters=match(TYPE_ERROR), assignee={"type": "user", "id": tenant.user_id}
    )
    send(client, tenant, database, exception_event(exception("TypeError")))
    assert only_issue(client, tenant)["assignee"] == {"type": "user", "id": tenant.user_id}


def test_assignment_rules_can_read_the_issue(client: TestClient, tenant: Tenant, database: Database):
    by_name = {"key": "name", "type": "error_tracking_issue", "operator": "icontains", "value": "checkout"}
    create_rule(
        client, tenant, "assignment_rules", filters=match(by_name), assignee={"type": "user", "id": tenant.user_id}
    )
    send(
        client,
        tenant,
        database,
        exception_event(**{"$issue_name": "Checkout failed"}),
        exception_event(exception("KeyError")),
    )
    assignees = {issue["name"]: issue["assignee"] for issue in issues(client, tenant)}
    assert assignees == {"Checkout failed": {"type": "user", "id": tenant.user_id}, "KeyError": None}


# --- disabled rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["suppression_rules", "grouping_rules", "assignment_rules"])
def test_a_rule_that_cannot_be_evaluated_is_disabled_and_skipped(
    client: TestClient, tenant: Tenant, database: Database, kind: str
):
    bad_regex = {"key": "$exception_values", "type": "event", "operator": "regex", "value": "(unclosed"}
    extra: dict[str, Any] = {} if kind == "suppression_rules" else {"assignee": {"type": "user", "id": tenant.user_id}}
    rule = create_rule(client, tenant, kind, filters=match(bad_regex), **extra)
    send(client, tenant, database, exception_event(exception("TypeError")))
    disabled = client.get(api(tenant, kind, rule["id"]), headers=tenant.headers()).json()["disabled_data"]
    assert disabled is not None
    assert "regex" in disabled["message"].lower() or "unclosed" in disabled["message"].lower()
    assert disabled["props"]["$exception_types"] == ["TypeError"]
    issue = only_issue(client, tenant)
    assert issue["assignee"] is None
    assert stored(database)[0].fingerprint != f"custom-rule:{rule['id']}"


def test_a_disabled_rule_is_skipped_until_edited(client: TestClient, tenant: Tenant, database: Database):
    rule = create_rule(client, tenant, "suppression_rules", filters=match(TYPE_ERROR))
    with database.session(write=True) as session:
        session.get_one(SuppressionRule, uuid.UUID(rule["id"])).disabled_data = {"message": "was broken", "props": {}}
        session.commit()
    send(client, tenant, database, exception_event(exception("TypeError")))
    assert len(stored(database)) == 1
    patch(client, tenant, "suppression_rules", rule["id"], sampling_rate=1.0)  # editing clears disabled_data
    send(client, tenant, database, exception_event(exception("TypeError")))
    assert len(stored(database)) == 1
    assert drops(database) == {"suppressed_by_rule": 1}


def test_rules_of_another_project_do_not_apply(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    create_rule(client, other_tenant, "suppression_rules", filters=match(TYPE_ERROR))
    send(client, tenant, database, exception_event(exception("TypeError")))
    assert len(stored(database)) == 1


def test_fingerprint_rows_keep_first_and_last_seen(client: TestClient, tenant: Tenant, database: Database):
    send(client, tenant, database, exception_event(timestamp="2026-11-20T10:00:00Z"))
    send(client, tenant, database, exception_event(timestamp="2026-11-21T10:00:00Z"))
    with database.session(write=False) as session:
        [row] = session.scalars(select(IssueFingerprint))
    assert (row.occurrences, row.first_seen.day, row.last_seen and row.last_seen.day) == (2, 20, 21)


def test_a_client_fingerprint_with_a_nul_is_stored_and_found_by_it(
    client: TestClient, tenant: Tenant, database: Database
):
    # PostgreSQL text cannot hold NUL: the pipeline stores U+FFFD, and a lookup by the value
    # the client sent finds it there.
    send(client, tenant, database, exception_event(exception("ValueError"), **{"$exception_fingerprint": "a\x00b"}))
    [row] = stored(database)
    assert row.fingerprint == "a\ufffdb"
    response = client.get(
        f"/api/projects/{tenant.project_id}/error_tracking/fingerprints/resolve",
        params={"fingerprint": "a\x00b"},
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["issue_id"] == row.properties["$exception_issue_id"]


def test_nul_anywhere_in_an_event_is_stored_as_a_replacement_character(
    client: TestClient, tenant: Tenant, database: Database
):
    event = exception_event(
        exception("ValueError", "bad\x00value"),
        **{
            "$session_id": "s\x00",
            "$current_url": "https://example.com/\x00",
            "$release": "1.0\x00",
            "plan\x00": ["pro\x00", {"nested\x00": "deep\x00"}],
        },
    )
    event["distinct_id"] = "user\x00"
    send(client, tenant, database, event)
    [row] = stored(database)  # on PostgreSQL, one NUL anywhere used to fail the whole batch
    props = row.properties
    assert (row.distinct_id, row.session_id) == ("user\ufffd", "s\ufffd")
    assert props["$current_url"] == "https://example.com/\ufffd"
    assert props["$release"] == "1.0\ufffd"
    assert props["plan\ufffd"] == ["pro\ufffd", {"nested\ufffd": "deep\ufffd"}]
    # The exception list keeps cymbal's own rule (NUL replaced there too).
    assert props["$exception_list"][0]["value"] == "bad\ufffdvalue"
    assert only_issue(client, tenant)["description"] == "bad\ufffdvalue"
