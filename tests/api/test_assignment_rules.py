"""Assignment rules: who new and reopened issues matching a rule are assigned to."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant, make_project, make_role, make_user
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.rules.models import AssignmentRule

KIND = "assignment_rules"
FILTERS: dict[str, Any] = {
    "type": "OR",
    "values": [
        {
            "type": "AND",
            "values": [{"key": "$exception_types", "type": "event", "value": ["TypeError"], "operator": "exact"}],
        }
    ],
}
OTHER_FILTERS: dict[str, Any] = {
    "type": "AND",
    "values": [{"key": "$exception_values", "type": "event", "value": "timeout", "operator": "icontains"}],
}
MATCH_ALL: dict[str, Any] = {"type": "AND", "values": []}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def url(prefix: str, project_id: int, *parts: str, slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{project_id}/error_tracking/{KIND}", *parts])
    return path + "/" if slash else path


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def me(tenant: Tenant) -> dict[str, Any]:
    return {"type": "user", "id": tenant.user_id}


def create(client: TestClient, tenant: Tenant, prefix: str = "/api/projects", **body: Any) -> dict[str, Any]:
    body.setdefault("filters", FILTERS)
    body.setdefault("assignee", me(tenant))
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


def stored(database: Database, rule_id: str) -> AssignmentRule:
    with database.session(write=False) as session:
        rule = session.scalar(select(AssignmentRule).where(AssignmentRule.id == uuid.UUID(rule_id)))
        assert rule is not None
        return rule


def post(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> Any:
    return client.post(url("/api/projects", tenant.project_id), json=body, headers=tenant.headers())


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_create_answers_201_with_the_rule(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    response = client.post(
        url(prefix, tenant.project_id, slash=slash),
        json={"filters": FILTERS, "assignee": me(tenant)},
        headers=tenant.headers(),
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "filters": FILTERS,
        "assignee": {"type": "user", "id": tenant.user_id},
        "order_key": 0,
        "disabled_data": None,
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["created_at"].endswith("Z")
    assert abs(datetime.fromisoformat(body["created_at"]) - utcnow()) < timedelta(minutes=1)
    assert retrieve(client, tenant, body["id"]) == body


def test_create_stores_the_rule_in_this_project(client: TestClient, tenant: Tenant, database: Database):
    rule = create(client, tenant)

    row = stored(database, rule["id"])
    assert row.project_id == tenant.project_id
    assert row.filters == FILTERS
    assert (row.user_id, row.role_id) == (tenant.user_id, None)


@pytest.mark.parametrize(
    "filters",
    [
        MATCH_ALL,
        {"type": "OR", "values": []},
        {"type": "AND", "values": [{"type": "empty"}]},
        {"type": "AND", "values": [{"type": "OR", "values": []}]},
    ],
)
def test_create_accepts_filters_without_values_to_match_everything(
    client: TestClient, tenant: Tenant, filters: dict[str, Any]
):
    assert create(client, tenant, filters=filters)["filters"] == filters


def test_create_keeps_a_given_order_key(client: TestClient, tenant: Tenant):
    assert create(client, tenant)["order_key"] == 0
    rule = create(client, tenant, order_key=-4)
    assert rule["order_key"] == -4
    assert retrieve(client, tenant, rule["id"])["order_key"] == -4


@pytest.mark.parametrize("order_key", [2**31, -(2**31) - 1])
def test_create_rejects_an_order_key_out_of_range(client: TestClient, tenant: Tenant, order_key: int):
    response = post(client, tenant, {"filters": FILTERS, "assignee": me(tenant), "order_key": order_key})

    assert response.status_code == 400
    assert response.json()["code"] in ("max_value", "min_value")
    assert response.json()["attr"] == "order_key"


def test_create_ignores_read_only_and_unknown_fields(client: TestClient, tenant: Tenant):
    rule = create(
        client, tenant, id=str(uuid.uuid4()), disabled_data={"message": "x"}, updated_at="2000-01-01T00:00:00Z"
    )

    assert rule["disabled_data"] is None
    assert rule["updated_at"] == rule["created_at"]


def test_create_with_role_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id

    rule = create(client, tenant, assignee={"type": "role", "id": str(role_id)})

    assert rule["assignee"] == {"type": "role", "id": str(role_id)}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (None, role_id)


def test_create_with_another_member_as_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        user_id = make_user(session, tenant.organization_id).id
        session.commit()

    assert create(client, tenant, assignee={"type": "user", "id": user_id})["assignee"] == {
        "type": "user",
        "id": user_id,
    }
    assert create(client, tenant, assignee={"type": "user", "id": str(user_id)})["assignee"] == {
        "type": "user",
        "id": user_id,
    }


def test_create_requires_filters(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json={"assignee": me(tenant)}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "filters", code="required")


def test_create_requires_an_assignee(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json={"filters": FILTERS}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "assignee", code="required")


def test_create_refuses_a_null_assignee(client: TestClient, tenant: Tenant):
    response = post(client, tenant, {"filters": FILTERS, "assignee": None})

    assert response.status_code == 400
    assert response.json() == invalid("This field may not be null.", "assignee", code="null")


def test_create_with_an_empty_body(client: TestClient, tenant: Tenant):
    response = client.post(url("/api/projects", tenant.project_id), headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "filters", code="required")


@pytest.mark.parametrize("filters", [[], [FILTERS], 42, "not-an-object", False])
def test_create_rejects_filters_that_are_not_an_object(client: TestClient, tenant: Tenant, filters: Any):
    response = post(client, tenant, {"filters": filters, "assignee": me(tenant)})

    assert response.status_code == 400
    assert response.json() == invalid("Expected a JSON object.", "filters")


@pytest.mark.parametrize(
    "filters",
    [
        {"not": "a valid property group"},
        {"type": "AND"},
        {"values": []},
        {"type": "and", "values": []},
        {"type": "AND", "values": {}},
        {"type": "AND", "values": 5},
        {"type": "AND", "values": [], "extra": True},
        {"type": "AND", "values": [None]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "operator": "sounds_like"}]},
        {"type": "AND", "values": [{"type": {"nested": 1}, "key": "a"}]},
        {"type": "AND", "values": [{"type": "OR", "values": [{"type": "session", "key": "$duration"}]}]},
    ],
)
def test_create_rejects_malformed_filters(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    response = post(client, tenant, {"filters": filters, "assignee": me(tenant)})

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["code"] == "invalid_input"
    assert body["attr"] == "filters"
    assert body["detail"].startswith("Invalid filters payload")
    assert listed_ids(client, tenant) == []


ASSIGNEE_ERRORS: list[tuple[Any, dict[str, Any]]] = [
    (
        {"type": "user", "id": str(uuid.UUID(int=7))},
        invalid("User assignee IDs must be integers.", "assignee__id"),
    ),
    ({"type": "role", "id": 42}, invalid("Role assignee IDs must be UUIDs.", "assignee__id")),
    ({"type": "role", "id": "42"}, invalid("Role assignee IDs must be UUIDs.", "assignee__id")),
    ({"type": "user", "id": True}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": 2.0}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": "abc"}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": ""}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "role", "id": {"id": 1}}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "group", "id": 1}, invalid('"group" is not a valid choice.', "assignee__type", code="invalid_choice")),
    ({"type": "User", "id": 1}, invalid('"User" is not a valid choice.', "assignee__type", code="invalid_choice")),
    ({"type": "role"}, invalid("This field is required.", "assignee__id", code="required")),
    ({}, invalid("This field is required.", "assignee__type", code="required")),
    ([{"type": "user", "id": 1}], invalid("Invalid data. Expected a dictionary, but got list.", "assignee")),
]


@pytest.mark.parametrize(("assignee", "error"), ASSIGNEE_ERRORS)
def test_create_rejects_invalid_assignees(client: TestClient, tenant: Tenant, assignee: Any, error: dict[str, Any]):
    response = post(client, tenant, {"filters": FILTERS, "assignee": assignee})

    assert response.status_code == 400
    assert response.json() == error
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize("user_id", [999_999, 2**31, str(2**40)])
def test_create_rejects_a_user_outside_the_organization(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, user_id: int | str
):
    for ident in (other_tenant.user_id, user_id):
        response = post(client, tenant, {"filters": FILTERS, "assignee": {"type": "user", "id": ident}})
        assert response.status_code == 400
        assert response.json() == invalid("Assignee user does not belong to this organization.", "assignee__id")
    assert listed_ids(client, tenant) == []


def test_create_rejects_a_role_outside_the_organization(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        foreign_role_id = make_role(session, other_tenant.organization_id).id

    for role_id in (foreign_role_id, uuid.uuid4()):
        response = post(client, tenant, {"filters": FILTERS, "assignee": {"type": "role", "id": str(role_id)}})
        assert response.status_code == 400
        assert response.json() == invalid("Assignee role does not belong to this organization.", "assignee__id")
    assert listed_ids(client, tenant) == []


def test_create_from_a_form_body(client: TestClient, tenant: Tenant, prefix: str, database: Database):
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id

    response = client.post(
        url(prefix, tenant.project_id),
        data={
            "filters": json.dumps(FILTERS),
            "assignee": json.dumps({"type": "role", "id": str(role_id)}),
            "order_key": "2",
        },
        headers=tenant.headers(),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filters"] == FILTERS
    assert body["assignee"] == {"type": "role", "id": str(role_id)}
    assert body["order_key"] == 2


def test_form_body_without_assignee(client: TestClient, tenant: Tenant):
    response = client.post(
        url("/api/projects", tenant.project_id), data={"filters": json.dumps(MATCH_ALL)}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "assignee", code="required")


# --- retrieve -------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_retrieve(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant)

    response = client.get(url(prefix, tenant.project_id, rule["id"], slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == rule


@pytest.mark.parametrize("rule_id", [str(uuid.uuid4()), "not-a-uuid", "0", "reorders"])
def test_unknown_or_malformed_ids_are_not_found(client: TestClient, tenant: Tenant, prefix: str, rule_id: str):
    headers = tenant.headers()
    target = url(prefix, tenant.project_id, rule_id)

    for response in (
        client.get(target, headers=headers),
        client.patch(target, json={}, headers=headers),
        client.put(target, json={}, headers=headers),
        client.delete(target, headers=headers),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_rule_of_another_project_is_not_found(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    response = client.post(
        url("/api/projects", second_id), json={"filters": FILTERS, "assignee": me(tenant)}, headers=tenant.headers()
    )
    assert response.status_code == 201
    rule_id = response.json()["id"]
    target = url("/api/projects", tenant.project_id, rule_id)

    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND
    assert client.patch(target, json={"filters": MATCH_ALL}, headers=tenant.headers()).json() == NOT_FOUND
    assert client.put(target, json={"filters": MATCH_ALL}, headers=tenant.headers()).json() == NOT_FOUND
    assert client.delete(target, headers=tenant.headers()).json() == NOT_FOUND
    assert listed_ids(client, tenant) == []
    assert stored(database, rule_id).filters == FILTERS


def test_rule_of_another_organization_is_not_found(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    foreign = create(client, other_tenant)

    response = client.get(url("/api/projects", tenant.project_id, foreign["id"]), headers=tenant.headers())

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("slash", [False, True])
def test_update_answers_204_without_a_body(
    client: TestClient, tenant: Tenant, prefix: str, method: str, slash: bool, database: Database
):
    rule = create(client, tenant)
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id

    response = client.request(
        method,
        url(prefix, tenant.project_id, rule["id"], slash=slash),
        json={"filters": OTHER_FILTERS, "assignee": {"type": "role", "id": str(role_id)}},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    assert response.content == b""
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == OTHER_FILTERS
    assert after["assignee"] == {"type": "role", "id": str(role_id)}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (None, role_id)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_keeps_omitted_fields(client: TestClient, tenant: Tenant, method: str):
    rule = create(client, tenant, order_key=3)
    target = url("/api/projects", tenant.project_id, rule["id"])

    assert client.request(method, target, json={}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in rule.items() if k != "updated_at"}

    assert client.request(method, target, json={"filters": MATCH_ALL}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == MATCH_ALL
    assert after["assignee"] == me(tenant)
    assert after["order_key"] == 3


def test_update_ignores_read_only_fields(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=2)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]),
        json={"order_key": 50, "created_at": "2000-01-01T00:00:00Z", "disabled_data": {"message": "x"}},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["order_key"] == 2
    assert after["created_at"] == rule["created_at"]
    assert after["disabled_data"] is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"filters": "everything"}, invalid("Expected a JSON object.", "filters")),
        (
            {"assignee": {"type": "user", "id": "x"}},
            invalid("Expected an integer user ID or UUID role ID.", "assignee__id"),
        ),
        (
            {"assignee": {"type": "role", "id": str(uuid.uuid4())}},
            invalid("Assignee role does not belong to this organization.", "assignee__id"),
        ),
        (
            {"assignee": {"type": "user", "id": 2**31}},
            invalid("Assignee user does not belong to this organization.", "assignee__id"),
        ),
        (
            {"assignee": {"type": "team", "id": 1}},
            invalid('"team" is not a valid choice.', "assignee__type", code="invalid_choice"),
        ),
    ],
)
def test_invalid_update_changes_nothing(
    client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any], error: dict[str, Any]
):
    rule = create(client, tenant)
    with database.session(write=True) as session:
        session.execute(update(AssignmentRule).values(disabled_data={"message": "broken"}))
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.put(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    assert retrieve(client, tenant, rule["id"]) == before


def test_update_with_malformed_filters(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]), json={"filters": {"type": "AND"}}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid filters payload")
    assert response.json()["attr"] == "filters"
    assert retrieve(client, tenant, rule["id"])["filters"] == FILTERS


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_any_update_clears_disabled_data(client: TestClient, tenant: Tenant, database: Database, method: str):
    rule = create(client, tenant)
    disabled = {"message": "Rule failed to evaluate", "props": {"line": 3}}
    with database.session(write=True) as session:
        session.execute(
            update(AssignmentRule).where(AssignmentRule.id == uuid.UUID(rule["id"])).values(disabled_data=disabled)
        )
        session.commit()
    assert retrieve(client, tenant, rule["id"])["disabled_data"] == disabled

    response = client.request(
        method, url("/api/projects", tenant.project_id, rule["id"]), json={}, headers=tenant.headers()
    )

    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["disabled_data"] is None


@pytest.mark.parametrize("body", [{}, {"filters": FILTERS}, {"assignee": {"type": "user", "id": "USER"}}])
def test_update_moves_updated_at_forward(client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any]):
    rule = create(client, tenant)
    if "assignee" in body:
        body = {"assignee": me(tenant)}
    past = utcnow() - timedelta(days=1)
    with database.session(write=True) as session:
        session.execute(
            update(AssignmentRule)
            .where(AssignmentRule.id == uuid.UUID(rule["id"]))
            .values(created_at=past, updated_at=past)
        )
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.put(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) > past + timedelta(hours=23)
    assert after["updated_at"].endswith("Z")


def test_update_from_a_form_body(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]),
        data={"filters": json.dumps(OTHER_FILTERS)},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["filters"] == OTHER_FILTERS


# --- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_delete(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
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


# --- list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_list(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant)

    response = client.get(url(prefix, tenant.project_id, slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [rule]}


def test_list_orders_by_order_key_then_creation(client: TestClient, tenant: Tenant):
    b = create(client, tenant, order_key=1)
    d = create(client, tenant, order_key=3)
    a = create(client, tenant, order_key=0)
    c = create(client, tenant, order_key=1)

    assert listed_ids(client, tenant) == [a["id"], b["id"], c["id"], d["id"]]


def test_list_shows_only_this_projects_rules(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    mine = create(client, tenant)
    create(client, other_tenant)

    assert listed_ids(client, tenant) == [mine["id"]]


@pytest.mark.parametrize("slash", [False, True])
def test_list_pagination(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    ids = [create(client, tenant, order_key=i)["id"] for i in range(4)]
    base = url(prefix, tenant.project_id, slash=slash)
    absolute = f"http://testserver{base}"

    page = client.get(base, params={"limit": 3}, headers=tenant.headers()).json()
    assert page["count"] == 4
    assert [r["id"] for r in page["results"]] == ids[:3]
    assert page["next"] == f"{absolute}?limit=3&offset=3"
    assert page["previous"] is None

    page = client.get(page["next"], headers=tenant.headers()).json()
    assert [r["id"] for r in page["results"]] == ids[3:]
    assert page["next"] is None
    assert page["previous"] == f"{absolute}?limit=3"

    page = client.get(base, params={"limit": 1, "offset": 2}, headers=tenant.headers()).json()
    assert [r["id"] for r in page["results"]] == ids[2:3]
    assert page["next"] == f"{absolute}?limit=1&offset=3"
    assert page["previous"] == f"{absolute}?limit=1&offset=1"


# --- reorder --------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_reorder(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=1)

    response = client.patch(
        url(prefix, tenant.project_id, "reorder", slash=slash),
        json={"orders": {a["id"]: 1, b["id"]: 0}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.content == b""
    assert listed_ids(client, tenant) == [b["id"], a["id"]]
    assert retrieve(client, tenant, a["id"])["order_key"] == 1


def test_reorder_ignores_rules_of_other_projects(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    mine = create(client, tenant, order_key=0)
    foreign = create(client, other_tenant, order_key=4)
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    sibling = client.post(
        url("/api/projects", second_id),
        json={"filters": FILTERS, "assignee": me(tenant), "order_key": 6},
        headers=tenant.headers(),
    ).json()

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {mine["id"]: 8, foreign["id"]: 1, sibling["id"]: 2}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert retrieve(client, tenant, mine["id"])["order_key"] == 8
    assert stored(database, foreign["id"]).order_key == 4
    assert stored(database, sibling["id"]).order_key == 6


def test_reorder_ignores_rules_of_other_kinds(client: TestClient, tenant: Tenant, database: Database):
    mine = create(client, tenant, order_key=0)
    suppression = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/suppression_rules",
        json={"order_key": 5},
        headers=tenant.headers(),
    ).json()

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {mine["id"]: 1, suppression["id"]: 0}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert retrieve(client, tenant, mine["id"])["order_key"] == 1
    listed = client.get(
        f"/api/projects/{tenant.project_id}/error_tracking/suppression_rules/{suppression['id']}",
        headers=tenant.headers(),
    )
    assert listed.json()["order_key"] == 5


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"orders": None}, invalid("This field may not be null.", "orders", code="null")),
        ({"orders": {"RULE": "1st"}}, invalid("A valid integer is required.", "orders__RULE")),
        ({"orders": {"RULE": None}}, invalid("This field may not be null.", "orders__RULE", code="null")),
        (
            {"orders": {"RULE": -(2**31) - 1}},
            invalid("Ensure this value is greater than or equal to -2147483648.", "orders__RULE", code="min_value"),
        ),
    ],
)
def test_reorder_rejects_invalid_bodies(
    client: TestClient, tenant: Tenant, body: dict[str, Any], error: dict[str, Any]
):
    rule = create(client, tenant, order_key=1)
    if isinstance(body.get("orders"), dict):
        body = {"orders": {rule["id"]: body["orders"]["RULE"]}}
    if error["attr"]:
        error = {**error, "attr": error["attr"].replace("RULE", rule["id"])}

    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    assert retrieve(client, tenant, rule["id"])["order_key"] == 1


def test_reorder_rejects_a_key_that_is_not_a_uuid(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=1)

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {rule["id"]: 5, "first": 0}},
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["code"], body["detail"]) == (
        "validation_error",
        "invalid_input",
        "Must be a valid UUID.",
    )
    assert body["attr"].startswith("orders__first")
    assert retrieve(client, tenant, rule["id"])["order_key"] == 1


# --- scopes ---------------------------------------------------------------------------------


def test_read_key_can_list_and_retrieve_but_not_write(client: TestClient, tenant: Tenant, prefix: str):
    rule = create(client, tenant)
    read = tenant.headers("read")

    assert client.get(url(prefix, tenant.project_id), headers=read).json()["results"] == [rule]
    assert client.get(url(prefix, tenant.project_id, rule["id"]), headers=read).json() == rule

    denied = [
        client.post(url(prefix, tenant.project_id), json={"filters": FILTERS, "assignee": me(tenant)}, headers=read),
        client.patch(url(prefix, tenant.project_id, rule["id"]), json={"filters": MATCH_ALL}, headers=read),
        client.put(url(prefix, tenant.project_id, rule["id"]), json={"filters": MATCH_ALL}, headers=read),
        client.delete(url(prefix, tenant.project_id, rule["id"]), headers=read),
        client.patch(url(prefix, tenant.project_id, "reorder"), json={"orders": {rule["id"]: 3}}, headers=read),
    ]
    for response in denied:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert retrieve(client, tenant, rule["id"]) == rule


def test_reorder_without_orders_changes_nothing(client: TestClient, tenant: Tenant):
    # PostHog's API reference shows a reorder call with no "orders"; PostHog treats it as empty.
    rule = create(client, tenant, order_key=7)
    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json={}, headers=tenant.headers())
    assert response.status_code == 200
    assert response.content == b""
    assert retrieve(client, tenant, rule["id"])["order_key"] == 7
