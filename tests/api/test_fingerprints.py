"""``/error_tracking/fingerprints``: read-only; which issue each fingerprint belongs to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import Tenant, make_issue, make_project
from trapline.db.engine import Database
from trapline.issues.models import Issue, IssueFingerprint

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Fingerprint not found", "attr": None}


def url(prefix: str, project_id: int, rest: str = "") -> str:
    return f"{prefix}/{project_id}/error_tracking/fingerprints{rest}"


def invalid(detail: str) -> dict[str, Any]:
    return {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": None}


def iso(value: datetime | None) -> str | None:
    # DRF renders UTC datetimes as ISO 8601 with a Z.
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def shown(fp: IssueFingerprint) -> dict[str, Any]:
    return {
        "id": str(fp.id),
        "fingerprint": fp.fingerprint,
        "issue_id": str(fp.issue_id),
        "created_at": iso(fp.created_at),
        "first_seen": iso(fp.first_seen),
    }


def new_issue(database: Database, project_id: int, name: str = "TypeError") -> Issue:
    with database.session(write=True) as session:
        return make_issue(session, project_id, [], name=name)


def add_fingerprint(
    database: Database,
    issue: Issue,
    fingerprint: str,
    created_at: datetime = T0,
    first_seen: datetime | None = None,
) -> IssueFingerprint:
    with database.session(write=True) as session:
        fp = IssueFingerprint(
            project_id=issue.project_id,
            issue_id=issue.id,
            fingerprint=fingerprint,
            created_at=created_at,
            first_seen=first_seen,
        )
        session.add(fp)
        session.commit()
        return fp


def count_rows(database: Database) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(IssueFingerprint)) or 0


def get(client: TestClient, tenant: Tenant, target: str, **params: Any) -> Any:
    response = client.get(target, params=params, headers=tenant.headers("read"))
    assert response.status_code == 200, response.text
    return response.json()


# --- list -------------------------------------------------------------------------------------


def test_list_is_empty_at_first(client: TestClient, tenant: Tenant, prefix: str):
    assert get(client, tenant, url(prefix, tenant.project_id)) == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_list_is_ordered_by_creation(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    first, second = new_issue(database, tenant.project_id), new_issue(database, tenant.project_id, "KeyError")
    # inserted out of order: the list follows created_at, not insertion or id order
    late = add_fingerprint(database, first, "late", T0 + timedelta(hours=2), first_seen=T0 - timedelta(days=1))
    early = add_fingerprint(database, second, "early", T0)
    middle = add_fingerprint(database, first, "middle", T0 + timedelta(minutes=5))

    body = get(client, tenant, url(prefix, tenant.project_id))
    assert body == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [shown(early), shown(middle), shown(late)],
    }
    assert body["results"][2]["first_seen"] == "2025-02-28T12:00:00.123456Z"
    assert body["results"][0]["created_at"] == "2025-03-01T12:00:00.123456Z"
    assert set(body["results"][0]) == {"id", "fingerprint", "issue_id", "created_at", "first_seen"}


def test_list_of_factory_made_fingerprints(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-1"])
    [row] = get(client, tenant, url(prefix, tenant.project_id, "/"))["results"]
    assert row["fingerprint"] == "fp-1"
    assert row["issue_id"] == str(issue.id)
    assert row["first_seen"] is None
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


def test_list_shows_only_this_projects_fingerprints(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, prefix: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
        make_issue(session, second.id, ["shared", "theirs"])
        make_issue(session, other_tenant.project_id, ["shared", "other org"])
    mine = add_fingerprint(database, new_issue(database, tenant.project_id), "shared")

    assert get(client, tenant, url(prefix, tenant.project_id))["results"] == [shown(mine)]
    assert get(client, tenant, url(prefix, second.id))["count"] == 2


def test_list_filtered_by_issue(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    first, second = new_issue(database, tenant.project_id), new_issue(database, tenant.project_id)
    a = add_fingerprint(database, first, "a", T0)
    add_fingerprint(database, second, "b", T0 + timedelta(seconds=1))
    c = add_fingerprint(database, first, "c", T0 + timedelta(seconds=2))

    body = get(client, tenant, url(prefix, tenant.project_id), issue_id=str(first.id))
    assert body == {"count": 2, "next": None, "previous": None, "results": [shown(a), shown(c)]}
    # any spelling of the UUID
    assert get(client, tenant, url(prefix, tenant.project_id), issue_id=first.id.hex.upper()) == body
    assert get(client, tenant, url(prefix, tenant.project_id), issue_id=str(uuid.uuid4()))["results"] == []


def test_filter_by_another_projects_issue_is_empty(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
        theirs = make_issue(session, second.id, ["x"])
    body = get(client, tenant, url(prefix, tenant.project_id), issue_id=str(theirs.id))
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_an_empty_issue_filter_is_no_filter(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    a = add_fingerprint(database, new_issue(database, tenant.project_id), "a", T0)
    b = add_fingerprint(database, new_issue(database, tenant.project_id), "b", T0 + timedelta(seconds=1))
    body = get(client, tenant, url(prefix, tenant.project_id), issue_id="")
    assert body == {"count": 2, "next": None, "previous": None, "results": [shown(a), shown(b)]}


@pytest.mark.parametrize("issue_id", ["nope", " ", "123", f"{uuid.uuid4()}x"])
def test_filter_by_a_malformed_issue_id(client: TestClient, tenant: Tenant, prefix: str, issue_id: str):
    response = client.get(url(prefix, tenant.project_id), params={"issue_id": issue_id}, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("issue_id must be a valid UUID")


def test_list_is_paginated(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    issue = new_issue(database, tenant.project_id)
    rows = [add_fingerprint(database, issue, f"fp-{i}", T0 + timedelta(seconds=i)) for i in range(5)]
    base = f"http://testserver{url(prefix, tenant.project_id)}"

    first = get(client, tenant, url(prefix, tenant.project_id), limit=2)
    assert first == {
        "count": 5,
        "next": f"{base}?limit=2&offset=2",
        "previous": None,
        "results": [shown(rows[0]), shown(rows[1])],
    }
    second = get(client, tenant, url(prefix, tenant.project_id), limit=2, offset=2)
    assert second == {
        "count": 5,
        "next": f"{base}?limit=2&offset=4",
        "previous": f"{base}?limit=2",
        "results": [shown(rows[2]), shown(rows[3])],
    }
    last = get(client, tenant, url(prefix, tenant.project_id), limit=2, offset=4)
    assert last == {"count": 5, "next": None, "previous": f"{base}?limit=2&offset=2", "results": [shown(rows[4])]}


def test_pagination_keeps_the_issue_filter(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    issue = new_issue(database, tenant.project_id)
    for i in range(3):
        add_fingerprint(database, issue, f"fp-{i}", T0 + timedelta(seconds=i))
    add_fingerprint(database, new_issue(database, tenant.project_id), "elsewhere")
    body = get(client, tenant, url(prefix, tenant.project_id), issue_id=str(issue.id), limit=1)
    assert body["count"] == 3
    assert body["next"] == f"http://testserver{url(prefix, tenant.project_id)}?issue_id={issue.id}&limit=1&offset=1"


# --- retrieve ---------------------------------------------------------------------------------


def test_retrieve(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "abc", first_seen=T0)
    for path in (f"/{fp.id}", f"/{fp.id}/", f"/{fp.id.hex}"):
        assert get(client, tenant, url(prefix, tenant.project_id, path)) == shown(fp)


@pytest.mark.parametrize("fp_id", ["nope", "123", "resolvex", "hash"])
def test_retrieve_a_malformed_id(client: TestClient, tenant: Tenant, prefix: str, fp_id: str):
    response = client.get(url(prefix, tenant.project_id, f"/{fp_id}"), headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("Invalid fingerprint id")


def test_retrieve_an_unknown_id(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    add_fingerprint(database, new_issue(database, tenant.project_id), "abc")
    response = client.get(url(prefix, tenant.project_id, f"/{uuid.uuid4()}"), headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_retrieve_another_projects_fingerprint(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    theirs = add_fingerprint(database, new_issue(database, second.id), "abc")
    response = client.get(url(prefix, tenant.project_id, f"/{theirs.id}"), headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert get(client, tenant, url(prefix, second.id, f"/{theirs.id}")) == shown(theirs)


# --- resolve ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["abc", "resolve", "a b&c=d/e?f#g", "ünïcödé 🐛", "x" * 500, "resolve/"],
)
def test_resolve(client: TestClient, tenant: Tenant, database: Database, prefix: str, value: str):
    issue = new_issue(database, tenant.project_id)
    add_fingerprint(database, issue, "decoy")
    fp = add_fingerprint(database, issue, value, T0 + timedelta(seconds=1))
    for path in ("/resolve", "/resolve/"):
        assert get(client, tenant, url(prefix, tenant.project_id, path), fingerprint=value) == shown(fp)


def test_a_fingerprint_named_resolve_is_not_the_route(
    client: TestClient, tenant: Tenant, database: Database, prefix: str
):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "resolve")
    # /resolve is the lookup, never an id; without the parameter it asks for it
    response = client.get(url(prefix, tenant.project_id, "/resolve"), headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("fingerprint query parameter is required")
    assert get(client, tenant, url(prefix, tenant.project_id, "/resolve"), fingerprint="resolve") == shown(fp)
    assert get(client, tenant, url(prefix, tenant.project_id, f"/{fp.id}")) == shown(fp)
    assert get(client, tenant, url(prefix, tenant.project_id))["results"] == [shown(fp)]


@pytest.mark.parametrize("query", ["", "?fingerprint=", "?fingerprint", "?other=abc"])
def test_resolve_needs_a_fingerprint(client: TestClient, tenant: Tenant, database: Database, prefix: str, query: str):
    add_fingerprint(database, new_issue(database, tenant.project_id), "")
    for path in ("/resolve", "/resolve/"):
        response = client.get(url(prefix, tenant.project_id, path + query), headers=tenant.headers())
        assert response.status_code == 400
        assert response.json() == invalid("fingerprint query parameter is required")


def test_resolve_an_unknown_fingerprint(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    add_fingerprint(database, new_issue(database, second.id), "theirs")
    add_fingerprint(database, new_issue(database, tenant.project_id), "mine")
    for value in ("unknown", "theirs", "MINE", "mine "):
        response = client.get(
            url(prefix, tenant.project_id, "/resolve"), params={"fingerprint": value}, headers=tenant.headers()
        )
        assert response.status_code == 404, value
        assert response.json() == NOT_FOUND


# --- no writes --------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_delete_is_not_allowed(client: TestClient, tenant: Tenant, database: Database, prefix: str, slash: str):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "abc")
    for fp_id in (str(fp.id), str(uuid.uuid4()), "nope", "resolve"):
        for scope in ("*", "write"):
            response = client.delete(url(prefix, tenant.project_id, f"/{fp_id}{slash}"), headers=tenant.headers(scope))
            assert response.status_code == 405
            assert response.content == b""
    assert count_rows(database) == 1
    assert get(client, tenant, url(prefix, tenant.project_id, f"/{fp.id}")) == shown(fp)


def test_delete_needs_the_write_scope(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "abc")
    response = client.delete(url(prefix, tenant.project_id, f"/{fp.id}"), headers=tenant.headers("read"))
    assert response.status_code == 403
    assert response.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'error_tracking:write'",
        "attr": None,
    }
    assert count_rows(database) == 1


@pytest.mark.parametrize(("method", "path"), [("POST", ""), ("PATCH", "/{id}"), ("PUT", "/{id}")])
def test_no_other_writes(client: TestClient, tenant: Tenant, database: Database, prefix: str, method: str, path: str):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "abc")
    response = client.request(
        method,
        url(prefix, tenant.project_id, path.format(id=fp.id)),
        json={"fingerprint": "changed"},
        headers=tenant.headers(),
    )
    assert response.status_code == 405
    assert response.json() == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": f'Method "{method}" not allowed.',
        "attr": None,
    }
    assert get(client, tenant, url(prefix, tenant.project_id, f"/{fp.id}")) == shown(fp)


def test_both_prefixes_show_the_same_fingerprints(client: TestClient, tenant: Tenant, database: Database):
    fp = add_fingerprint(database, new_issue(database, tenant.project_id), "abc")
    for prefix in ("/api/environments", "/api/projects"):
        assert get(client, tenant, url(prefix, tenant.project_id, f"/{fp.id}")) == shown(fp)
