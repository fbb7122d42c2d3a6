"""Grouping rules: events matching a rule share one issue (``custom-rule:<rule id>``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant, make_issue, make_project, make_role, make_user
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.rules.models import GroupingRule

KIND = "grouping_rules"
FILTERS: dict[str, Any] = {
    "type": "AND",
    "values": [
        {
            "type": "AND",
            "values": [{"key": "$exception_types", "type": "event", "value": ["TypeError"], "operator": "exact"}],
        }
    ],
}
OTHER_FILTERS: dict[str, Any] = {
    "type": "OR",
    "values": [{"key": "$exception_values", "type": "event", "value": "timeout", "operator": "icontains"}],
}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def url(prefix: str, project_id: int, *parts: str, slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{project_id}/error_tracking/{KIND}", *parts])
    return path + "/" if slash else path


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def create(client: TestClient, tenant: Tenant, prefix: str = "/api/projects", **body: Any) -> dict[str, Any]:
    body.setdefault("filters", FILTERS)
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


def stored(database: Database, rule_id: str) -> GroupingRule:
    with database.session(write=False) as session:
        rule = session.scalar(select(GroupingRule).where(GroupingRule.id == uuid.UUID(rule_id)))
        assert rule is not None
        return rule


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_create_answers_201_with_the_rule(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    response = client.post(
        url(prefix, tenant.project_id, slash=slash),
        json={"filters": FILTERS, "description": "Group TypeErrors"},
        headers=tenant.headers(),
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "filters": FILTERS,
        "assignee": None,
        "description": "Group TypeErrors",
        "issue": None,
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
    rule = create(client, tenant, description="stored")

    row = stored(database, rule["id"])
    assert row.project_id == tenant.project_id
    assert row.filters == FILTERS
    assert row.description == "stored"
    assert (row.user_id, row.role_id) == (None, None)


def test_create_without_optional_fields(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    assert rule["assignee"] is None
    assert rule["description"] is None
    assert rule["order_key"] == 0


def test_create_keeps_a_given_order_key(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=7)

    assert rule["order_key"] == 7
    assert retrieve(client, tenant, rule["id"])["order_key"] == 7


def test_create_ignores_read_only_and_unknown_fields(client: TestClient, tenant: Tenant):
    rule = create(
        client,
        tenant,
        id=str(uuid.uuid4()),
        disabled_data={"message": "local state"},
        issue={"id": str(uuid.uuid4()), "name": "x"},
        created_at="2000-01-01T00:00:00Z",
        whatever=1,
    )

    assert rule["disabled_data"] is None
    assert rule["issue"] is None
    assert rule["created_at"] != "2000-01-01T00:00:00Z"


def test_create_with_user_assignee(client: TestClient, tenant: Tenant, database: Database):
    rule = create(client, tenant, assignee={"type": "user", "id": tenant.user_id})

    assert rule["assignee"] == {"type": "user", "id": tenant.user_id}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (tenant.user_id, None)


def test_create_accepts_a_digit_string_user_id(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        user_id = make_user(session, tenant.organization_id).id
        session.commit()

    rule = create(client, tenant, assignee={"type": "user", "id": str(user_id)})

    assert rule["assignee"] == {"type": "user", "id": user_id}


def test_create_with_role_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id

    rule = create(client, tenant, assignee={"type": "role", "id": str(role_id)})

    assert rule["assignee"] == {"type": "role", "id": str(role_id)}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (None, role_id)
    assert retrieve(client, tenant, rule["id"])["assignee"] == {"type": "role", "id": str(role_id)}


def test_create_with_null_assignee(client: TestClient, tenant: Tenant):
    assert create(client, tenant, assignee=None)["assignee"] is None


def test_create_requires_filters(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json={"description": "no filters"}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "filters", code="required")


def test_create_with_an_empty_body(client: TestClient, tenant: Tenant):
    response = client.post(url("/api/projects", tenant.project_id), headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("This field is required.", "filters", code="required")


@pytest.mark.parametrize("filters", [[], [FILTERS], 42, 1.5, "not-an-object", True])
def test_create_rejects_filters_that_are_not_an_object(client: TestClient, tenant: Tenant, filters: Any):
    response = client.post(url("/api/projects", tenant.project_id), json={"filters": filters}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("Expected a JSON object.", "filters")


@pytest.mark.parametrize(
    "filters",
    [
        {"not": "a valid property group"},
        {"type": "AND"},
        {"type": "XOR", "values": [{"type": "event", "key": "a"}]},
        {"type": "AND", "values": "nope"},
        {"type": "AND", "values": 5},
        {"type": "AND", "values": [{"type": "event", "key": "a"}], "extra": 1},
        {"type": "AND", "values": ["not an object"]},
        {"type": "AND", "values": [{"type": "event"}]},
        {"type": "AND", "values": [{"type": "nonsense", "key": "a"}]},
        {"type": "AND", "values": [{"type": ["event"], "key": "a"}]},
        {"type": "AND", "values": [{"type": "person", "key": "email"}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "operator": "sounds_like"}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "operator": ["exact"]}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "value": {"nested": 1}}]},
        {"type": "AND", "values": [{"type": "event", "key": "a", "bogus": 1}]},
        {"type": "AND", "values": [{"type": "empty", "key": None}]},
        {"type": "OR", "values": [{"type": "AND", "values": [{"type": "event", "key": 1.5}]}]},
    ],
)
def test_create_rejects_malformed_filters(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    response = client.post(url("/api/projects", tenant.project_id), json={"filters": filters}, headers=tenant.headers())

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["code"] == "invalid_input"
    assert body["attr"] == "filters"
    assert body["detail"].startswith("Invalid filters payload")
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "AND", "values": []},
        {"type": "OR", "values": []},
        {"type": "AND", "values": [{"type": "empty"}]},
        {"type": "OR", "values": [{"type": "empty"}, {}]},
        {"type": "AND", "values": [{"type": "AND", "values": [{"type": "empty"}]}]},
        {"type": "AND", "values": [{"type": "OR", "values": []}, {"type": "AND", "values": [{"type": "empty"}]}]},
    ],
)
def test_create_rejects_filters_without_a_value(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    response = client.post(url("/api/projects", tenant.project_id), json={"filters": filters}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("Filters must contain at least one filter value.", "filters")


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "AND", "values": [{"key": "$exception_types", "value": ["TypeError"]}]},
        {"type": "OR", "values": [{"type": "empty"}, {"type": "person", "key": "email", "operator": "is_set"}]},
        {"type": "AND", "values": [{"type": "hogql", "key": "properties.$lib = 'web'"}]},
        {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": 3, "cohort_name": "Beta"}]},
        {
            "type": "AND",
            "values": [{"type": "group", "key": "plan", "operator": "exact", "value": "pro", "group_type_index": 0}],
        },
        {"type": "AND", "values": [{"type": "AND", "values": [{"type": "OR", "values": [FILTERS]}]}]},
    ],
)
def test_create_accepts_other_property_filters(client: TestClient, tenant: Tenant, filters: dict[str, Any]):
    assert create(client, tenant, filters=filters)["filters"] == filters


ASSIGNEE_ERRORS: list[tuple[Any, dict[str, Any]]] = [
    (
        {"type": "user", "id": str(uuid.UUID(int=1))},
        invalid("User assignee IDs must be integers.", "assignee__id"),
    ),
    ({"type": "role", "id": 42}, invalid("Role assignee IDs must be UUIDs.", "assignee__id")),
    ({"type": "role", "id": "42"}, invalid("Role assignee IDs must be UUIDs.", "assignee__id")),
    ({"type": "user", "id": True}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "role", "id": False}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": 1.5}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": "abc"}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": "-3"}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "user", "id": [1]}, invalid("Expected an integer user ID or UUID role ID.", "assignee__id")),
    ({"type": "group", "id": 1}, invalid('"group" is not a valid choice.', "assignee__type", code="invalid_choice")),
    ({"type": "user"}, invalid("This field is required.", "assignee__id", code="required")),
    ({"id": 1}, invalid("This field is required.", "assignee__type", code="required")),
    ("alice", invalid("Invalid data. Expected a dictionary, but got str.", "assignee")),
]


@pytest.mark.parametrize(("assignee", "error"), ASSIGNEE_ERRORS)
def test_create_rejects_invalid_assignees(client: TestClient, tenant: Tenant, assignee: Any, error: dict[str, Any]):
    response = client.post(
        url("/api/projects", tenant.project_id),
        json={"filters": FILTERS, "assignee": assignee},
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    assert response.json() == error
    assert listed_ids(client, tenant) == []


@pytest.mark.parametrize("user_id", [999_999, 0, -1, 2**31, 2**63, "99999999999999999999999"])
def test_create_rejects_a_user_outside_the_organization(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, user_id: int | str
):
    for ident in (other_tenant.user_id, user_id):
        response = client.post(
            url("/api/projects", tenant.project_id),
            json={"filters": FILTERS, "assignee": {"type": "user", "id": ident}},
            headers=tenant.headers(),
        )
        assert response.status_code == 400
        assert response.json() == invalid("Assignee user does not belong to this organization.", "assignee__id")
    assert listed_ids(client, tenant) == []


def test_create_rejects_a_role_outside_the_organization(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        foreign_role_id = make_role(session, other_tenant.organization_id).id

    for role_id in (foreign_role_id, uuid.uuid4()):
        response = client.post(
            url("/api/projects", tenant.project_id),
            json={"filters": FILTERS, "assignee": {"type": "role", "id": str(role_id)}},
            headers=tenant.headers(),
        )
        assert response.status_code == 400
        assert response.json() == invalid("Assignee role does not belong to this organization.", "assignee__id")
    assert listed_ids(client, tenant) == []


def test_create_from_a_form_body(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id),
        data={
            "filters": json.dumps(FILTERS),
            "assignee": json.dumps({"type": "user", "id": tenant.user_id}),
            "description": "from a form",
            "order_key": "4",
        },
        headers=tenant.headers(),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filters"] == FILTERS
    assert body["assignee"] == {"type": "user", "id": tenant.user_id}
    assert body["description"] == "from a form"
    assert body["order_key"] == 4


def test_form_body_errors_read_like_json_ones(client: TestClient, tenant: Tenant):
    target = url("/api/projects", tenant.project_id)

    missing = client.post(target, data={"description": "x"}, headers=tenant.headers())
    assert missing.status_code == 400
    assert missing.json() == invalid("This field is required.", "filters", code="required")

    not_json = client.post(target, data={"filters": "type=AND"}, headers=tenant.headers())
    assert not_json.status_code == 400
    assert not_json.json() == invalid("Expected a JSON object.", "filters")


# --- retrieve -------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_retrieve(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant, description="one")

    response = client.get(url(prefix, tenant.project_id, rule["id"], slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == rule


@pytest.mark.parametrize("rule_id", [str(uuid.uuid4()), "not-a-uuid", "123", str(uuid.uuid4()).upper()])
def test_unknown_or_malformed_ids_are_not_found(client: TestClient, tenant: Tenant, prefix: str, rule_id: str):
    headers = tenant.headers()
    target = url(prefix, tenant.project_id, rule_id)

    for response in (
        client.get(target, headers=headers),
        client.patch(target, json={"description": "x"}, headers=headers),
        client.put(target, json={"description": "x"}, headers=headers),
        client.delete(target, headers=headers),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_rule_of_another_project_is_not_found(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    response = client.post(url("/api/projects", second_id), json={"filters": FILTERS}, headers=tenant.headers())
    assert response.status_code == 201
    rule_id = response.json()["id"]
    target = url("/api/projects", tenant.project_id, rule_id)

    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND
    assert client.patch(target, json={"description": "x"}, headers=tenant.headers()).status_code == 404
    assert client.put(target, json={"description": "x"}, headers=tenant.headers()).status_code == 404
    assert client.delete(target, headers=tenant.headers()).status_code == 404
    assert listed_ids(client, tenant) == []

    # still there, unchanged, in its own project
    own = client.get(url("/api/projects", second_id, rule_id), headers=tenant.headers())
    assert own.status_code == 200
    assert own.json()["description"] is None


def test_rule_of_another_kind_is_not_found(client: TestClient, tenant: Tenant):
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/suppression_rules", json={}, headers=tenant.headers()
    )
    assert response.status_code == 201

    assert client.get(
        url("/api/projects", tenant.project_id, response.json()["id"]), headers=tenant.headers()
    ).json() == (NOT_FOUND)


# --- issue ----------------------------------------------------------------------------------


def test_rule_shows_the_issue_it_groups_into(client: TestClient, tenant: Tenant, database: Database):
    rule = create(client, tenant)
    other = create(client, tenant, order_key=1)
    with database.session(write=True) as session:
        issue_id = make_issue(session, tenant.project_id, [f"custom-rule:{rule['id']}"], name="Grouped").id

    expected = {"id": str(issue_id), "name": "Grouped"}
    assert retrieve(client, tenant, rule["id"])["issue"] == expected
    assert retrieve(client, tenant, other["id"])["issue"] is None
    listed = client.get(url("/api/projects", tenant.project_id), headers=tenant.headers()).json()["results"]
    assert [r["issue"] for r in listed] == [expected, None]


def test_issue_of_another_project_is_not_shown(client: TestClient, tenant: Tenant, database: Database):
    rule = create(client, tenant)
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
        make_issue(session, second_id, [f"custom-rule:{rule['id']}"], name="Elsewhere")
        make_issue(session, tenant.project_id, [f"custom-rule:{uuid.uuid4()}", rule["id"]], name="Near miss")

    assert retrieve(client, tenant, rule["id"])["issue"] is None


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("slash", [False, True])
def test_update_answers_204_without_a_body(client: TestClient, tenant: Tenant, prefix: str, method: str, slash: bool):
    rule = create(client, tenant, description="before")

    response = client.request(
        method,
        url(prefix, tenant.project_id, rule["id"], slash=slash),
        json={"filters": OTHER_FILTERS, "description": "after"},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    assert response.content == b""
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == OTHER_FILTERS
    assert after["description"] == "after"


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_keeps_omitted_fields(client: TestClient, tenant: Tenant, method: str):
    rule = create(client, tenant, description="keep me", order_key=3, assignee={"type": "user", "id": tenant.user_id})
    target = url("/api/projects", tenant.project_id, rule["id"])

    assert client.request(method, target, json={}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in rule.items() if k != "updated_at"}

    assert client.request(method, target, json={"description": "new"}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["description"] == "new"
    assert after["filters"] == FILTERS
    assert after["assignee"] == {"type": "user", "id": tenant.user_id}
    assert after["order_key"] == 3

    assert client.request(method, target, json={"filters": OTHER_FILTERS}, headers=tenant.headers()).status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["filters"] == OTHER_FILTERS
    assert after["description"] == "new"
    assert after["assignee"] == {"type": "user", "id": tenant.user_id}


def test_update_ignores_read_only_fields(client: TestClient, tenant: Tenant):
    rule = create(client, tenant, order_key=2)

    response = client.patch(
        url("/api/projects", tenant.project_id, rule["id"]),
        json={"id": str(uuid.uuid4()), "order_key": 99, "created_at": "2000-01-01T00:00:00Z", "issue": None},
        headers=tenant.headers(),
    )

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["id"] == rule["id"]
    assert after["order_key"] == 2
    assert after["created_at"] == rule["created_at"]


def test_update_changes_the_assignee(client: TestClient, tenant: Tenant, database: Database):
    rule = create(client, tenant, assignee={"type": "user", "id": tenant.user_id})
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id
    target = url("/api/projects", tenant.project_id, rule["id"])

    response = client.patch(target, json={"assignee": {"type": "role", "id": str(role_id)}}, headers=tenant.headers())
    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["assignee"] == {"type": "role", "id": str(role_id)}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (None, role_id)

    response = client.patch(target, json={"assignee": {"type": "user", "id": tenant.user_id}}, headers=tenant.headers())
    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["assignee"] == {"type": "user", "id": tenant.user_id}
    row = stored(database, rule["id"])
    assert (row.user_id, row.role_id) == (tenant.user_id, None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"filters": {"type": "AND", "values": []}},
            invalid("Filters must contain at least one filter value.", "filters"),
        ),
        ({"filters": [FILTERS]}, invalid("Expected a JSON object.", "filters")),
        ({"assignee": {"type": "role", "id": 42}}, invalid("Role assignee IDs must be UUIDs.", "assignee__id")),
        (
            {"assignee": {"type": "user", "id": 999_999}},
            invalid("Assignee user does not belong to this organization.", "assignee__id"),
        ),
    ],
)
def test_invalid_update_changes_nothing(
    client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any], error: dict[str, Any]
):
    rule = create(client, tenant, description="same", assignee={"type": "user", "id": tenant.user_id})
    with database.session(write=True) as session:
        session.execute(update(GroupingRule).values(disabled_data={"message": "broken"}))
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.patch(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    assert retrieve(client, tenant, rule["id"]) == before


def test_update_with_malformed_filters(client: TestClient, tenant: Tenant):
    rule = create(client, tenant)

    response = client.put(
        url("/api/projects", tenant.project_id, rule["id"]),
        json={"filters": {"not": "a valid property group"}},
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid filters payload")
    assert response.json()["attr"] == "filters"
    assert retrieve(client, tenant, rule["id"])["filters"] == FILTERS


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_any_update_clears_disabled_data(client: TestClient, tenant: Tenant, database: Database, method: str):
    rule = create(client, tenant)
    disabled = {"message": "Rule failed to evaluate", "props": {"error": "boom"}}
    with database.session(write=True) as session:
        session.execute(
            update(GroupingRule).where(GroupingRule.id == uuid.UUID(rule["id"])).values(disabled_data=disabled)
        )
        session.commit()
    assert retrieve(client, tenant, rule["id"])["disabled_data"] == disabled

    response = client.request(
        method, url("/api/projects", tenant.project_id, rule["id"]), json={}, headers=tenant.headers()
    )

    assert response.status_code == 204
    assert retrieve(client, tenant, rule["id"])["disabled_data"] is None
    assert stored(database, rule["id"]).disabled_data is None


@pytest.mark.parametrize("body", [{}, {"filters": FILTERS}, {"description": "same"}])
def test_update_moves_updated_at_forward(client: TestClient, tenant: Tenant, database: Database, body: dict[str, Any]):
    rule = create(client, tenant, description="same")
    past = utcnow() - timedelta(days=1)
    with database.session(write=True) as session:
        session.execute(
            update(GroupingRule)
            .where(GroupingRule.id == uuid.UUID(rule["id"]))
            .values(created_at=past, updated_at=past)
        )
        session.commit()
    before = retrieve(client, tenant, rule["id"])

    response = client.patch(url("/api/projects", tenant.project_id, rule["id"]), json=body, headers=tenant.headers())

    assert response.status_code == 204
    after = retrieve(client, tenant, rule["id"])
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    assert datetime.fromisoformat(after["updated_at"]) > past + timedelta(hours=23)
    assert after["updated_at"].endswith("Z")


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
        assert session.scalar(select(GroupingRule).where(GroupingRule.id == uuid.UUID(rule["id"]))) is None


# --- list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_list(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    rule = create(client, tenant, description="only")

    response = client.get(url(prefix, tenant.project_id, slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [rule]}


def test_list_is_empty_at_first(client: TestClient, tenant: Tenant, prefix: str):
    response = client.get(url(prefix, tenant.project_id), headers=tenant.headers())

    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_list_orders_by_order_key_then_creation(client: TestClient, tenant: Tenant):
    second = create(client, tenant, order_key=5, description="second")
    last = create(client, tenant, order_key=10, description="last")
    first = create(client, tenant, order_key=-1, description="first")
    third = create(client, tenant, order_key=5, description="third")

    assert listed_ids(client, tenant) == [first["id"], second["id"], third["id"], last["id"]]


def test_list_shows_only_this_projects_rules(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    mine = create(client, tenant)
    create(client, other_tenant)
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    client.post(url("/api/projects", second_id), json={"filters": FILTERS}, headers=tenant.headers())

    assert listed_ids(client, tenant) == [mine["id"]]


@pytest.mark.parametrize("slash", [False, True])
def test_list_pagination(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    ids = [create(client, tenant, order_key=i)["id"] for i in range(5)]
    base = url(prefix, tenant.project_id, slash=slash)
    absolute = f"http://testserver{base}"

    first = client.get(base, params={"limit": 2}, headers=tenant.headers()).json()
    assert first["count"] == 5
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert first["next"] == f"{absolute}?limit=2&offset=2"
    assert first["previous"] is None

    middle = client.get(first["next"], headers=tenant.headers()).json()
    assert [r["id"] for r in middle["results"]] == ids[2:4]
    assert middle["next"] == f"{absolute}?limit=2&offset=4"
    assert middle["previous"] == f"{absolute}?limit=2"

    last = client.get(middle["next"], headers=tenant.headers()).json()
    assert [r["id"] for r in last["results"]] == ids[4:]
    assert last["next"] is None
    assert last["previous"] == f"{absolute}?limit=2&offset=2"

    past_the_end = client.get(base, params={"limit": 2, "offset": 10}, headers=tenant.headers()).json()
    assert past_the_end["count"] == 5
    assert past_the_end["results"] == []
    assert past_the_end["next"] is None
    assert past_the_end["previous"] == f"{absolute}?limit=2&offset=8"

    offset_only = client.get(base, params={"offset": 3}, headers=tenant.headers()).json()
    assert [r["id"] for r in offset_only["results"]] == ids[3:]
    assert offset_only["next"] is None
    assert offset_only["previous"] == f"{absolute}?limit=100"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": 0}, invalid("Ensure this value is greater than or equal to 1.", "limit", code="min_value")),
        ({"offset": -1}, invalid("Ensure this value is greater than or equal to 0.", "offset", code="min_value")),
        ({"limit": "abc"}, invalid("A valid integer is required.", "limit")),
    ],
)
def test_list_rejects_bad_page_parameters(
    client: TestClient, tenant: Tenant, params: dict[str, Any], error: dict[str, Any]
):
    response = client.get(url("/api/projects", tenant.project_id), params=params, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error


# --- reorder --------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_reorder(client: TestClient, tenant: Tenant, prefix: str, slash: bool):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=1)
    c = create(client, tenant, order_key=2)

    response = client.patch(
        url(prefix, tenant.project_id, "reorder", slash=slash),
        json={"orders": {a["id"]: 2, b["id"]: 0, c["id"]: 1}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.content == b""
    assert listed_ids(client, tenant) == [b["id"], c["id"], a["id"]]
    assert [retrieve(client, tenant, r["id"])["order_key"] for r in (a, b, c)] == [2, 0, 1]


def test_reorder_leaves_unnamed_rules_alone(client: TestClient, tenant: Tenant):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=5)

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"), json={"orders": {a["id"]: 10}}, headers=tenant.headers()
    )

    assert response.status_code == 200
    assert listed_ids(client, tenant) == [b["id"], a["id"]]
    assert retrieve(client, tenant, b["id"])["order_key"] == 5


def test_reorder_with_no_orders_changes_nothing(client: TestClient, tenant: Tenant):
    a = create(client, tenant, order_key=3)

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"), json={"orders": {}}, headers=tenant.headers()
    )

    assert response.status_code == 200
    assert retrieve(client, tenant, a["id"])["order_key"] == 3


def test_reorder_ignores_rules_of_other_projects(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    mine = create(client, tenant, order_key=0)
    foreign = create(client, other_tenant, order_key=4)
    with database.session(write=True) as session:
        second_id = make_project(session, tenant.organization_id).id
    sibling = client.post(
        url("/api/projects", second_id), json={"filters": FILTERS, "order_key": 6}, headers=tenant.headers()
    ).json()

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        json={"orders": {mine["id"]: 9, foreign["id"]: 1, sibling["id"]: 2, str(uuid.uuid4()): 3}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert retrieve(client, tenant, mine["id"])["order_key"] == 9
    assert stored(database, foreign["id"]).order_key == 4
    assert stored(database, sibling["id"]).order_key == 6


@pytest.mark.parametrize(
    ("body", "code", "detail", "attr"),
    [
        ({"orders": ["x"]}, "not_a_dict", 'Expected a dictionary of items but got type "list".', "orders"),
        ({"orders": {"not-a-uuid": 1}}, "invalid_input", "Must be a valid UUID.", None),
        ({"orders": {"RULE": "first"}}, "invalid_input", "A valid integer is required.", "orders__RULE"),
        ({"orders": {"RULE": 1.5}}, "invalid_input", "A valid integer is required.", "orders__RULE"),
        (
            {"orders": {"RULE": 2**31}},
            "max_value",
            "Ensure this value is less than or equal to 2147483647.",
            "orders__RULE",
        ),
    ],
)
def test_reorder_rejects_invalid_bodies(
    client: TestClient, tenant: Tenant, body: dict[str, Any], code: str, detail: str, attr: str | None
):
    rule = create(client, tenant, order_key=1)
    if "orders" in body and isinstance(body["orders"], dict):
        body = {"orders": {rule["id"] if k == "RULE" else k: v for k, v in body["orders"].items()}}

    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    error = response.json()
    assert (error["type"], error["code"], error["detail"]) == ("validation_error", code, detail)
    if attr is not None:
        assert error["attr"] == attr.replace("RULE", rule["id"])
    else:
        assert error["attr"].startswith("orders__")
    assert retrieve(client, tenant, rule["id"])["order_key"] == 1


def test_reorder_accepts_a_form_body(client: TestClient, tenant: Tenant):
    a = create(client, tenant, order_key=0)
    b = create(client, tenant, order_key=1)

    response = client.patch(
        url("/api/projects", tenant.project_id, "reorder"),
        data={"orders": json.dumps({a["id"]: 1, b["id"]: 0})},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert listed_ids(client, tenant) == [b["id"], a["id"]]


# --- scopes ---------------------------------------------------------------------------------


def test_read_key_can_list_and_retrieve_but_not_write(client: TestClient, tenant: Tenant, prefix: str):
    rule = create(client, tenant)
    read = tenant.headers("read")

    assert client.get(url(prefix, tenant.project_id), headers=read).json()["count"] == 1
    assert client.get(url(prefix, tenant.project_id, rule["id"]), headers=read).json() == rule

    denied = [
        client.post(url(prefix, tenant.project_id), json={"filters": FILTERS}, headers=read),
        client.patch(url(prefix, tenant.project_id, rule["id"]), json={"description": "x"}, headers=read),
        client.put(url(prefix, tenant.project_id, rule["id"]), json={"description": "x"}, headers=read),
        client.delete(url(prefix, tenant.project_id, rule["id"]), headers=read),
        client.patch(url(prefix, tenant.project_id, "reorder"), json={"orders": {rule["id"]: 3}}, headers=read),
    ]
    for response in denied:
        assert response.status_code == 403
        assert response.json()["detail"] == "API key missing required scope 'error_tracking:write'"
    assert retrieve(client, tenant, rule["id"]) == rule


def test_write_key_can_do_everything(client: TestClient, tenant: Tenant):
    write = tenant.headers("write")
    created = client.post(url("/api/projects", tenant.project_id), json={"filters": FILTERS}, headers=write)
    assert created.status_code == 201
    rule_id = created.json()["id"]

    assert client.get(url("/api/projects", tenant.project_id, rule_id), headers=write).status_code == 200
    assert client.patch(url("/api/projects", tenant.project_id, rule_id), json={}, headers=write).status_code == 204
    assert (
        client.patch(url("/api/projects", tenant.project_id, "reorder"), json={"orders": {}}, headers=write).status_code
        == 200
    )
    assert client.delete(url("/api/projects", tenant.project_id, rule_id), headers=write).status_code == 204


def test_reorder_without_orders_changes_nothing(client: TestClient, tenant: Tenant):
    # PostHog's API reference shows a reorder call with no "orders"; PostHog treats it as empty.
    rule = create(client, tenant, order_key=7)
    response = client.patch(url("/api/projects", tenant.project_id, "reorder"), json={}, headers=tenant.headers())
    assert response.status_code == 200
    assert response.content == b""
    assert retrieve(client, tenant, rule["id"])["order_key"] == 7
