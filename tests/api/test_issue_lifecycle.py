"""How issues change: status, assignment, merge, split and bulk changes.

Merges and splits move fingerprints, and an event belongs to the issue its fingerprint
belongs to now: the tests check that past events follow, not just the fingerprint rows.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import Tenant, make_project, make_role, make_user
from tests.issue_data import ago, fingerprints_of, make_event, make_events, make_issue
from trapline.db.engine import Database
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.issues.service import (
    NewIssue,
    SplitEntry,
    changed_fields,
    inherited_assignee,
    merge_sources,
    plan_split,
)

ISSUE_NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Issue not found", "attr": None}
ROLE = uuid.UUID("00000000-0000-0000-0000-000000000001")
OTHER_ROLE = uuid.UUID("00000000-0000-0000-0000-000000000002")


def url(prefix: str, project_id: int, *parts: Any, slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{project_id}/error_tracking/issues", *map(str, parts)])
    return path + "/" if slash else path


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def stored(database: Database, issue_id: uuid.UUID | str) -> Issue | None:
    with database.session(write=False) as session:
        return session.get(Issue, uuid.UUID(str(issue_id)))


def assignment(database: Database, issue_id: uuid.UUID | str) -> tuple[int | None, uuid.UUID | None] | None:
    with database.session(write=False) as session:
        row = session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id == uuid.UUID(str(issue_id))))
        return None if row is None else (row.user_id, row.role_id)


def fingerprint_rows(database: Database, project_id: int) -> dict[str, tuple[uuid.UUID, int]]:
    with database.session(write=False) as session:
        rows = session.scalars(select(IssueFingerprint).where(IssueFingerprint.project_id == project_id))
        return {row.fingerprint: (row.issue_id, row.version) for row in rows}


def listed(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get(url("/api/projects", tenant.project_id), params=params, headers=tenant.headers())
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["results"]}


def event_count(client: TestClient, tenant: Tenant, issue_id: uuid.UUID | str) -> int:
    response = client.get(url("/api/projects", tenant.project_id, issue_id, "events"), headers=tenant.headers())
    assert response.status_code == 200, response.text
    count: int = response.json()["count"]
    return count


# --- decisions ------------------------------------------------------------------------------


def test_merge_sources_are_deduplicated_sorted_and_exclude_the_target():
    target, a, b = uuid.UUID(int=5), uuid.UUID(int=9), uuid.UUID(int=2)

    assert merge_sources(target, [a, target, b, a]) == [b, a]
    assert merge_sources(target, [target, target]) == []


@pytest.mark.parametrize(
    ("target", "sources", "inherited"),
    [
        (None, [("user", 1), ("user", 1)], ("user", 1)),
        (None, [("user", 1), None], ("user", 1)),
        (None, [("role", ROLE)], ("role", ROLE)),
        (None, [("user", 1), ("user", 2)], None),
        (None, [("user", 1), ("role", ROLE)], None),
        (None, [None, None], None),
        (None, [], None),
        (("user", 3), [("user", 1)], None),
    ],
)
def test_a_merge_inherits_the_sources_single_assignee(target: Any, sources: list[Any], inherited: Any):
    assert inherited_assignee(target, sources) == inherited


def test_split_plan_one_issue_per_fingerprint():
    entries = [SplitEntry("a", "A", "about a"), SplitEntry("x"), SplitEntry("b", ""), SplitEntry("a", "again")]

    assert plan_split(entries, {"a", "b", "c"}) == [
        NewIssue(("a",), "A", "about a"),
        NewIssue(("b",), "Untitled issue", None),
    ]


def test_split_plan_not_exclusive_makes_one_issue():
    entries = [SplitEntry("x"), SplitEntry("b", "B", "d"), SplitEntry("a", "A")]

    assert plan_split(entries, {"a", "b"}, exclusive=False) == [NewIssue(("b", "a"), "B", "d")]
    assert plan_split([SplitEntry("x")], {"a"}, exclusive=False) == []


def test_changed_fields():
    current = {"status": "active", "severity": None, "name": "n", "description": None}

    assert changed_fields(current, {"status": "active", "severity": "low", "name": "n", "other": 1}) == {
        "severity": "low"
    }
    assert changed_fields(current, {"description": ""}) == {"description": ""}


# --- status ---------------------------------------------------------------------------------


def test_status_lifecycle_moves_an_issue_between_lists(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x")
    path = url("/api/projects", tenant.project_id, issue.id)

    for status in ("resolved", "suppressed", "active"):
        assert client.patch(path, json={"status": status}, headers=tenant.headers()).status_code == 200
        for shown in ("active", "resolved", "suppressed"):
            assert (str(issue.id) in listed(client, tenant, status=shown)) == (shown == status)


def test_a_legacy_status_can_be_changed_to_a_current_one(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["x"], status="archived")

    response = client.patch(
        url("/api/projects", tenant.project_id, issue.id), json={"status": "active"}, headers=tenant.headers()
    )

    assert response.status_code == 200
    assert response.json()["status"] == "active"


# --- assign ---------------------------------------------------------------------------------


@pytest.fixture
def issue(database: Database, tenant: Tenant) -> Issue:
    with database.session(write=True) as session:
        return make_issue(session, tenant.project_id, ["fp"])


@pytest.mark.parametrize("slash", [False, True])
def test_assign_to_a_user(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, prefix: str, slash: bool
):
    response = client.patch(
        url(prefix, tenant.project_id, issue.id, "assign", slash=slash),
        json={"assignee": {"type": "user", "id": tenant.user_id}},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert assignment(database, issue.id) == (tenant.user_id, None)
    stored_issue = stored(database, issue.id)
    assert stored_issue is not None and stored_issue.state_updated_at is not None
    shown = client.get(url(prefix, tenant.project_id, issue.id), headers=tenant.headers()).json()
    assert shown["assignee"] == {"type": "user", "id": tenant.user_id}


def test_assign_to_a_role_then_to_a_user_then_nobody(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue
):
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id).id
    path = url("/api/projects", tenant.project_id, issue.id, "assign")

    client.patch(path, json={"assignee": {"type": "role", "id": str(role_id)}}, headers=tenant.headers())
    assert assignment(database, issue.id) == (None, role_id)
    shown = client.get(url("/api/projects", tenant.project_id, issue.id), headers=tenant.headers()).json()
    assert shown["assignee"] == {"type": "role", "id": str(role_id)}

    client.patch(path, json={"assignee": {"type": "user", "id": str(tenant.user_id)}}, headers=tenant.headers())
    assert assignment(database, issue.id) == (tenant.user_id, None)

    response = client.patch(path, json={"assignee": None}, headers=tenant.headers())
    assert response.json() == {"success": True}
    assert assignment(database, issue.id) is None


def test_an_omitted_assignee_unassigns(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["x"], user_id=tenant.user_id)

    response = client.patch(url("/api/projects", tenant.project_id, issue.id, "assign"), headers=tenant.headers())

    assert response.status_code == 200
    assert assignment(database, issue.id) is None


def test_assigning_the_same_assignee_changes_nothing(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["x"], user_id=tenant.user_id)
        unassigned = make_issue(session, tenant.project_id, ["y"])

    same = client.patch(
        url("/api/projects", tenant.project_id, issue.id, "assign"),
        json={"assignee": {"type": "user", "id": tenant.user_id}},
        headers=tenant.headers(),
    )
    nobody_again = client.patch(
        url("/api/projects", tenant.project_id, unassigned.id, "assign"),
        json={"assignee": None},
        headers=tenant.headers(),
    )

    assert same.json() == nobody_again.json() == {"success": True}
    for issue_id in (issue.id, unassigned.id):
        stored_issue = stored(database, issue_id)
        assert stored_issue is not None and stored_issue.state_updated_at is None


@pytest.mark.parametrize(
    ("assignee", "error"),
    [
        ({"type": "user", "id": "abc"}, invalid("Provide a numeric user ID.", "assignee__id")),
        ({"type": "user", "id": str(uuid.uuid4())}, invalid("Provide a numeric user ID.", "assignee__id")),
        ({"type": "user", "id": True}, invalid("Provide a numeric user ID.", "assignee__id")),
        ({"type": "user", "id": 1.5}, invalid("Provide a numeric user ID.", "assignee__id")),
        ({"type": "role", "id": 42}, invalid("Provide a valid role UUID.", "assignee__id")),
        ({"type": "role", "id": "not-a-uuid"}, invalid("Provide a valid role UUID.", "assignee__id")),
        (
            {"type": "group", "id": 1},
            invalid('"group" is not a valid choice.', "assignee__type", code="invalid_choice"),
        ),
        ({"id": 1}, invalid("This field is required.", "assignee__type", code="required")),
        ({"type": "user"}, invalid("This field is required.", "assignee__id", code="required")),
        ("user", invalid("Invalid data. Expected a dictionary, but got str.", "assignee")),
        # PostHog answers membership problems with a bare ValidationError: no attr
        ({"type": "user", "id": 987654}, invalid("Assignee user does not belong to this organization.", None)),
        ({"type": "user", "id": 2**40}, invalid("Assignee user does not belong to this organization.", None)),
        (
            {"type": "role", "id": str(uuid.uuid4())},
            invalid("Assignee role does not belong to this organization.", None),
        ),
    ],
)
def test_bad_assignees(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, assignee: Any, error: dict[str, Any]
):
    response = client.patch(
        url("/api/projects", tenant.project_id, issue.id, "assign"),
        json={"assignee": assignee},
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    assert response.json() == error
    assert assignment(database, issue.id) is None


def test_users_and_roles_of_another_organization_cannot_be_assigned(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, issue: Issue
):
    with database.session(write=True) as session:
        their_role = make_role(session, other_tenant.organization_id)
    path = url("/api/projects", tenant.project_id, issue.id, "assign")

    user = client.patch(path, json={"assignee": {"type": "user", "id": other_tenant.user_id}}, headers=tenant.headers())
    role = client.patch(path, json={"assignee": {"type": "role", "id": str(their_role.id)}}, headers=tenant.headers())

    assert user.json()["detail"] == "Assignee user does not belong to this organization."
    assert role.json()["detail"] == "Assignee role does not belong to this organization."


def test_assign_an_unknown_issue(client: TestClient, tenant: Tenant):
    for issue_id in (uuid.uuid4(), "nope"):
        response = client.patch(
            url("/api/projects", tenant.project_id, issue_id, "assign"),
            json={"assignee": None},
            headers=tenant.headers(),
        )
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND


# --- merge ----------------------------------------------------------------------------------


@pytest.fixture
def three(database: Database, tenant: Tenant) -> dict[str, Issue]:
    """target (t1, 2 events), a (a1 + a2, 3 events by other users), b (b1, 1 event)."""
    with database.session(write=True) as session:
        target = make_issue(session, tenant.project_id, ["t1"], name="Target", first_seen=ago(days=3))
        a = make_issue(session, tenant.project_id, ["a1", "a2"], name="A", first_seen=ago(days=9))
        b = make_issue(session, tenant.project_id, ["b1"], name="B", first_seen=ago(days=1))
        make_events(session, tenant.project_id, "t1", 2, distinct_id="t")
        make_event(session, tenant.project_id, "a1", distinct_id="a", timestamp=ago(hours=5))
        make_event(session, tenant.project_id, "a2", distinct_id="a", timestamp=ago(hours=6))
        make_event(session, tenant.project_id, "a2", distinct_id="a2", timestamp=ago(minutes=10), library="late")
        make_event(session, tenant.project_id, "b1", distinct_id="b", timestamp=ago(hours=7))
    return {"target": target, "a": a, "b": b}


@pytest.mark.parametrize("slash", [False, True])
def test_merge_moves_every_fingerprint_and_deletes_the_sources(
    client: TestClient, tenant: Tenant, database: Database, three: dict[str, Issue], prefix: str, slash: bool
):
    target, a, b = three["target"], three["a"], three["b"]

    response = client.post(
        url(prefix, tenant.project_id, target.id, "merge", slash=slash),
        json={"ids": [str(a.id), str(b.id)]},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert fingerprint_rows(database, tenant.project_id) == {
        "t1": (target.id, 0),
        "a1": (target.id, 1),
        "a2": (target.id, 1),
        "b1": (target.id, 1),
    }
    assert stored(database, a.id) is None
    assert stored(database, b.id) is None
    merged = stored(database, target.id)
    assert merged is not None
    assert merged.state_updated_at is not None
    assert (merged.name, merged.status) == ("Target", "active")


def test_after_a_merge_past_events_count_for_the_target(
    client: TestClient, tenant: Tenant, database: Database, three: dict[str, Issue]
):
    target, a, b = three["target"], three["a"], three["b"]

    client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"),
        json={"ids": [str(a.id), str(b.id)]},
        headers=tenant.headers(),
    )

    # the stored events still carry their old issue_id; the fingerprint join decides
    assert list(listed(client, tenant)) == [str(target.id)]
    item = listed(client, tenant)[str(target.id)]
    assert item["aggregations"] == {"occurrences": 6, "users": 4, "sessions": 0}
    assert item["library"] == "late"
    assert item["first_seen"] == ago(days=9).isoformat().replace("+00:00", "Z")
    assert event_count(client, tenant, target.id) == 6
    shown = client.get(url("/api/projects", tenant.project_id, target.id), headers=tenant.headers()).json()
    assert shown["aggregations"]["occurrences"] == 6


def test_after_a_merge_the_old_issue_redirects_by_fingerprint(
    client: TestClient, tenant: Tenant, three: dict[str, Issue]
):
    target, a = three["target"], three["a"]
    client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"), json={"ids": [str(a.id)]}, headers=tenant.headers()
    )

    moved = client.get(
        url("/api/projects", tenant.project_id, a.id),
        params={"fingerprint": "a2"},
        headers=tenant.headers(),
        follow_redirects=False,
    )
    gone = client.get(url("/api/projects", tenant.project_id, a.id), headers=tenant.headers())

    assert moved.status_code == 308
    assert moved.json() == {"issue_id": str(target.id)}
    assert moved.headers["location"].endswith(f"/issues/{target.id}?fingerprint=a2")
    assert gone.status_code == 404
    assert gone.json() == ISSUE_NOT_FOUND


def test_merging_only_the_target_itself_is_no_merge(
    client: TestClient, tenant: Tenant, database: Database, three: dict[str, Issue]
):
    target = three["target"]

    response = client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"),
        json={"ids": [str(target.id), str(target.id)]},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.json() == {"success": False}
    merged = stored(database, target.id)
    assert merged is not None and merged.state_updated_at is None


def test_duplicate_and_self_ids_are_ignored(
    client: TestClient, tenant: Tenant, database: Database, three: dict[str, Issue]
):
    target, a = three["target"], three["a"]

    response = client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"),
        json={"ids": [str(a.id), str(target.id), str(a.id).upper()]},
        headers=tenant.headers(),
    )

    assert response.json() == {"success": True}
    assert fingerprint_rows(database, tenant.project_id)["a1"] == (target.id, 1)


def test_merge_into_an_unknown_issue(client: TestClient, tenant: Tenant, database: Database, three: dict[str, Issue]):
    for target_id in (uuid.uuid4(), "nope"):
        response = client.post(
            url("/api/projects", tenant.project_id, target_id, "merge"),
            json={"ids": [str(three["a"].id)]},
            headers=tenant.headers(),
        )
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND
    assert stored(database, three["a"].id) is not None


def test_a_missing_source_aborts_the_whole_merge(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, three: dict[str, Issue]
):
    with database.session(write=True) as session:
        theirs = make_issue(session, other_tenant.project_id, ["x"])
        elsewhere = make_issue(session, make_project(session, tenant.organization_id).id, ["y"])
    target, a = three["target"], three["a"]

    for missing in (uuid.uuid4(), theirs.id, elsewhere.id):
        response = client.post(
            url("/api/projects", tenant.project_id, target.id, "merge"),
            json={"ids": [str(a.id), str(missing)]},
            headers=tenant.headers(),
        )
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND

    assert stored(database, a.id) is not None
    assert stored(database, theirs.id) is not None
    assert fingerprint_rows(database, tenant.project_id)["a1"] == (a.id, 0)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, invalid("This field is required.", "ids", code="required")),
        ({"ids": []}, invalid("This list may not be empty.", "ids", code="empty")),
        ({"ids": ["nope"]}, invalid("Must be a valid UUID.", "ids__0")),
        ({"ids": str(uuid.uuid4())}, invalid('Expected a list of items but got type "str".', "ids", code="not_a_list")),
        ({"ids": None}, invalid("This field may not be null.", "ids", code="null")),
        (
            {"ids": [str(uuid.uuid4()) for _ in range(1001)]},
            invalid("Ensure this field has no more than 1000 elements.", "ids", code="max_length"),
        ),
    ],
)
def test_bad_merge_bodies(
    client: TestClient, tenant: Tenant, issue: Issue, body: dict[str, Any], error: dict[str, Any]
):
    response = client.post(
        url("/api/projects", tenant.project_id, issue.id, "merge"), json=body, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json() == error


def test_merge_copies_the_sources_single_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        target = make_issue(session, tenant.project_id, ["t"])
        a = make_issue(session, tenant.project_id, ["a"], user_id=tenant.user_id)
        b = make_issue(session, tenant.project_id, ["b"], user_id=tenant.user_id)
        c = make_issue(session, tenant.project_id, ["c"])

    client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"),
        json={"ids": [str(a.id), str(b.id), str(c.id)]},
        headers=tenant.headers(),
    )

    assert assignment(database, target.id) == (tenant.user_id, None)
    with database.session(write=False) as session:
        assert session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id.in_([a.id, b.id]))) is None


def test_merge_keeps_no_assignee_when_the_sources_disagree(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        other_user = make_user(session, tenant.organization_id)
        role = make_role(session, tenant.organization_id)
        target = make_issue(session, tenant.project_id, ["t"])
        a = make_issue(session, tenant.project_id, ["a"], user_id=tenant.user_id)
        b = make_issue(session, tenant.project_id, ["b"], user_id=other_user.id)
        c = make_issue(session, tenant.project_id, ["c"], role_id=role.id)

    client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"),
        json={"ids": [str(a.id), str(b.id), str(c.id)]},
        headers=tenant.headers(),
    )

    assert assignment(database, target.id) is None


def test_merge_keeps_the_targets_own_assignee(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role = make_role(session, tenant.organization_id)
        target = make_issue(session, tenant.project_id, ["t"], role_id=role.id)
        a = make_issue(session, tenant.project_id, ["a"], user_id=tenant.user_id)

    client.post(
        url("/api/projects", tenant.project_id, target.id, "merge"), json={"ids": [str(a.id)]}, headers=tenant.headers()
    )

    assert assignment(database, target.id) == (None, role.id)


# --- split ----------------------------------------------------------------------------------


@pytest.fixture
def splittable(database: Database, tenant: Tenant) -> Issue:
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["s1", "s2", "s3"], user_id=tenant.user_id)
        make_events(session, tenant.project_id, "s1", 1)
        make_events(session, tenant.project_id, "s2", 2)
        make_events(session, tenant.project_id, "s3", 3)
        make_issue(session, tenant.project_id, ["elsewhere"])
        return issue


@pytest.mark.parametrize("slash", [False, True])
def test_split_makes_an_issue_per_fingerprint(
    client: TestClient, tenant: Tenant, database: Database, splittable: Issue, prefix: str, slash: bool
):
    response = client.post(
        url(prefix, tenant.project_id, splittable.id, "split", slash=slash),
        json={
            "fingerprints": [
                {"fingerprint": "s2", "name": "Second", "description": "the second one"},
                {"fingerprint": "s3"},
                {"fingerprint": "elsewhere"},
                {"fingerprint": "unknown"},
            ]
        },
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    second, third = (uuid.UUID(issue_id) for issue_id in body["new_issue_ids"])
    rows = fingerprint_rows(database, tenant.project_id)
    assert rows["s1"] == (splittable.id, 0)
    assert rows["s2"] == (second, 1)
    assert rows["s3"] == (third, 1)
    assert rows["elsewhere"][1] == 0
    new_second, new_third = stored(database, second), stored(database, third)
    assert new_second is not None and new_third is not None
    assert (new_second.name, new_second.description, new_second.status) == ("Second", "the second one", "active")
    assert (new_third.name, new_third.description) == ("Untitled issue", None)
    assert assignment(database, second) is None
    assert assignment(database, splittable.id) == (tenant.user_id, None)
    original = stored(database, splittable.id)
    assert original is not None and original.state_updated_at is not None


def test_after_a_split_events_follow_their_fingerprint(
    client: TestClient, tenant: Tenant, database: Database, splittable: Issue
):
    response = client.post(
        url("/api/projects", tenant.project_id, splittable.id, "split"),
        json={"fingerprints": [{"fingerprint": "s3"}]},
        headers=tenant.headers(),
    )
    [new_id] = response.json()["new_issue_ids"]

    numbers = {issue_id: item["aggregations"]["occurrences"] for issue_id, item in listed(client, tenant).items()}
    assert numbers == {str(splittable.id): 3, new_id: 3}
    assert event_count(client, tenant, splittable.id) == 3
    assert event_count(client, tenant, new_id) == 3
    moved = client.get(
        url("/api/projects", tenant.project_id, splittable.id),
        params={"fingerprint": "s3"},
        headers=tenant.headers(),
        follow_redirects=False,
    )
    assert moved.status_code == 308
    assert moved.json() == {"issue_id": new_id}


def test_split_accepts_posthogs_old_body(client: TestClient, tenant: Tenant, database: Database, splittable: Issue):
    response = client.post(
        url("/api/projects", tenant.project_id, splittable.id, "split"),
        json={"fingerprints": ["s1", "s2", "nope"]},
        headers=tenant.headers(),
    )

    new_ids = [uuid.UUID(issue_id) for issue_id in response.json()["new_issue_ids"]]
    assert len(new_ids) == 2
    with database.session(write=False) as session:
        assert [fingerprints_of(session, issue_id) for issue_id in new_ids] == [["s1"], ["s2"]]
        assert fingerprints_of(session, splittable.id) == ["s3"]


def test_split_not_exclusive_moves_the_fingerprints_to_one_new_issue(
    client: TestClient, tenant: Tenant, database: Database, splittable: Issue
):
    response = client.post(
        url("/api/projects", tenant.project_id, splittable.id, "split"),
        json={"fingerprints": ["s1", "s3"], "exclusive": False},
        headers=tenant.headers(),
    )

    [new_id] = response.json()["new_issue_ids"]
    with database.session(write=False) as session:
        assert fingerprints_of(session, uuid.UUID(new_id)) == ["s1", "s3"]
        assert fingerprints_of(session, splittable.id) == ["s2"]


def test_split_with_nothing_to_split(client: TestClient, tenant: Tenant, database: Database, splittable: Issue):
    for body in ({}, {"fingerprints": []}, {"fingerprints": ["elsewhere"]}):
        response = client.post(
            url("/api/projects", tenant.project_id, splittable.id, "split"), json=body, headers=tenant.headers()
        )
        assert response.json() == {"success": True, "new_issue_ids": []}
    original = stored(database, splittable.id)
    assert original is not None and original.state_updated_at is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"fingerprints": [{"name": "x"}]},
            invalid("This field is required.", "fingerprints__0__fingerprint", "required"),
        ),
        (
            {"fingerprints": [{"fingerprint": ""}]},
            invalid("This field may not be blank.", "fingerprints__0__fingerprint", "blank"),
        ),
        (
            {"fingerprints": [{"fingerprint": "a\x00"}]},
            invalid("Null characters are not allowed.", "fingerprints__0__fingerprint", "null_characters_not_allowed"),
        ),
        ({"fingerprints": "s1"}, invalid('Expected a list of items but got type "str".', "fingerprints", "not_a_list")),
        (
            {"fingerprints": [["s1"]]},
            invalid("Invalid data. Expected a dictionary, but got list.", "fingerprints__0"),
        ),
        ({"fingerprints": ["s1"], "exclusive": "maybe"}, invalid("Must be a valid boolean.", "exclusive")),
    ],
)
def test_bad_split_bodies(
    client: TestClient, tenant: Tenant, database: Database, splittable: Issue, body: Any, error: dict[str, Any]
):
    response = client.post(
        url("/api/projects", tenant.project_id, splittable.id, "split"), json=body, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json() == error
    assert fingerprint_rows(database, tenant.project_id)["s1"] == (splittable.id, 0)


def test_split_an_unknown_issue(client: TestClient, tenant: Tenant, other_tenant: Tenant, splittable: Issue):
    for project_id, issue_id, who in (
        (tenant.project_id, uuid.uuid4(), tenant),
        (tenant.project_id, "nope", tenant),
        (other_tenant.project_id, splittable.id, other_tenant),
    ):
        response = client.post(
            url("/api/projects", project_id, issue_id, "split"), json={"fingerprints": ["s1"]}, headers=who.headers()
        )
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND


# --- bulk -----------------------------------------------------------------------------------


@pytest.fixture
def several(database: Database, tenant: Tenant, other_tenant: Tenant) -> dict[str, Issue]:
    with database.session(write=True) as session:
        return {
            "active": make_issue(session, tenant.project_id, ["1"]),
            "resolved": make_issue(session, tenant.project_id, ["2"], status="resolved"),
            "archived": make_issue(session, tenant.project_id, ["3"], status="archived"),
            "theirs": make_issue(session, other_tenant.project_id, ["4"]),
        }


@pytest.mark.parametrize("slash", [False, True])
def test_bulk_set_status_skips_issues_already_there(
    client: TestClient, tenant: Tenant, database: Database, several: dict[str, Issue], prefix: str, slash: bool
):
    response = client.post(
        url(prefix, tenant.project_id, "bulk", slash=slash),
        json={"action": "set_status", "status": "resolved", "ids": [str(issue.id) for issue in several.values()]},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    after = {key: stored(database, issue.id) for key, issue in several.items()}
    assert {key: (issue.status, issue.state_updated_at is not None) for key, issue in after.items() if issue} == {
        "active": ("resolved", True),
        "resolved": ("resolved", False),  # already resolved: skipped
        "archived": ("resolved", True),
        "theirs": ("active", False),  # another organization's: ignored
    }


def test_bulk_assign_and_unassign(client: TestClient, tenant: Tenant, database: Database, several: dict[str, Issue]):
    ids = [str(several["active"].id), str(several["resolved"].id), str(uuid.uuid4())]
    path = url("/api/projects", tenant.project_id, "bulk")

    assigned = client.post(
        path,
        json={"action": "assign", "ids": ids, "assignee": {"type": "user", "id": tenant.user_id}},
        headers=tenant.headers(),
    )
    assert assigned.json() == {"success": True}
    assert assignment(database, several["active"].id) == (tenant.user_id, None)
    assert assignment(database, several["resolved"].id) == (tenant.user_id, None)
    assert assignment(database, several["archived"].id) is None

    unassigned = client.post(path, json={"action": "assign", "ids": ids, "assignee": None}, headers=tenant.headers())
    assert unassigned.json() == {"success": True}
    assert assignment(database, several["active"].id) is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"action": "set_status", "ids": ["{id}"]}, invalid("Invalid status", None)),
        ({"action": "set_status", "ids": ["{id}"], "status": "archived"}, invalid("Invalid status", None)),
        # NUL is refused in any body before its fields are read (neither text nor jsonb stores it).
        (
            {"action": "set_status", "ids": ["{id}"], "status": "bogus\x00"},
            invalid("Null characters are not allowed.", "status", "null_characters_not_allowed"),
        ),
        (
            {"action": "set_status", "ids": [], "status": "resolved"},
            invalid("This list may not be empty.", "ids", "empty"),
        ),
        ({"action": "set_status", "status": "resolved"}, invalid("This field is required.", "ids", "required")),
        ({"action": "delete", "ids": ["{id}"]}, invalid('"delete" is not a valid choice.', "action", "invalid_choice")),
        ({"ids": ["{id}"]}, invalid("This field is required.", "action", "required")),
        (
            {"action": "assign", "ids": ["{id}"], "assignee": {"type": "user", "id": 987654}},
            invalid("Assignee user does not belong to this organization.", None),
        ),
        (
            {"action": "assign", "ids": ["{id}"], "assignee": {"type": "role", "id": 7}},
            invalid("Provide a valid role UUID.", "assignee__id"),
        ),
    ],
)
def test_bad_bulk_bodies(
    client: TestClient, tenant: Tenant, database: Database, several: dict[str, Issue], body: dict[str, Any], error: Any
):
    issue_id = str(several["active"].id)
    body = {key: [issue_id] if value == ["{id}"] else value for key, value in body.items()}

    response = client.post(url("/api/projects", tenant.project_id, "bulk"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    active = stored(database, issue_id)
    assert active is not None and active.status == "active"
    assert assignment(database, issue_id) is None


def test_bulk_for_another_organizations_project(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, several: dict[str, Issue]
):
    response = client.post(
        url("/api/projects", other_tenant.project_id, "bulk"),
        json={"action": "set_status", "status": "resolved", "ids": [str(several["theirs"].id)]},
        headers=tenant.headers(),
    )

    assert response.status_code == 404
    assert response.json()["detail"] == "Not found."


def test_role_assignment_survives_in_a_bulk_status_change(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role = make_role(session, tenant.organization_id)
        issue = make_issue(session, tenant.project_id, ["x"], role_id=role.id)

    client.post(
        url("/api/projects", tenant.project_id, "bulk"),
        json={"action": "set_status", "status": "suppressed", "ids": [str(issue.id)]},
        headers=tenant.headers(),
    )

    assert assignment(database, issue.id) == (None, role.id)
