"""The error tracking query endpoints: compact issue lists, one issue, an issue's events."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Tenant, make_role
from tests.issue_data import NOW, ago, exception, frame, make_event, make_events, make_issue
from trapline.api.query import event_properties, latest_release, top_in_app_frame
from trapline.db.engine import Database
from trapline.issues.models import Issue

ISSUE_NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Issue not found", "attr": None}


def url(prefix: str, project_id: int, kind: str, slash: bool = False) -> str:
    return f"{prefix}/{project_id}/error_tracking/query/{kind}" + ("/" if slash else "")


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def query(client: TestClient, tenant: Tenant, endpoint: str, **body: Any) -> dict[str, Any]:
    response = client.post(url("/api/projects", tenant.project_id, endpoint), json=body, headers=tenant.headers("read"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["results"]]


STACK = [
    frame("vendorCall", "node_modules/lib/index.js", line=10, column=2, in_app=False),
    frame("handleClick", "src/button.js", line=42, column=7, code_variables={"x": "1"}),
    frame("loadUser", "src/users.js", line=7, column=3, junk_drawer={"raw": True}),
]
RELEASES = {
    "old": {"id": "r1", "version": "1.0.0", "project": "web", "timestamp": "2024-01-01T00:00:00Z"},
    "new": {
        "id": "r2",
        "version": "1.1.0",
        "project": "web",
        "timestamp": "2024-02-01T00:00:00Z",
        "metadata": {"git": {"commit_id": "abc123", "branch": "main", "repo_name": "acme/web"}},
    },
}


@pytest.fixture
def issues(database: Database, tenant: Tenant) -> dict[str, Issue]:
    """busy: 4 events, 2 users, 2 sessions; calm: 1 event; resolved: 2 events; stale: 10 days ago."""
    with database.session(write=True) as session:
        busy = make_issue(session, tenant.project_id, ["busy"], name="TypeError", first_seen=ago(days=30))
        calm = make_issue(session, tenant.project_id, ["calm"], name="RangeError", user_id=tenant.user_id)
        resolved = make_issue(session, tenant.project_id, ["resolved"], status="resolved")
        stale = make_issue(session, tenant.project_id, ["stale"])
        for n, (user, session_id) in enumerate([("u1", "s1"), ("u1", "s1"), ("u2", "s2"), ("u2", None)]):
            make_event(
                session,
                tenant.project_id,
                "busy",
                timestamp=ago(hours=n + 1),
                distinct_id=user,
                session_id=session_id,
                exceptions=[exception("TypeError", "x is undefined", STACK)],
                properties={
                    "$exception_releases": RELEASES,
                    "$current_url": "https://shop.example.com/cart",
                    "$pathname": "/cart",
                    "$browser": "Firefox" if n else "Chrome",
                    "$os": "Linux",
                    "$lib_version": "1.2.3",
                    "$referrer": None,
                },
            )
        make_event(
            session,
            tenant.project_id,
            "calm",
            timestamp=ago(minutes=5),
            library="posthog-python",
            exceptions=[exception("RangeError", "too far")],
            email="ada@example.com",
        )
        make_events(session, tenant.project_id, "resolved", 2)
        make_event(session, tenant.project_id, "stale", timestamp=ago(days=10))
    return {"busy": busy, "calm": calm, "resolved": resolved, "stale": stale}


# --- query/issues ---------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_issues_with_defaults(client: TestClient, tenant: Tenant, issues: dict[str, Issue], prefix: str, slash: bool):
    response = client.post(url(prefix, tenant.project_id, "issues", slash), json={}, headers=tenant.headers("read"))

    assert response.status_code == 200
    busy, calm = issues["busy"], issues["calm"]
    assert response.json() == {
        "results": [
            {
                "id": str(busy.id),
                "name": "TypeError",
                "description": "boom",
                "status": "active",
                "severity": None,
                "first_seen": iso(ago(days=30)),
                "last_seen": iso(ago(hours=1)),
                "library": "web",
                "source": "src/users.js",
                "assignee": None,
                "aggregations": {"occurrences": 4, "users": 2, "sessions": 2},
            },
            {
                "id": str(calm.id),
                "name": "RangeError",
                "description": "boom",
                "status": "active",
                "severity": None,
                "first_seen": iso(ago(minutes=5)),
                "last_seen": iso(ago(minutes=5)),
                "library": "posthog-python",
                "source": None,
                "assignee": {"type": "user", "id": tenant.user_id},
                "aggregations": {"occurrences": 1, "users": 1, "sessions": 0},
            },
        ],
        "hasMore": False,
        "limit": 10,
        "offset": 0,
    }


def test_issues_pages_with_has_more(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    first = query(client, tenant, "issues", limit=1, status="all")
    second = query(client, tenant, "issues", limit=1, offset=1, status="all")
    last = query(client, tenant, "issues", limit=1, offset=2, status="all")

    assert (first["hasMore"], first["nextOffset"], first["limit"], first["offset"]) == (True, 1, 1, 0)
    assert ids(first) == [str(issues["busy"].id)]
    assert ids(second) == [str(issues["resolved"].id)]
    assert ids(last) == [str(issues["calm"].id)]
    assert last["hasMore"] is False
    assert "nextOffset" not in last


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "all"}, ["busy", "resolved", "calm"]),
        ({"status": "resolved"}, ["resolved"]),
        ({"status": "all", "dateRange": {"date_from": "-30d"}}, ["busy", "resolved", "calm", "stale"]),
        ({"dateRange": {"date_from": "-30M"}}, ["calm"]),  # M: minutes (m: months)
        ({"dateRange": {"date_from": "-30d", "date_to": "-2d"}}, ["stale"]),
        ({"orderBy": "last_seen"}, ["calm", "busy"]),
        ({"orderBy": "users", "orderDirection": "ASC"}, ["calm", "busy"]),
        ({"orderBy": "first_seen"}, ["calm", "busy"]),  # DESC: PostHog's query default for every key
        ({"orderBy": "first_seen", "orderDirection": "ASC"}, ["busy", "calm"]),
        ({"searchQuery": "undefined"}, ["busy"]),
        ({"searchQuery": '"x is"'}, ["busy"]),
        ({"user": "ada@example.com"}, ["calm"]),
        ({"filePath": "src/users.js"}, ["busy"]),
        ({"searchQuery": "TypeError", "filePath": "button"}, ["busy"]),
        ({"searchQuery": "RangeError", "filePath": "button"}, []),
        ({"library": "posthog-python"}, ["calm"]),
        ({"library": ["posthog-python", "web"]}, ["busy", "calm"]),
        ({"fingerprint": "calm"}, ["calm"]),
        ({"fingerprint": ["busy", "stale"]}, ["busy"]),
        ({"url": "SHOP.example"}, ["busy"]),
        ({"url": "%"}, []),
        ({"url": "\x00"}, []),
        ({"library": ["we\x00b"]}, []),
        ({"fingerprint": "\x00"}, []),
        ({"assignee": {"type": "user", "id": "{user_id}"}}, ["calm"]),
        # No user has an id past a 32-bit integer; on PostgreSQL comparing with it failed (500).
        ({"assignee": {"type": "user", "id": 2**40}}, []),
        ({"assignee": {"type": "user", "id": str(2**64)}}, []),
    ],
)
def test_issues_filters_and_order(
    client: TestClient, tenant: Tenant, issues: dict[str, Issue], body: dict[str, Any], expected: list[str]
):
    if body.get("assignee", {}).get("id") == "{user_id}":
        body = {"assignee": {"type": "user", "id": tenant.user_id}}

    assert ids(query(client, tenant, "issues", **body)) == [str(issues[key].id) for key in expected]


def test_issues_assigned_to_a_role(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role = make_role(session, tenant.organization_id)
        issue = make_issue(session, tenant.project_id, ["r"], role_id=role.id)
        make_event(session, tenant.project_id, "r")
        make_issue(session, tenant.project_id, ["n"])
        make_event(session, tenant.project_id, "n")

    page = query(client, tenant, "issues", assignee={"type": "role", "id": str(role.id)})

    assert ids(page) == [str(issue.id)]
    assert page["results"][0]["assignee"] == {"type": "role", "id": str(role.id)}


def test_issues_numbers_follow_the_filters(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    page = query(client, tenant, "issues", searchQuery="undefined", dateRange={"date_from": iso(ago(hours=2))})

    assert page["results"][0]["aggregations"] == {"occurrences": 2, "users": 1, "sessions": 1}


def test_issues_volume_only_when_asked_for(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    start, end = ago(days=4), NOW
    page = query(client, tenant, "issues", volumeResolution=2, dateRange={"date_from": iso(start), "date_to": iso(end)})

    aggregations = page["results"][0]["aggregations"]
    assert aggregations["volumeRange"] == [0, 4]
    assert aggregations["volume_buckets"] == [
        {"label": iso(start), "value": 0},
        {"label": iso(start + (end - start) / 2), "value": 4},
    ]
    assert "volumeRange" not in query(client, tenant, "issues")["results"][0]["aggregations"]


def test_issues_list_descriptions_are_cut_to_300_characters(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["long"], description="x" * 1000)
        make_event(session, tenant.project_id, "long")

    description = query(client, tenant, "issues")["results"][0]["description"]

    assert len(description) == 300
    assert description.endswith("…")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"limit": 0}, invalid("Ensure this value is greater than or equal to 1.", "limit", "min_value")),
        ({"limit": 101}, invalid("Ensure this value is less than or equal to 100.", "limit", "max_value")),
        ({"offset": -1}, invalid("Ensure this value is greater than or equal to 0.", "offset", "min_value")),
        (
            {"volumeResolution": 201},
            invalid("Ensure this value is less than or equal to 200.", "volumeResolution", "max_value"),
        ),
        ({"orderBy": "revenue"}, invalid('"revenue" is not a valid choice.', "orderBy", "invalid_choice")),
        ({"orderDirection": "UP"}, invalid('"UP" is not a valid choice.', "orderDirection", "invalid_choice")),
        ({"status": "open"}, invalid('"open" is not a valid choice.', "status", "invalid_choice")),
        ({"dateRange": {"date_from": "soon"}}, "dateRange__date_from"),
        ({"dateRange": {"date_to": "soon"}}, "dateRange__date_to"),
        ({"dateRange": {"date_from": "-1d", "date_to": "-2d"}}, "dateRange__date_from"),
        ({"dateRange": "-7d"}, "dateRange"),
        ({"assignee": {"type": "user", "id": "x"}}, invalid("Provide a numeric user ID.", "assignee__id")),
        (
            {"searchQuery": "x" * 501},
            invalid("Ensure this field has no more than 500 characters.", "searchQuery", "max_length"),
        ),
        ({"searchQuery": " ".join("w" * 101)}, invalid("Too many search tokens", "searchQuery")),
        ({"library": []}, invalid("Expected a string or a non-empty list of strings.", "library")),
        ({"fingerprint": [1]}, invalid("Expected a string or a non-empty list of strings.", "fingerprint")),
        ({"library": ["web"] * 101}, invalid("Expected a string or a non-empty list of strings.", "library")),
        (
            {"filterGroup": [{"key": "$browser", "value": "Chrome", "type": "event"}]},
            invalid("Property filters are not supported; use library, fingerprint, url or searchQuery.", "filterGroup"),
        ),
        ({"release": "1.0.0"}, invalid("The release filter is not supported.", "release")),
        ({"personId": str(uuid.uuid4())}, "personId"),
    ],
)
def test_issues_bad_bodies(client: TestClient, tenant: Tenant, body: dict[str, Any], error: dict[str, Any] | str):
    response = client.post(url("/api/projects", tenant.project_id, "issues"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    if isinstance(error, str):
        assert response.json()["attr"] == error
    else:
        assert response.json() == error


def test_issues_accept_and_ignore_posthogs_other_fields(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    page = query(client, tenant, "issues", filterTestAccounts=False, filterGroup=[], kind="ErrorTrackingQuery")

    assert len(page["results"]) == 2


# --- query/issue ----------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_issue_details(client: TestClient, tenant: Tenant, issues: dict[str, Issue], prefix: str, slash: bool):
    busy = issues["busy"]

    response = client.post(
        url(prefix, tenant.project_id, "issue", slash), json={"issueId": str(busy.id)}, headers=tenant.headers("read")
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": str(busy.id),
        "name": "TypeError",
        "description": "boom",
        "status": "active",
        "first_seen": iso(ago(days=30)),
        "last_seen": iso(ago(hours=1)),
        "library": "web",
        "source": "src/users.js",
        "function": "loadUser",
        "top_in_app_frame": {"function": "loadUser", "source": "src/users.js", "line": 7, "column": 3, "in_app": True},
        "latest_release": {
            "version": "1.1.0",
            "project": "web",
            "timestamp": "2024-02-01T00:00:00Z",
            "commit_id": "abc123",
            "branch": "main",
            "repo_name": "acme/web",
        },
        "impact": {"occurrences": 4, "users": 2, "sessions": 2},
    }


def test_issue_sparkline_defaults_to_twelve_buckets(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    default = query(client, tenant, "issue", issueId=str(issues["busy"].id), includeSparkline=True)
    chosen = query(client, tenant, "issue", issueId=str(issues["busy"].id), includeSparkline=True, volumeResolution=3)

    assert len(default["sparkline"]) == 12
    assert sum(default["sparkline"]) == 4
    assert default["sparkline"][-1] == 4  # all four in the last 14 hours of the week
    assert chosen["sparkline"] == [0, 0, 4]


def test_issue_without_events_in_the_range(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    stale = issues["stale"]

    plain = query(client, tenant, "issue", issueId=str(stale.id))
    with_sparkline = query(client, tenant, "issue", issueId=str(stale.id), includeSparkline=True)
    wider = query(client, tenant, "issue", issueId=str(stale.id), dateRange={"date_from": "-30d"})

    assert plain == {"id": str(stale.id), "name": "TypeError", "description": "boom", "status": "active", "impact": {}}
    assert with_sparkline == {**plain, "sparkline": []}
    assert wider["impact"] == {"occurrences": 1, "users": 1, "sessions": 0}


def test_issue_breakdown(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    details = query(client, tenant, "issue", issueId=str(issues["busy"].id), includeBreakdown=True)

    breakdown = details["breakdown"]
    assert breakdown["range_limited"] is False
    assert breakdown["occurrences"] == 4
    assert breakdown["sample_session_ids"] == ["s1", "s2"]
    assert breakdown["top_values"] == {
        "path": [{"value": "/cart", "count": 4}],
        "browser": [{"value": "Firefox", "count": 3}, {"value": "Chrome", "count": 1}],
        "os": [{"value": "Linux", "count": 4}],
        "library": [{"value": "web", "count": 4}],
        "library_version": [{"value": "1.2.3", "count": 4}],
    }


def test_issue_breakdown_covers_at_most_thirty_days(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(days=40), properties={"$current_url": "https://a"})
        make_event(session, tenant.project_id, "x", timestamp=ago(days=1), properties={"$current_url": "https://b"})

    details = query(
        client, tenant, "issue", issueId=str(issue.id), includeBreakdown=True, dateRange={"date_from": "-60d"}
    )

    assert details["impact"]["occurrences"] == 2
    breakdown = details["breakdown"]
    assert breakdown["range_limited"] is True
    assert breakdown["occurrences"] == 1
    # no $pathname on these events (a backend SDK): URLs stand in
    assert breakdown["top_values"]["url"] == [{"value": "https://b", "count": 1}]
    end = datetime.fromisoformat(breakdown["date_to"])
    assert datetime.fromisoformat(breakdown["date_from"]) == end - timedelta(days=30)


def test_issue_unknown(client: TestClient, tenant: Tenant, other_tenant: Tenant, issues: dict[str, Issue]):
    for project_id, issue_id, who in (
        (tenant.project_id, uuid.uuid4(), tenant),
        (other_tenant.project_id, issues["busy"].id, other_tenant),
    ):
        response = client.post(
            url("/api/projects", project_id, "issue"), json={"issueId": str(issue_id)}, headers=who.headers()
        )
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, invalid("This field is required.", "issueId", "required")),
        ({"issueId": "nope"}, invalid("Must be a valid UUID.", "issueId")),
        ({"issueId": str(uuid.uuid4()), "volumeResolution": -1}, "volumeResolution"),
        ({"issueId": str(uuid.uuid4()), "includeSparkline": "sometimes"}, "includeSparkline"),
    ],
)
def test_issue_bad_bodies(client: TestClient, tenant: Tenant, body: dict[str, Any], error: Any):
    response = client.post(url("/api/projects", tenant.project_id, "issue"), json=body, headers=tenant.headers())

    assert response.status_code == 400
    if isinstance(error, str):
        assert response.json()["attr"] == error
    else:
        assert response.json() == error


# --- query/issue_events ---------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_issue_events_default_to_the_latest_event_with_the_default_groups(
    client: TestClient, tenant: Tenant, issues: dict[str, Issue], prefix: str, slash: bool
):
    response = client.post(
        url(prefix, tenant.project_id, "issue_events", slash),
        json={"issueId": str(issues["busy"].id)},
        headers=tenant.headers("read"),
    )

    assert response.status_code == 200
    page = response.json()
    assert (page["hasMore"], page["nextOffset"], page["limit"], page["offset"]) == (True, 1, 1, 0)
    [event] = page["results"]
    assert event["timestamp"] == iso(ago(hours=1))
    assert event["distinct_id"] == "u1"
    assert event["properties"] == {
        "$exception_types": ["TypeError"],
        "$exception_values": ["x is undefined"],
        "$exception_list": [
            {
                "type": "TypeError",
                "value": "x is undefined",
                "mechanism": {"handled": False, "type": "onerror", "synthetic": False},
            }
        ],
        "$exception_fingerprint": "busy",
        "$exception_handled": False,
        "$lib": "web",
        "$lib_version": "1.2.3",
        "$browser": "Chrome",
        "$os": "Linux",
        "$current_url": "https://shop.example.com/cart",
        "$session_id": "s1",
    }


def test_issue_events_with_stacks(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    page = query(client, tenant, "issue_events", issueId=str(issues["busy"].id), include=["stacktrace"])

    [event] = page["results"]
    assert list(event["properties"]) == ["$exception_list"]
    stack = event["properties"]["$exception_list"][0]["stacktrace"]
    assert stack["type"] == "resolved"
    assert [f["resolved_name"] for f in stack["frames"]] == ["handleClick", "loadUser"]  # in-app only
    assert all("raw_id" not in f and "junk_drawer" not in f and "code_variables" not in f for f in stack["frames"])


def test_issue_events_with_code_variables_and_every_frame(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    page = query(
        client, tenant, "issue_events", issueId=str(issues["busy"].id), include=["code_variables"], onlyAppFrames=False
    )

    frames = page["results"][0]["properties"]["$exception_list"][0]["stacktrace"]["frames"]
    assert [f["resolved_name"] for f in frames] == ["vendorCall", "handleClick", "loadUser"]
    assert frames[1]["code_variables"] == {"x": "1"}


def test_issue_events_keep_the_last_fifty_frames(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["deep"])
        frames = [frame(f"f{n}", "src/deep.js") for n in range(80)]
        make_event(session, tenant.project_id, "deep", exceptions=[exception("RecursionError", "deep", frames)])

    page = query(client, tenant, "issue_events", issueId=str(issue.id), include=["stacktrace"])

    kept = page["results"][0]["properties"]["$exception_list"][0]["stacktrace"]["frames"]
    assert [f["resolved_name"] for f in kept] == [f"f{n}" for n in range(30, 80)]


def test_issue_events_groups(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    page = query(
        client, tenant, "issue_events", issueId=str(issues["busy"].id), include=["release", "navigation", "release"]
    )

    assert page["results"][0]["properties"] == {
        "$exception_releases": RELEASES,
        "$current_url": "https://shop.example.com/cart",
    }


def test_issue_events_pages_order_and_search(client: TestClient, tenant: Tenant, issues: dict[str, Issue]):
    busy = str(issues["busy"].id)

    newest = query(client, tenant, "issue_events", issueId=busy, limit=3)
    rest = query(client, tenant, "issue_events", issueId=busy, limit=3, offset=3)
    oldest = query(client, tenant, "issue_events", issueId=busy, orderDirection="ASC")
    none = query(client, tenant, "issue_events", issueId=busy, searchQuery="RangeError")
    recent = query(client, tenant, "issue_events", issueId=busy, limit=20, dateRange={"date_from": iso(ago(hours=2))})

    assert [e["timestamp"] for e in newest["results"]] == [iso(ago(hours=h)) for h in (1, 2, 3)]
    assert newest["hasMore"] is True
    assert [e["timestamp"] for e in rest["results"]] == [iso(ago(hours=4))]
    assert rest["hasMore"] is False
    assert [e["timestamp"] for e in oldest["results"]] == [iso(ago(hours=4))]
    assert none == {"results": [], "hasMore": False, "limit": 1, "offset": 0}
    assert len(recent["results"]) == 2


def test_issue_events_unknown_issue(client: TestClient, tenant: Tenant):
    response = client.post(
        url("/api/projects", tenant.project_id, "issue_events"),
        json={"issueId": str(uuid.uuid4())},
        headers=tenant.headers(),
    )

    assert response.status_code == 404
    assert response.json() == ISSUE_NOT_FOUND


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"limit": 21}, "limit"),
        ({"limit": 0}, "limit"),
        ({"include": ["everything"]}, "include__0"),
        ({"include": "exception"}, "include"),
        ({"orderDirection": "down"}, "orderDirection"),
        ({"filterGroup": [{"key": "a"}]}, "filterGroup"),
        ({"onlyAppFrames": "perhaps"}, "onlyAppFrames"),
    ],
)
def test_issue_events_bad_bodies(client: TestClient, tenant: Tenant, issues: dict[str, Issue], body: Any, attr: str):
    response = client.post(
        url("/api/projects", tenant.project_id, "issue_events"),
        json={"issueId": str(issues["busy"].id), **body},
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    assert response.json()["attr"] == attr


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["issues", "issue", "issue_events"])
def test_queries_need_the_read_scope_even_though_they_are_posts(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, issues: dict[str, Issue], kind: str
):
    body = {"issueId": str(issues["busy"].id)}
    path = url("/api/projects", tenant.project_id, kind)

    assert client.post(path, json=body, headers=tenant.headers("read")).status_code == 200
    assert client.post(path, json=body, headers=tenant.headers("write")).status_code == 200
    denied = client.post(path, json=body, headers=tenant.headers("none"))
    assert denied.status_code == 403
    assert denied.json()["detail"] == "API key missing required scope 'error_tracking:read'"
    assert client.post(path, json=body).status_code == 401
    elsewhere = client.post(url("/api/projects", other_tenant.project_id, kind), json=body, headers=tenant.headers())
    assert elsewhere.status_code == 404
    assert elsewhere.json()["detail"] == "Not found."


# --- normalisation --------------------------------------------------------------------------


def test_top_in_app_frame_is_the_last_in_app_frame():
    properties = {"$exception_list": [exception(frames=STACK), exception(frames=[frame("inner", "src/a.js")])]}

    assert top_in_app_frame(properties) == {
        "function": "inner",
        "source": "src/a.js",
        "line": 1,
        "column": 1,
        "in_app": True,
    }


@pytest.mark.parametrize(
    "properties",
    [
        None,
        {},
        {"$exception_list": "not a list"},
        {"$exception_list": [{"stacktrace": {"frames": [frame("vendor", "x", in_app=False)]}}]},
        {"$exception_list": [None, {"stacktrace": None}, {"stacktrace": {"frames": "x"}}]},
    ],
)
def test_no_top_frame(properties: Any):
    assert top_in_app_frame(properties) == {}


def test_top_frame_falls_back_on_raw_names_and_skips_odd_values():
    raw = {"in_app": True, "function": "?", "filename": "app.py", "lineno": "7", "colno": True}

    assert top_in_app_frame({"$exception_list": [{"stacktrace": {"frames": [raw]}}]}) == {
        "source": "app.py",
        "in_app": True,
    }


def test_latest_release_without_releases():
    assert latest_release({}) == {}
    assert latest_release({"$exception_releases": "x"}) == {}
    assert latest_release({"$exception_releases": {"a": {"version": "2"}}}) == {"version": "2"}


def test_event_properties_leave_out_missing_and_null_values():
    assert event_properties({"$lib": "web", "$os": None, "other": 1}, ["environment"]) == {"$lib": "web"}
    assert event_properties({"$cymbal_errors": ["x"]}, ["diagnostics"]) == {"$cymbal_errors": ["x"]}
    assert event_properties({"$exception_list": "odd"}, ["stacktrace"]) == {"$exception_list": "odd"}
