"""Suppression rules: exceptions matching a rule are dropped at ingestion, with a sampling rate."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant, make_project
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.rules.models import SuppressionRule

KIND = "suppression_rules"
FILTERS: dict[str, Any] = {
    "type": "AND",
    "values": [
        {
            "type": "OR",
            "values": [
                {"key": "$exception_values", "type": "event", "value": "ResizeObserver", "operator": "icontains"}
            ],
        }
    ],
}
OTHER_FILTERS: dict[str, Any] = {
    "type": "OR",
    "values": [{"key": "$exception_types", "type": "event", "value": ["ChunkLoadError"], "operator": "exact"}],
}
MATCH_ALL: dict[str, Any] = {"type": "AND", "values": []}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def url(prefix: str, project_id: int, *parts: str, slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{project_id}/error_tracking/{KIND}", *parts])
    return path + "/" if slash else path


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def create(client: TestClient, tenant: Tenant, prefix: str = "/api/projects", **body: Any) -> dict[str, Any]:
    response = client.post(url(prefix, tenant.project_id), json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def retrieve(client: TestClient, tenant: Tenant, rule_id: str) -> dict[str, Any]:
    response = client.get(url("/api/projects", tenant.project_id, rule_id), headers=tenant.headers())
    assert response.status_code == 200, response.text
    rule: dict[str, Any] = response.json()
    return rule


def listed_ids(client: TestClient, tenant: Tenant) -> list[str]:
    response = client.get(url("/api/projects", tenant.project_id), headers=tenant.headers())
    assert response.status_code == 200
    return [rule["id"] for rule in response.json()["results"]]


def stored(database: Database, rule_id: str) -> SuppressionRule:
    with database.session(write=False) as session:
        rule = session.scalar(select(SuppressionRule).where(SuppressionRule.id == uuid.UUID(rule_id)))
        assert rule is not None
        return rule


def post(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> Any:
    return client.post(url("/api/projects", tenant.project_id), json=body, headers=tenant.headers())


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_create_answers_201_with_the_rule(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    response = client.post(
        url(prefix, tenant.project_id, slash=slash),
        json={"filters": FILTERS, "sampling_rate": 0.25},
        headers=tenant.headers(),
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "filters": FILTERS,
        "order_key": 0,
        "disabled_data": None,
        "sampling_rate": 0.25,
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["created_at"].endswith("Z")
    assert abs(datetime.fromisoformat(body["created_at"]) - utcnow()) < timedelta(minutes=1)
    assert retrieve(client, tenant, body["id"]) == body


def test_create_with_an_empty_body_matches_everything(client: TestClient, tenant: Tenant, database: Database):
    response = client.post(url("/api/projects", tenant.project_id), headers=tenant.headers())

    assert response.status_code == 201
    body = response.json()
    assert body["filters"] == MATCH_ALL
    assert body["sampling_rate"] == 1.0
    assert isinstance(body["sampling_rate"], float)
    assert body["order_key"] == 0
    row = stored(database, body["id"])
    assert row.filters == MATCH_ALL
    assert row.sampling_rate == 1.0
    assert row.project_id == tenant.project_id


def test_create_without_filters_stores_match_all(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, sampling_rate=0.5)

    assert rule["filters"] == {"type": "AND", "values": []}
    assert retrieve(client, tenant, rule["id"])["filters"] == {"type": "AND", "values": []}


@pytest.mark.parametrize(
    "filters",
    [
        MATCH_ALL,
        {"type": "OR", "values": []},
        {"type": "AND", "values": [{"type": "empty"}]},
        {"type": "OR", "values": [{"type": "AND", "values": []}, {"type": "empty"}]},
        FILTERS,
        OTHER_FILTERS,
        {"type": "AND", "values": [{"key": "$exception_types", "value": "Error"}]},
    ],
)
def test_create_keeps_the_filters_given(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    rule = create(client, tenant, filters=filters)

    assert rule["filters"] == filters
    assert retrieve(client, tenant, rule["id"])["filters"] == filters


def test_create_keeps_a_given_order_key(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=12)

    assert rule["order_key"] == 12
    assert retrieve(client, tenant, rule["id"])["order_key"] == 12


def test_create_ignores_read_only_and_unknown_fields(client: TestClient, tenant: Tenant):
    rule = create(
        client, tenant, id=str(uuid.uuid4()), disabled_data={"message": "x"}, assignee={"type": "user", "id": 1}
    )

    assert rule["disabled_data"] is None
    assert "assignee" not in rule


@pytest.mark.parametrize("filters", [[], [FILTERS], 42, "not-an-object", True])
def test_create_rejects_filters_that_are_not_an_object(client: TestClient, tenant: Tenant, filters: Any):
    response = post(client, tenant, {"filters": filters})

    assert response.status_code == 400
    assert response.json() == invalid("Expected an object.", "filters")
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize("filters", [{}, {"type": "AND"}, {"type": "OR", "label": "nothing"}])
def test_create_rejects_an_object_without_values(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    response = post(client, tenant, {"filters": filters})

    assert response.status_code == 400
    assert response.json() == invalid("Invalid filters", "filters")
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"values": []},
        {"type": "NOT", "values": []},
        {"type": "AND", "values": None},
        {"type": "AND", "values": 5},
        {"type": "AND", "values": True},
        {"type": "AND", "values": "abc"},
        {"type": "AND", "values": {"a": 1}},
        {"type": "AND", "values": [], "extra": 1},
        {"type": "AND", "values": [1]},
        {"type": "AND", "values": [{"type": "AND", "values": 3}]},
        {"type": "AND", "values": [{"type": "event"}]},
        {"type": "AND", "values": [{"type": "element", "key": "text"}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "operator": {"op": "exact"}}]},
        {"type": "AND", "values": [{"type": ["event"], "key": "a"}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "value": [{"x": 1}]}]},
        {"type": "AND", "values": [{"type": "empty", "value": "x"}]},
    ],
)
def test_create_rejects_malformed_filters(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    response = post(client, tenant, {"filters": filters})

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["code"] == "invalid_input"
    assert body["attr"] == "filters"
    assert body["detail"].startswith("Invalid filters payload")
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize("rate", [0, 0.0, 0.001, 0.5, 1, 1.0])
def test_create_accepts_sampling_rates_from_zero_to_one(client: TestClient, tenant: Tenant, rate: float):
    rule = create(client, tenant, sampling_rate=rate)

    assert rule["sampling_rate"] == rate
    assert isinstance(rule["sampling_rate"], float)
    assert retrieve(client, tenant, rule["id"])["sampling_rate"] == rate


@pytest.mark.parametrize(
    ("rate", "error"),
    [
        (1.01, invalid("Ensure this value is less than or equal to 1.0.", "sampling_rate", code="max_value")),
        (2, invalid("Ensure this value is less than or equal to 1.0.", "sampling_rate", code="max_value")),
        (-0.1, invalid("Ensure this value is greater than or equal to 0.0.", "sampling_rate", code="min_value")),
        (-1, invalid("Ensure this value is greater than or equal to 0.0.", "sampling_rate", code="min_value")),
        ("half", invalid("A valid number is required.", "sampling_rate")),
        ([0.5], invalid("A valid number is required.", "sampling_rate")),
        ({"rate": 0.5}, invalid("A valid number is required.", "sampling_rate")),
        (None, invalid("This field may not be null.", "sampling_rate", code="null")),
    ],
)
def test_create_rejects_bad_sampling_rates(client: TestClient, tenant: Tenant, rate: Any, error: dict[str, Any]):
    response = post(client, tenant, {"filters": FILTERS, "sampling_rate": rate})

    assert response.status_code == 400
    assert response.json() == error
    assert listed_ids(client, tenant) == []


def test_create_accepts_a_numeric_string_sampling_rate(client: TestClient, tenant: Tenant):
    assert create(client, tenant, sampling_rate="0.75")["sampling_rate"] == 0.75


def test_create_from_a_form_body(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id),
        data={"filters": json.dumps(FILTERS), "sampling_rate": "0.25", "order_key": "3"},
        headers=tenant.headers(),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filters"] == FILTERS
    assert body["sampling_rate"] == 0.25
    assert body["order_key"] == 3


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"sampling_rate": "1.5"},
            invalid("Ensure this value is less than or equal to 1.0.", "sampling_rate", code="max_value"),
        ),
        ({"sampling_rate": "nan"}, None),
        ({"sampling_rate": "lots"}, invalid("A valid number is required.", "sampling_rate")),
        ({"filters": "everything"}, invalid("Expected an object.", "filters")),
    ],
)
def test_form_body_errors(client: TestClient, tenant: Tenant, data: dict[str, str], error: dict[str, Any] | None):
    response = client.post(url("/api/projects", tenant.project_id), data=data, headers=tenant.headers())

    assert response.status_code == 400
    if error is not None:
        assert response.json() == error
    else:
        assert response.json()["attr"] == "sampling_rate"
    assert listed_ids(client, tenant) == []


# --- retrieve -------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_retrieve(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant, filters=FILTERS, sampling_rate=0.1)

    response = client.get(url(prefix, tenant.project_id, rule["id"], slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == rule


@pytest.mark.parametrize("rule_id", [str(uuid.uuid4()), "nope", "42", f"{uuid.uuid4()}x"])
def test_unknown_or_malformed_ids_are_not_found(client: TestClient, tenant: Tenant, prefix: str, rule_id: str):
    headers = tenant.headers()
    target = url(prefix, tenant.project_id, rule_id)

    for response in (
        client.get(target, headers=headers),
        client.patch(target, json={"sampling_rate": 0.5}, headers=headers),
        client.put(target, json={"sampling_rate": 0.5}, headers=headers),
        client.delete(target, headers=headers),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_rule_of_another_project_is_not_found(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    response = client.post(url("/api/projects", second_id), json={"sampling_rate": 0.3}, headers=tenant.headers())
    assert response.status_code == 201
    rule_id = response.json()["id"]
    target = url("/api/projects", tenant.project_id, rule_id)

    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND
    assert client.patch(target, json={"sampling_rate": 1}, headers=tenant.headers()).json() == NOT_FOUND
    assert client.put(target, json={"sampling_rate": 1}, headers=tenant.headers()).json() == NOT_FOUND
    assert client.delete(target, headers=tenant.headers()).json() == NOT_FOUND
    assert listed_ids(client, tenant) == []
    assert stored(database, rule_id).sampling_rate == 0.3


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("slash", [False, True])
def test_update_answers_204_without_a_body(client: TestClient, tenant: Tenant, prefix: str, method: str, slash: bool):
    rule = create(client, tenant, filters=FILTERS)

    response = client.request(
        method,
        url(prefix, tenant.project_id, rule["id"], slash=slash),
        json={"filters": OTHER_FILTERS, "sampling_rate": 0.4},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    assert response.content == b""
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == OTHER_FILTERS
    assert after["sampling_rate"] == 0.4


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_keeps_omitted_fields(client: TestClient, tenant: Tenant, method: str):
    rule = create(client, tenant, filters=FILTERS, sampling_rate=0.2, order_key=4)
    target = url("/api/projects", tenant.project_id, rule["id"])

    assert client.request(method, target, json={}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in rule.items() if k != "updated_at"}

    assert client.request(method, target, json={"sampling_rate": 0.9}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["sampling_rate"] == 0.9
    assert after["filters"] == FILTERS
    assert after["order_key"] == 4

    assert client.request(method, target, json={"filters": MATCH_ALL}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == MATCH_ALL
    assert after["sampling_rate"] == 0.9


def test_update_can_set_sampling_rate_to_zero(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]), json={"sampling_rate": 0}, headers=tenant.headers()
    )

    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["sampling_rate"] == 0.0


def test_update_ignores_read_only_fields(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=2)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]),
        json={"order_key": 77, "created_at": "2000-01-01T00:00:00Z", "id": str(uuid.uuid4())},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["order_key"] == 2
    assert after["created_at"] == rule["created_at"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"sampling_rate": 1.5},
            invalid("Ensure this value is less than or equal to 1.0.", "sampling_rate", code="max_value"),
        ),
        (
            {"sampling_rate": -0.5},
            invalid("Ensure this value is greater than or equal to 0.0.", "sampling_rate", code="min_value"),
        ),
        ({"sampling_rate": "x"}, invalid("A valid number is required.", "sampling_rate")),
        ({"filters": []}, invalid("Expected an object.", "filters")),
        ({"filters": {"type": "OR"}}, invalid("Invalid filters", "filters")),
        (
            {"filters": MATCH_ALL, "sampling_rate": 3},
            invalid("Ensure this value is less than or equal to 1.0.", "sampling_rate", code="max_value"),
        ),
    ],
)
def test_invalid_update_changes_nothing(
    client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any], error: dict[str, Any]
):
    rule = create(client, tenant, filters=FILTERS, sampling_rate=0.5)
    with database.session(write=True) as session:
        session.execute(update(SuppressionRule).values(disabled_data={"message": "broken"}))
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.patch(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    assert retrieve(client, tenant, rule["id"]) == before


@pytest.mark.parametrize("filters", [{"type": "AND", "values": 5}, {"type": "AND", "values": [{"type": "event"}]}])
def test_update_with_malformed_filters(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    rule = create(client, tenant, filters=FILTERS)

    response = client.put(
        url("/api/projects", tenant.project_id, rule["id"]), json={"filters": filters}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid filters payload")
    assert response.json()["attr"] == "filters"
    assert retrieve(client, tenant, rule["id"])["filters"] == FILTERS


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_any_update_clears_disabled_data(client: TestClient, tenant: Tenant, database: Database, method: str):
    rule = create(client, tenant, filters=FILTERS)
    disabled = {"message": "Rule failed to evaluate", "props": {}}
    with database.session(write=True) as session:
        session.execute(
            update(SuppressionRule).where(SuppressionRule.id == uuid.UUID(rule["id"])).values(disabled_data=disabled)
        )
        session.commit()
    assert retrieve(client, tenant, rule["id"])["disabled_data"] == disabled

    response = client.request(
        method, url("/api/projects", tenant.project_id, rule["id"]), json={}, headers=tenant.headers()
    )

    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["disabled_data"] is None
    assert stored(database, rule["id"]).disabled_data is None


@pytest.mark.parametrize("body", [{}, {"filters": MATCH_ALL}, {"sampling_rate": 1.0}])
def test_update_moves_updated_at_forward(client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any]):
    rule = create(client, tenant)
    past = utcnow() - timedelta(days=1)
    with database.session(write=True) as session:
        session.execute(
            update(SuppressionRule)
            .where(SuppressionRule.id == uuid.UUID(rule["id"]))
            .values(created_at=past, updated_at=past)
        )
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.patch(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) > past + timedelta(hours=23)
    assert after["updated_at"].endswith("Z")


def test_update_from_a_form_body(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    response = client.put(
        url("/api/projects", tenant.project_id, rule["id"]),
        data={"filters": json.dumps(FILTERS), "sampling_rate": "0.05"},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert (after["filters"], after["sampling_rate"]) == (FILTERS, 0.05)


# --- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_delete(client: TestClient, tenant: Tenant, prefix: str, slash: bool, database: Database):
    rule = create(client, tenant)
    keep = create(client, tenant)
    target = url(prefix, tenant.project_id, rule["id"], slash=slash)

    response = client.delete(target, headers=tenant.headers())

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND
    again = client.delete(target, headers=tenant.headers())
    assert again.status_code == 404
    assert again.json() == NOT_FOUND
    assert listed_ids(client, tenant) == [keep["id"]]
    with database.session(write=False) as session:
        assert session.scalar(select(SuppressionRule).where(SuppressionRule.id == uuid.UUID(rule["id"]))) is None


# --- list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_list(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant, sampling_rate=0.5)

    response = client.get(url(prefix, tenant.project_id, slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [rule]}


def test_list_orders_by_order_key_then_creation(client: TestClient, tenant: Tenant):
    c = create(client, tenant, order_key=2)
    a = create(client, tenant, order_key=-5)
    b1 = create(client, tenant, order_key=0)
    b2 = create(client, tenant, order_key=0)

    assert listed_ids(client, tenant) == [a["id"], b1["id"], b2["id"], c["id"]]


def test_list_shows_only_this_projects_rules(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    mine = create(client, tenant)
    create(client, other_tenant)

    assert listed_ids(client, tenant) == [mine["id"]]


@pytest.mark.parametrize("slash", [False, True])
def test_list_pagination(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    ids = [create(client, tenant, order_key=i)["id"] for i in range(3)]
    base = url(prefix, tenant.project_id, slash=slash)
    absolute = f"http://testserver{base}"

    page = client.get(base, params={"limit": 1}, headers=tenant.headers()).json()
    assert page == {"count": 3, "next": f"{absolute}?limit=1&offset=1", "previous": None, "results": page["results"]}
    assert [r["id"] for r in page["results"]] == ids[:1]

    page = client.get(page["next"], headers=tenant.headers()).json()
    assert [r["id"] for r in page["results"]] == ids[1:2]
    assert page["next"] == f"{absolute}?limit=1&offset=2"
    assert page["previous"] == f"{absolute}?limit=1"

    page = client.get(page["next"], headers=tenant.headers()).json()
    assert [r["id"] for r in page["results"]] == ids[2:]
    assert page["next"] is None
    assert page["previous"] == f"{absolute}?limit=1&offset=1"


# --- reorder --------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_reorder(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=1)
    c = create(client, tenant, order_key=2)

    response = client.patch(
        url(prefix, tenant.project_id, "reorder", slash=slash),
        json={"orders": {c["id"]: 0, a["id"]: 1, b["id"]: 2}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.content == b""
    assert listed_ids(client, tenant) == [c["id"], a["id"], b["id"]]


def test_reorder_accepts_numeric_strings(client: TestClient, tenant: Tenant):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=1)

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {a["id"]: "7", b["id"]: "-7"}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert [retrieve(client, tenant, r["id"])["order_key"] for r in (a, b)] == [7, -7]


def test_reorder_ignores_rules_of_other_projects(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    mine = create(client, tenant, order_key=0)
    foreign = create(client, other_tenant, order_key=4)
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    sibling = client.post(url("/api/projects", second_id), json={"order_key": 6}, headers=tenant.headers()).json()

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {mine["id"]: 3, foreign["id"]: 1, sibling["id"]: 2}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert retrieve(client, tenant, mine["id"])["order_key"] == 3
    assert stored(database, foreign["id"]).order_key == 4
    assert stored(database, sibling["id"]).order_key == 6


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"orders": "a=1"}, "not_a_dict", 'Expected a dictionary of items but got type "str".'),
        ({"orders": {"zzz": 1}}, "invalid_input", "Must be a valid UUID."),
        ({"orders": {"RULE": "one"}}, "invalid_input", "A valid integer is required."),
        ({"orders": {"RULE": [1]}}, "invalid_input", "A valid integer is required."),
        ({"orders": {"RULE": 0.5}}, "invalid_input", "A valid integer is required."),
    ],
)
def test_reorder_rejects_invalid_bodies(
    client: TestClient, tenant: Tenant, body: dict[str, Any], code: str, detail: str
):
    rule = create(client, tenant, order_key=1)
    if isinstance(body.get("orders"), dict) and "RULE" in body["orders"]:
        body = {"orders": {rule["id"]: body["orders"]["RULE"]}}

    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    error = response.json()
    assert (error["type"], error["code"], error["detail"]) == ("validation_error", code, detail)
    assert error["attr"].startswith("orders")
    assert retrieve(client, tenant, rule["id"])["order_key"] == 1


def test_reorder_is_patch_only(client: TestClient, tenant: Tenant):
    target = url("/api/projects", tenant.project_id, "reorder")

    response = client.post(target, json={"orders": {}}, headers=tenant.headers())

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    # GET reads "reorder" as a rule id, which is malformed
    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND


# --- scopes ---------------------------------------------------------------------------------


def test_read_key_can_list_and_retrieve_but_not_write(client: TestClient, tenant: Tenant, prefix: str):
    rule = create(client, tenant)
    read = tenant.headers("read")

    assert client.get(url(prefix, tenant.project_id), headers=read).json()["results"] == [rule]
    assert client.get(url(prefix, tenant.project_id, rule["id"]), headers=read).json() == rule

    denied = [
        client.post(url(prefix, tenant.project_id), json={}, headers=read),
        client.patch(url(prefix, tenant.project_id, rule["id"]), json={"sampling_rate": 0}, headers=read),
        client.put(url(prefix, tenant.project_id, rule["id"]), json={"sampling_rate": 0}, headers=read),
        client.delete(url(prefix, tenant.project_id, rule["id"]), headers=read),
        client.patch(url(prefix, tenant.project_id, "reorder"), json={"orders": {rule["id"]: 3}}, headers=read),
    ]
    for response in denied:
        assert response.status_code == 403
        assert response.json()["detail"] == "API key missing required scope 'error_tracking:write'"
    assert retrieve(client, tenant, rule["id"]) == rule
    assert listed_ids(client, tenant) == [rule["id"]]


def test_reorder_without_orders_changes_nothing(client: TestClient, tenant: Tenant):
    # PostHog's API reference shows a reorder call with no "orders"; PostHog treats it as empty.
    rule = create(client, tenant, order_key=7)
    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json={}, headers=tenant.headers())
    assert response.status_code == 200
    assert response.content == b""
    assert retrieve(client, tenant, rule["id"])["order_key"] == 7
