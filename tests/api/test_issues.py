"""Issues: the list with its numbers, one issue, its events, values, exists and updates."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant, make_project, make_role
from tests.issue_data import NOW, add_fingerprint, ago, make_event, make_issue
from trapline.db.engine import Database
from trapline.issues.models import Issue, IssueFingerprint

ISSUE_NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Issue not found", "attr": None}


def url(prefix: str, project_id: int, *parts: str, slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{project_id}/error_tracking/issues", *parts])
    return path + "/" if slash else path


def invalid(detail: str, attr: str | None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def listed(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = client.get(url("/api/projects", tenant.project_id), params=params, headers=tenant.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_ids(client: TestClient, tenant: Tenant, **params: Any) -> list[str]:
    return [issue["id"] for issue in listed(client, tenant, **params)["results"]]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stored(database: Database, issue_id: uuid.UUID | str) -> Issue:
    with database.session(write=False) as session:
        issue = session.get(Issue, uuid.UUID(str(issue_id)))
        assert issue is not None
        return issue


@pytest.fixture
def issue(database: Database, tenant: Tenant) -> Issue:
    """One active issue with two fingerprints and five events over the last few hours."""
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["fp-a", "fp-b"], first_seen=ago(days=40))
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=5), distinct_id="u1", session_id="s1")
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=4), distinct_id="u1", session_id="s1")
        make_event(session, tenant.project_id, "fp-b", timestamp=ago(hours=3), distinct_id="u2", session_id="s2")
        make_event(session, tenant.project_id, "fp-b", timestamp=ago(hours=2), distinct_id="u3", session_id="")
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=1), distinct_id="u3", library="posthog-node")
        return found


# --- list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_list_answers_issue_objects_with_their_numbers(
    client: TestClient, tenant: Tenant, issue: Issue, prefix: str, slash: bool
):
    response = client.get(url(prefix, tenant.project_id, slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": str(issue.id),
                "status": "active",
                "severity": None,
                "name": "TypeError",
                "description": "boom",
                "first_seen": iso(ago(days=40)),
                "assignee": None,
                "external_issues": [],
                "cohort": None,
                "last_seen": iso(ago(hours=1)),
                "library": "posthog-node",
                "aggregations": {"occurrences": 5, "users": 3, "sessions": 2},
            }
        ],
    }


def test_sessions_ignore_missing_and_empty_session_ids(client: TestClient, tenant: Tenant, issue: Issue):
    # the fixture has s1, s1, s2, "" and one without $session_id
    assert listed(client, tenant)["results"][0]["aggregations"]["sessions"] == 2


def test_the_issue_first_seen_is_its_fingerprints_earliest(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(hours=2))
        add_fingerprint(session, found, "y", first_seen=ago(days=100))
        session.commit()

    [item] = listed(client, tenant)["results"]

    # not the earliest event in the range: the issue is older than that
    assert item["first_seen"] == iso(ago(days=100))


def test_first_seen_is_null_when_no_fingerprint_has_one(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(hours=2))
        session.execute(update(IssueFingerprint).where(IssueFingerprint.issue_id == found.id).values(first_seen=None))
        session.commit()

    [item] = listed(client, tenant)["results"]

    assert item["first_seen"] is None
    assert item["last_seen"] == iso(ago(hours=2))


def test_library_is_that_of_the_latest_event(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["a", "b"])
        make_event(session, tenant.project_id, "a", timestamp=ago(hours=1), library="web")
        make_event(session, tenant.project_id, "b", timestamp=ago(hours=2), library="posthog-python")
        make_event(session, tenant.project_id, "a", timestamp=ago(hours=3), library="posthog-ruby")

    assert listed(client, tenant)["results"][0]["library"] == "web"


def test_issues_without_events_in_the_range_are_not_listed(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        recent = make_issue(session, tenant.project_id, ["recent"])
        make_event(session, tenant.project_id, "recent", timestamp=ago(days=1))
        old = make_issue(session, tenant.project_id, ["old"])
        make_event(session, tenant.project_id, "old", timestamp=ago(days=10))
        make_issue(session, tenant.project_id, ["never"])

    assert listed_ids(client, tenant) == [str(recent.id)]
    assert listed_ids(client, tenant, date_from="-30d") == [str(recent.id), str(old.id)]
    assert listed(client, tenant, date_from="-30d")["count"] == 2


def test_numbers_are_over_the_range_only(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(days=1), distinct_id="in-range")
        make_event(session, tenant.project_id, "x", timestamp=ago(days=20), distinct_id="before")

    [week] = listed(client, tenant)["results"]
    [month] = listed(client, tenant, date_from="-30d")["results"]

    assert (week["aggregations"]["occurrences"], week["aggregations"]["users"]) == (1, 1)
    assert (month["aggregations"]["occurrences"], month["aggregations"]["users"]) == (2, 2)


def test_only_this_projects_issues_are_listed(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        mine = make_issue(session, tenant.project_id, ["same-fingerprint"])
        make_event(session, tenant.project_id, "same-fingerprint")
        theirs = make_issue(session, other_tenant.project_id, ["same-fingerprint"])
        make_event(session, other_tenant.project_id, "same-fingerprint")
        second = make_project(session, tenant.organization_id)
        make_issue(session, second.id, ["same-fingerprint"])
        make_event(session, second.id, "same-fingerprint")

    assert listed_ids(client, tenant) == [str(mine.id)]
    assert listed(client, tenant)["results"][0]["aggregations"]["occurrences"] == 1
    assert listed_ids(client, other_tenant) == [str(theirs.id)]


def test_an_empty_project_lists_nothing(client: TestClient, tenant: Tenant):
    assert listed(client, tenant) == {"count": 0, "next": None, "previous": None, "results": []}


# --- list: status and assignee --------------------------------------------------------------


@pytest.fixture
def statuses(database: Database, tenant: Tenant) -> dict[str, str]:
    ids = {}
    with database.session(write=True) as session:
        for status in ("active", "resolved", "suppressed", "archived", "pending_release"):
            found = make_issue(session, tenant.project_id, [status], status=status)
            make_event(session, tenant.project_id, status)
            ids[status] = str(found.id)
    return ids


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, {"active"}),
        ("active", {"active"}),
        ("resolved", {"resolved", "archived", "pending_release"}),
        ("suppressed", {"suppressed"}),
        ("archived", {"archived"}),
        ("pending_release", {"pending_release"}),
        ("all", {"active", "resolved", "suppressed", "archived", "pending_release"}),
    ],
)
def test_status_filter(
    client: TestClient, tenant: Tenant, statuses: dict[str, str], status: str | None, expected: set[str]
):
    params = {"status": status} if status else {}

    assert set(listed_ids(client, tenant, **params)) == {statuses[s] for s in expected}


def test_legacy_statuses_are_shown_as_stored(client: TestClient, tenant: Tenant, statuses: dict[str, str]):
    shown = {item["id"]: item["status"] for item in listed(client, tenant, status="resolved")["results"]}

    assert shown[statuses["archived"]] == "archived"


def test_an_unknown_status_is_refused(client: TestClient, tenant: Tenant):
    response = client.get(url("/api/projects", tenant.project_id), params={"status": "open"}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid('"open" is not a valid choice.', "status", code="invalid_choice")


@pytest.fixture
def assigned(database: Database, tenant: Tenant) -> dict[str, Any]:
    with database.session(write=True) as session:
        role = make_role(session, tenant.organization_id)
        to_user = make_issue(session, tenant.project_id, ["u"], user_id=tenant.user_id)
        to_role = make_issue(session, tenant.project_id, ["r"], role_id=role.id)
        nobody = make_issue(session, tenant.project_id, ["n"])
        for fingerprint in ("u", "r", "n"):
            make_event(session, tenant.project_id, fingerprint)
    return {"role_id": str(role.id), "user": str(to_user.id), "role": str(to_role.id), "nobody": str(nobody.id)}


def test_assignee_filter_by_type_and_id(client: TestClient, tenant: Tenant, assigned: dict[str, Any]):
    by_user = listed_ids(client, tenant, assignee_type="user", assignee_id=str(tenant.user_id))
    by_role = listed_ids(client, tenant, assignee_type="role", assignee_id=assigned["role_id"])

    assert by_user == [assigned["user"]]
    assert by_role == [assigned["role"]]


def test_assignee_filter_as_json(client: TestClient, tenant: Tenant, assigned: dict[str, Any]):
    as_json = json.dumps({"type": "role", "id": assigned["role_id"]})

    assert listed_ids(client, tenant, assignee=as_json) == [assigned["role"]]
    assert len(listed_ids(client, tenant, assignee="null")) == 3


def test_assigned_issues_show_their_assignee(client: TestClient, tenant: Tenant, assigned: dict[str, Any]):
    shown = {item["id"]: item["assignee"] for item in listed(client, tenant)["results"]}

    assert shown == {
        assigned["user"]: {"type": "user", "id": tenant.user_id},
        assigned["role"]: {"type": "role", "id": assigned["role_id"]},
        assigned["nobody"]: None,
    }


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"assignee_type": "user", "assignee_id": "abc"}, invalid("Provide a numeric user ID.", "assignee_id")),
        ({"assignee_type": "role", "assignee_id": "42"}, invalid("Provide a valid role UUID.", "assignee_id")),
        ({"assignee_type": "user"}, invalid("This field is required.", "assignee_id", code="required")),
        ({"assignee_id": "42"}, invalid("This field is required.", "assignee_type", code="required")),
        ({"assignee": '{"id": 1}'}, invalid("This field is required.", "assignee__type", code="required")),
        (
            {"assignee_type": "group", "assignee_id": "1"},
            invalid('"group" is not a valid choice.', "assignee_type", code="invalid_choice"),
        ),
        ({"assignee": "[1]"}, invalid('Expected a JSON object such as {"type": "user", "id": 1}.', "assignee")),
        ({"assignee": "{nope"}, invalid('Expected a JSON object such as {"type": "user", "id": 1}.', "assignee")),
        (
            {"assignee": '{"type": "user", "id": "x"}'},
            invalid("Provide a numeric user ID.", "assignee__id"),
        ),
    ],
)
def test_bad_assignee_filters(client: TestClient, tenant: Tenant, params: dict[str, str], error: dict[str, Any]):
    response = client.get(url("/api/projects", tenant.project_id), params=params, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error


# --- list: search ---------------------------------------------------------------------------


@pytest.fixture
def searchable(database: Database, tenant: Tenant) -> dict[str, str]:
    from tests.issue_data import exception, frame

    with database.session(write=True) as session:
        type_error = make_issue(session, tenant.project_id, ["te"])
        make_event(
            session,
            tenant.project_id,
            "te",
            exceptions=[
                exception("TypeError", "Cannot read properties of undefined", [frame("loadUser", "app/users.js")])
            ],
            email="Ada@Example.com",
        )
        range_error = make_issue(session, tenant.project_id, ["re"])
        make_event(session, tenant.project_id, "re", exceptions=[exception("RangeError", "Invalid array length")])
        odd = make_issue(session, tenant.project_id, ["odd"])
        make_event(
            session, tenant.project_id, "odd", exceptions=[exception("ValueError", "100% of a_b failed in C:\\temp")]
        )
    return {"type": str(type_error.id), "range": str(range_error.id), "odd": str(odd.id)}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("typeerror", {"type"}),
        ("TYPEERROR", {"type"}),
        ("error", {"type", "range", "odd"}),
        ("cannot undefined", {"type"}),
        ("cannot array", set()),
        ('"cannot read"', {"type"}),
        ('"read cannot"', set()),
        ("users.js", {"type"}),
        ("loaduser", {"type"}),
        ("ada@example", {"type"}),
        ("length", {"range"}),
        ("100%", {"odd"}),
        ("a_b", {"odd"}),
        ("%", {"odd"}),
        ("_", {"odd"}),
        ("a%b", set()),
        ("c:\\temp", {"odd"}),
        ("\\", {"odd"}),
        ("c:\\\\temp", set()),
        ("1_0", set()),
        ("nothing-like-this", set()),
    ],
)
def test_search_matches_every_token(
    client: TestClient, tenant: Tenant, searchable: dict[str, str], search: str, expected: set[str]
):
    assert set(listed_ids(client, tenant, search=search)) == {searchable[key] for key in expected}


def test_a_search_counts_only_matching_events(client: TestClient, tenant: Tenant, database: Database):
    from tests.issue_data import exception

    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", exceptions=[exception("TypeError", "timeout")], distinct_id="a")
        make_event(session, tenant.project_id, "x", exceptions=[exception("TypeError", "other")], distinct_id="b")

    [all_events] = listed(client, tenant)["results"]
    [matching] = listed(client, tenant, search="timeout")["results"]

    assert all_events["aggregations"]["occurrences"] == 2
    assert matching["aggregations"] == {"occurrences": 1, "users": 1, "sessions": 0}


def test_too_many_search_tokens(client: TestClient, tenant: Tenant):
    search = " ".join(f"w{n}" for n in range(101))

    response = client.get(url("/api/projects", tenant.project_id), params={"search": search}, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == invalid("Too many search tokens", "search")


def test_search_with_a_nul_character_finds_nothing_and_does_not_fail(client: TestClient, tenant: Tenant, issue: Issue):
    assert listed_ids(client, tenant, search="boom\x00") == []


# --- list: dates and volume -----------------------------------------------------------------


def test_date_range_parameters(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(days=3))

    three_days_ago = ago(days=3)
    day = three_days_ago.date().isoformat()
    assert listed_ids(client, tenant, date_from="-24h") == []
    assert listed_ids(client, tenant, date_from="-4d") == [str(found.id)]
    assert listed_ids(client, tenant, date_from="-4d", date_to="-2d") == [str(found.id)]
    assert listed_ids(client, tenant, date_from="-4d", date_to="-3d") == [str(found.id)]
    assert listed_ids(client, tenant, date_from="-10d", date_to="-4d") == []
    assert listed_ids(client, tenant, date_from=day, date_to=day) == [str(found.id)]
    assert listed_ids(client, tenant, date_from=iso(three_days_ago), date_to=iso(three_days_ago)) == [str(found.id)]
    assert listed_ids(client, tenant, date_from=iso(three_days_ago + timedelta(seconds=1))) == []
    assert listed_ids(client, tenant, date_from="all") == [str(found.id)]


def test_all_reaches_four_years_back(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", timestamp=ago(days=365 * 3))
        make_issue(session, tenant.project_id, ["y"])
        make_event(session, tenant.project_id, "y", timestamp=ago(days=365 * 5))

    assert listed_ids(client, tenant, date_from="all") == [str(found.id)]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"date_from": "yesterday"}, ("date_from", "Invalid date")),
        ({"date_to": "soon"}, ("date_to", "Invalid date")),
        ({"date_from": "-1d", "date_to": "-2d"}, ("date_from", "date_from must not be after date_to.")),
        ({"date_from": "-9999999y"}, ("date_from", "Invalid date")),
    ],
)
def test_bad_dates(client: TestClient, tenant: Tenant, params: dict[str, str], error: tuple[str, str]):
    response = client.get(url("/api/projects", tenant.project_id), params=params, headers=tenant.headers())

    assert response.status_code == 400
    body = response.json()
    assert (body["attr"], body["type"], body["code"]) == (error[0], "validation_error", "invalid_input")
    assert body["detail"].startswith(error[1])


def test_volume_buckets_split_the_range_evenly(client: TestClient, tenant: Tenant, database: Database):
    start = (NOW - timedelta(days=4)).replace(minute=0, second=0)
    end = start + timedelta(hours=4)
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["x"])
        for offset in (0, 10, 59, 60, 61, 200, 240):  # minutes after start; 240 is the range's end
            make_event(session, tenant.project_id, "x", timestamp=start + timedelta(minutes=offset))

    [item] = listed(client, tenant, date_from=iso(start), date_to=iso(end), volume_resolution=4)["results"]

    assert item["aggregations"]["volumeRange"] == [3, 2, 0, 2]
    assert item["aggregations"]["volume_buckets"] == [
        {"label": iso(start + timedelta(hours=h)), "value": count} for h, count in enumerate([3, 2, 0, 2])
    ]
    assert item["aggregations"]["occurrences"] == 7


def test_buckets_only_when_asked_for(client: TestClient, tenant: Tenant, issue: Issue):
    assert set(listed(client, tenant)["results"][0]["aggregations"]) == {"occurrences", "users", "sessions"}
    one = listed(client, tenant, volume_resolution=1)["results"][0]["aggregations"]
    assert one["volumeRange"] == [5]
    assert len(one["volume_buckets"]) == 1


def test_buckets_follow_the_search(client: TestClient, tenant: Tenant, database: Database):
    from tests.issue_data import exception

    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["x"])
        make_event(session, tenant.project_id, "x", exceptions=[exception("TypeError", "match")])
        make_event(session, tenant.project_id, "x", exceptions=[exception("TypeError", "other")])

    [item] = listed(client, tenant, search="match", volume_resolution=2)["results"]

    assert sum(item["aggregations"]["volumeRange"]) == 1


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("201", "Ensure this value is less than or equal to 200."),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("x", "A valid integer is required."),
    ],
)
def test_bad_volume_resolution(client: TestClient, tenant: Tenant, value: str, detail: str):
    response = client.get(
        url("/api/projects", tenant.project_id), params={"volume_resolution": value}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert (response.json()["attr"], response.json()["detail"]) == ("volume_resolution", detail)


# --- list: order and pages ------------------------------------------------------------------


@pytest.fixture
def ranked(database: Database, tenant: Tenant) -> dict[str, str]:
    """Three issues in a different order by each key (no ties).

    a: 4 events, 1 user, 1 session, last seen 1h ago, first seen 300 days ago
    b: 3 events, 3 users, 2 sessions, last seen 3h ago, first seen 5 days ago
    c: 2 events, 2 users, no session, last seen 30m ago, first seen 60 days ago
    """
    with database.session(write=True) as session:
        a = make_issue(session, tenant.project_id, ["a"], first_seen=ago(days=300))
        b = make_issue(session, tenant.project_id, ["b"], first_seen=ago(days=5))
        c = make_issue(session, tenant.project_id, ["c"], first_seen=ago(days=60))
        for hours in (1, 2, 3, 4):
            make_event(session, tenant.project_id, "a", timestamp=ago(hours=hours), distinct_id="a", session_id="s")
        make_event(session, tenant.project_id, "b", timestamp=ago(hours=3), distinct_id="b1", session_id="s1")
        make_event(session, tenant.project_id, "b", timestamp=ago(hours=4), distinct_id="b2", session_id="s2")
        make_event(session, tenant.project_id, "b", timestamp=ago(hours=4), distinct_id="b3", session_id="s2")
        make_event(session, tenant.project_id, "c", timestamp=ago(minutes=30), distinct_id="c1")
        make_event(session, tenant.project_id, "c", timestamp=ago(minutes=40), distinct_id="c2")
    return {"a": str(a.id), "b": str(b.id), "c": str(c.id)}


@pytest.mark.parametrize(
    ("order_by", "direction", "expected"),
    [
        (None, None, "cab"),  # last_seen, latest first
        ("last_seen", None, "cab"),
        ("last_seen", "ASC", "bac"),
        ("first_seen", None, "acb"),  # oldest first
        ("first_seen", "DESC", "bca"),
        ("first_seen", "desc", "bca"),
        ("occurrences", None, "abc"),
        ("occurrences", "ASC", "cba"),
        ("users", None, "bca"),
        ("users", "asc", "acb"),
        ("sessions", None, "bac"),
        ("sessions", "ASC", "cab"),
    ],
)
def test_order(
    client: TestClient,
    tenant: Tenant,
    ranked: dict[str, str],
    order_by: str | None,
    direction: str | None,
    expected: str,
):
    params = {key: value for key, value in {"order_by": order_by, "order_direction": direction}.items() if value}

    assert listed_ids(client, tenant, **params) == [ranked[key] for key in expected]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_ties_are_broken_by_id(client: TestClient, tenant: Tenant, database: Database, direction: str):
    with database.session(write=True) as session:
        ids = [str(make_issue(session, tenant.project_id, [f"t{n}"]).id) for n in range(4)]
        for n in range(4):
            make_event(session, tenant.project_id, f"t{n}")

    assert listed_ids(client, tenant, order_by="occurrences", order_direction=direction) == sorted(ids)


def test_an_unknown_order_is_refused(client: TestClient, tenant: Tenant):
    response = client.get(
        url("/api/projects", tenant.project_id), params={"order_by": "revenue"}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.json() == invalid('"revenue" is not a valid choice.', "order_by", code="invalid_choice")


def test_pages_walk_the_ordered_list(client: TestClient, tenant: Tenant, ranked: dict[str, str], prefix: str):
    first = client.get(url(prefix, tenant.project_id) + "?limit=2&order_by=first_seen", headers=tenant.headers())
    page = first.json()

    assert page["count"] == 3
    assert [item["id"] for item in page["results"]] == [ranked["a"], ranked["c"]]
    assert page["previous"] is None
    assert page["next"] == f"http://testserver{url(prefix, tenant.project_id)}?order_by=first_seen&limit=2&offset=2"

    second = client.get(page["next"], headers=tenant.headers()).json()

    assert [item["id"] for item in second["results"]] == [ranked["b"]]
    assert second["next"] is None
    assert second["previous"] == f"http://testserver{url(prefix, tenant.project_id)}?order_by=first_seen&limit=2"


def test_numbers_on_a_later_page_are_right(client: TestClient, tenant: Tenant, ranked: dict[str, str]):
    page = listed(client, tenant, order_by="occurrences", limit=1, offset=2)

    assert [(item["id"], item["aggregations"]["occurrences"]) for item in page["results"]] == [(ranked["c"], 2)]


# --- retrieve -------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [False, True])
def test_retrieve_answers_the_issue_with_all_time_numbers(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, prefix: str, slash: bool
):
    with database.session(write=True) as session:
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(days=200), distinct_id="ancient")

    response = client.get(url(prefix, tenant.project_id, str(issue.id), slash=slash), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {
        "id": str(issue.id),
        "status": "active",
        "severity": None,
        "name": "TypeError",
        "description": "boom",
        "first_seen": iso(ago(days=200)),
        "assignee": None,
        "external_issues": [],
        "cohort": None,
        "last_seen": iso(ago(hours=1)),
        "library": "posthog-node",
        "aggregations": {"occurrences": 6, "users": 4, "sessions": 2},
    }


def test_retrieve_an_issue_without_events(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        found = make_issue(session, tenant.project_id, ["quiet"], severity="high", user_id=tenant.user_id)

    body = client.get(url("/api/projects", tenant.project_id, str(found.id)), headers=tenant.headers()).json()

    assert body["last_seen"] is None
    assert body["library"] is None
    assert body["severity"] == "high"
    assert body["assignee"] == {"type": "user", "id": tenant.user_id}
    assert body["aggregations"] == {"occurrences": 0, "users": 0, "sessions": 0}


@pytest.mark.parametrize("issue_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_retrieve_unknown_issue(client: TestClient, tenant: Tenant, issue_id: str):
    response = client.get(url("/api/projects", tenant.project_id, issue_id), headers=tenant.headers())

    assert response.status_code == 404
    assert response.json() == ISSUE_NOT_FOUND


def test_retrieve_another_organizations_issue(client: TestClient, tenant: Tenant, other_tenant: Tenant, issue: Issue):
    theirs = client.get(url("/api/projects", other_tenant.project_id, str(issue.id)), headers=other_tenant.headers())
    through_their_project = client.get(
        url("/api/projects", other_tenant.project_id, str(issue.id)), headers=tenant.headers()
    )

    assert theirs.status_code == 404
    assert theirs.json() == ISSUE_NOT_FOUND
    assert through_their_project.status_code == 404
    assert through_their_project.json()["detail"] == "Not found."


def test_retrieve_with_a_fingerprint_it_still_owns(client: TestClient, tenant: Tenant, issue: Issue):
    response = client.get(
        url("/api/projects", tenant.project_id, str(issue.id)), params={"fingerprint": "fp-b"}, headers=tenant.headers()
    )

    assert response.status_code == 200
    assert response.json()["id"] == str(issue.id)


def test_retrieve_with_an_unknown_fingerprint_is_a_plain_retrieve(client: TestClient, tenant: Tenant, issue: Issue):
    for fingerprint in ("unknown", "x\x00y", ""):
        response = client.get(
            url("/api/projects", tenant.project_id, str(issue.id)),
            params={"fingerprint": fingerprint},
            headers=tenant.headers(),
        )
        assert response.status_code == 200


@pytest.mark.parametrize("slash", [False, True])
def test_retrieve_with_a_fingerprint_that_moved_redirects(
    client: TestClient, tenant: Tenant, database: Database, prefix: str, slash: bool
):
    with database.session(write=True) as session:
        old = make_issue(session, tenant.project_id, ["kept"])
        new = make_issue(session, tenant.project_id, ["moved"])
    path = url(prefix, tenant.project_id, str(old.id), slash=slash)

    response = client.get(path, params={"fingerprint": "moved"}, headers=tenant.headers(), follow_redirects=False)

    assert response.status_code == 308
    assert response.json() == {"issue_id": str(new.id)}
    target = url(prefix, tenant.project_id, str(new.id), slash=slash)
    assert response.headers["location"] == f"http://testserver{target}?fingerprint=moved"
    followed = client.get(path, params={"fingerprint": "moved"}, headers=tenant.headers())
    assert followed.status_code == 200
    assert followed.json()["id"] == str(new.id)


def test_a_fingerprint_of_another_project_does_not_redirect(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, issue: Issue
):
    with database.session(write=True) as session:
        make_issue(session, other_tenant.project_id, ["theirs"])

    response = client.get(
        url("/api/projects", tenant.project_id, str(issue.id)),
        params={"fingerprint": "theirs"},
        headers=tenant.headers(),
        follow_redirects=False,
    )

    assert response.status_code == 200


# --- events ---------------------------------------------------------------------------------


def test_events_of_an_issue_newest_first(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    response = client.get(url("/api/projects", tenant.project_id, str(issue.id), "events"), headers=tenant.headers())

    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 5
    assert [event["timestamp"] for event in page["results"]] == [iso(ago(hours=h)) for h in (1, 2, 3, 4, 5)]
    first = page["results"][0]
    assert set(first) == {"uuid", "timestamp", "distinct_id", "properties"}
    assert first["distinct_id"] == "u3"
    assert first["properties"]["$lib"] == "posthog-node"
    assert first["properties"]["$exception_list"][0]["type"] == "TypeError"


def test_events_are_paginated(client: TestClient, tenant: Tenant, issue: Issue, prefix: str):
    path = url(prefix, tenant.project_id, str(issue.id), "events", slash=True)

    page = client.get(path + "?limit=2&offset=2", headers=tenant.headers()).json()

    assert [event["timestamp"] for event in page["results"]] == [iso(ago(hours=3)), iso(ago(hours=4))]
    assert page["next"] == f"http://testserver{path}?limit=2&offset=4"
    assert page["previous"] == f"http://testserver{path}?limit=2"


def test_events_in_a_date_range(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    with database.session(write=True) as session:
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(days=400))
    path = url("/api/projects", tenant.project_id, str(issue.id), "events")

    def count(**params: str) -> int:
        response = client.get(path, params=params, headers=tenant.headers())
        assert response.status_code == 200, response.text
        result: int = response.json()["count"]
        return result

    assert count() == 6  # all time by default
    assert count(date_from=iso(ago(hours=3))) == 3
    assert count(date_to=iso(ago(hours=3))) == 4
    assert count(date_from=iso(ago(hours=4)), date_to=iso(ago(hours=2))) == 3
    assert count(date_from="-7d", date_to=iso(ago(hours=5))) == 1
    assert count(date_from="-1d") == 5
    bad = client.get(path, params={"date_from": "later"}, headers=tenant.headers())
    assert bad.status_code == 400
    assert bad.json()["attr"] == "date_from"


def test_events_of_an_unknown_issue(client: TestClient, tenant: Tenant, other_tenant: Tenant, issue: Issue):
    for issue_id in (str(uuid.uuid4()), "nope"):
        response = client.get(url("/api/projects", tenant.project_id, issue_id, "events"), headers=tenant.headers())
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND
    theirs = client.get(
        url("/api/projects", other_tenant.project_id, str(issue.id), "events"), headers=other_tenant.headers()
    )
    assert theirs.status_code == 404


# --- exists and values ----------------------------------------------------------------------


def test_exists(client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, prefix: str):
    def exists() -> bool:
        response = client.get(url(prefix, tenant.project_id, "exists"), headers=tenant.headers())
        assert response.status_code == 200
        result: bool = response.json()["exists"]
        return result

    with database.session(write=True) as session:
        make_issue(session, other_tenant.project_id)
    assert exists() is False
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id)  # no events needed
    assert exists() is True
    assert client.get(url(prefix, tenant.project_id, "exists/"), headers=tenant.headers()).json() == {"exists": True}


@pytest.fixture
def named(database: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, name="TypeError: x is undefined", description="Cannot read 'x'")
        make_issue(session, tenant.project_id, name="TypeError: x is undefined", description="second copy")
        make_issue(session, tenant.project_id, name="RangeError", description=None)
        make_issue(session, tenant.project_id, name=None, description="Type mismatch in 100% of_cases")
        make_issue(session, other_tenant.project_id, name="TypeError: theirs", description="theirs")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"key": "name", "value": "typeerror"}, ["TypeError: x is undefined"]),
        ({"key": "name", "value": "ERROR"}, ["RangeError", "TypeError: x is undefined"]),
        ({"key": "issue_description", "value": "type"}, ["Type mismatch in 100% of_cases"]),
        ({"key": "issue_description", "value": "%"}, ["Type mismatch in 100% of_cases"]),
        ({"key": "issue_description", "value": "f_c"}, ["Type mismatch in 100% of_cases"]),
        ({"key": "issue_description", "value": "o_c"}, []),
        ({"key": "name", "value": "nothing"}, []),
        ({"key": "name"}, []),
        ({"value": "TypeError"}, []),
        ({"key": "status", "value": "active"}, []),
        ({}, []),
    ],
)
def test_values(client: TestClient, tenant: Tenant, named: None, params: dict[str, str], names: list[str]):
    response = client.get(url("/api/projects", tenant.project_id, "values"), params=params, headers=tenant.headers())

    assert response.status_code == 200
    assert response.json() == {"results": [{"name": name} for name in names], "refreshing": False}


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_answers_the_issue_object(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, method: str, prefix: str
):
    response = client.request(
        method,
        url(prefix, tenant.project_id, str(issue.id)),
        json={"status": "resolved", "severity": "critical", "name": "Renamed", "description": "Described"},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": str(issue.id),
        "status": "resolved",
        "severity": "critical",
        "name": "Renamed",
        "description": "Described",
        "first_seen": iso(ago(days=40)),
        "assignee": None,
        "external_issues": [],
        "cohort": None,
    }
    row = stored(database, issue.id)
    assert (row.status, row.severity, row.name, row.description) == ("resolved", "critical", "Renamed", "Described")
    assert row.state_updated_at is not None


def test_update_changes_only_the_fields_given(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    response = client.patch(
        url("/api/projects", tenant.project_id, str(issue.id), slash=True),
        json={"severity": "low"},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    row = stored(database, issue.id)
    assert (row.status, row.severity, row.name, row.description) == ("active", "low", "TypeError", "boom")


def test_update_may_clear_fields(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    client.patch(
        url("/api/projects", tenant.project_id, str(issue.id)), json={"severity": "low"}, headers=tenant.headers()
    )

    response = client.patch(
        url("/api/projects", tenant.project_id, str(issue.id)),
        json={"severity": None, "name": None, "description": ""},
        headers=tenant.headers(),
    )

    assert response.status_code == 200
    assert (response.json()["severity"], response.json()["name"], response.json()["description"]) == (None, None, "")


def test_update_stamps_only_real_changes(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    path = url("/api/projects", tenant.project_id, str(issue.id))

    client.patch(path, json={"name": "TypeError", "status": "active"}, headers=tenant.headers())
    assert stored(database, issue.id).state_updated_at is None

    client.patch(path, json={"status": "suppressed"}, headers=tenant.headers())
    stamped = stored(database, issue.id).state_updated_at
    assert stamped is not None

    client.patch(path, json={"status": "suppressed", "unknown": 1}, headers=tenant.headers())
    assert stored(database, issue.id).state_updated_at == stamped


def test_an_empty_update_changes_nothing(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    response = client.put(url("/api/projects", tenant.project_id, str(issue.id)), headers=tenant.headers())

    assert response.status_code == 200
    assert response.json()["status"] == "active"


def test_update_accepts_a_form_body(client: TestClient, tenant: Tenant, database: Database, issue: Issue):
    response = client.patch(
        url("/api/projects", tenant.project_id, str(issue.id)), data={"status": "resolved"}, headers=tenant.headers()
    )

    assert response.status_code == 200
    assert stored(database, issue.id).status == "resolved"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"status": "archived"}, invalid('"archived" is not a valid choice.', "status", code="invalid_choice")),
        (
            {"status": "pending_release"},
            invalid('"pending_release" is not a valid choice.', "status", code="invalid_choice"),
        ),
        ({"status": "open"}, invalid('"open" is not a valid choice.', "status", code="invalid_choice")),
        ({"status": None}, invalid("This field may not be null.", "status", code="null")),
        ({"severity": "urgent"}, invalid('"urgent" is not a valid choice.', "severity", code="invalid_choice")),
        ({"name": ["x"]}, invalid("Not a valid string.", "name")),
        ({"name": "a\x00b"}, invalid("Null characters are not allowed.", "name", code="null_characters_not_allowed")),
        (
            {"description": "\x00"},
            invalid("Null characters are not allowed.", "description", code="null_characters_not_allowed"),
        ),
    ],
)
def test_invalid_updates(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, body: dict[str, Any], error: dict[str, Any]
):
    response = client.patch(url("/api/projects", tenant.project_id, str(issue.id)), json=body, headers=tenant.headers())

    assert response.status_code == 400
    assert response.json() == error
    assert stored(database, issue.id).status == "active"


def test_update_unknown_issue(client: TestClient, tenant: Tenant, other_tenant: Tenant, issue: Issue):
    for path in (
        url("/api/projects", tenant.project_id, str(uuid.uuid4())),
        url("/api/projects", tenant.project_id, "bad-id"),
        url("/api/projects", other_tenant.project_id, str(issue.id)),
    ):
        headers = other_tenant.headers() if str(other_tenant.project_id) in path.split("/") else tenant.headers()
        response = client.patch(path, json={"status": "resolved"}, headers=headers)
        assert response.status_code == 404
        assert response.json() == ISSUE_NOT_FOUND


def test_an_issue_cannot_be_deleted(client: TestClient, tenant: Tenant, database: Database, issue: Issue, prefix: str):
    response = client.delete(url(prefix, tenant.project_id, str(issue.id)), headers=tenant.headers())

    assert response.status_code == 405
    assert response.content == b""
    with database.session(write=False) as session:
        assert session.scalar(select(Issue.id).where(Issue.id == issue.id)) is not None


# --- schema ---------------------------------------------------------------------------------


def test_the_routes_are_described_under_both_prefixes(client: TestClient):
    schema = client.get("/api/schema/").json()
    paths = schema["paths"]
    operations = {op["operationId"] for item in paths.values() for op in item.values()}

    for prefix, op_prefix in (("/api/environments/{project_id}", "environments_"), ("/api/projects/{project_id}", "")):
        base = f"{prefix}/error_tracking/issues"
        assert set(paths[base]) == {"get"}
        assert set(paths[f"{base}/{{id}}"]) == {"get", "put", "patch", "delete"}
        assert "308" in paths[f"{base}/{{id}}"]["get"]["responses"]
        assert "405" in paths[f"{base}/{{id}}"]["delete"]["responses"]
        for action, method in (("merge", "post"), ("split", "post"), ("assign", "patch"), ("events", "get")):
            assert set(paths[f"{base}/{{id}}/{action}"]) == {method}
        for action, method in (("exists", "get"), ("values", "get"), ("bulk", "post")):
            assert set(paths[f"{base}/{action}"]) == {method}
        for kind in ("issues", "issue", "issue_events"):
            assert set(paths[f"{prefix}/error_tracking/query/{kind}"]) == {"post"}
        assert {
            f"{op_prefix}error_tracking_issues_list",
            f"{op_prefix}error_tracking_issues_retrieve",
            f"{op_prefix}error_tracking_issues_partial_update",
            f"{op_prefix}error_tracking_issues_merge_create",
            f"{op_prefix}error_tracking_issues_assign_partial_update",
            f"{op_prefix}error_tracking_issues_bulk_create",
            f"{op_prefix}error_tracking_query_issues_list_create",
            f"{op_prefix}error_tracking_query_issue_create",
            f"{op_prefix}error_tracking_query_issue_events_create",
        } <= operations


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("GET", "/exists", None),
        ("GET", "/values?key=name&value=x", None),
        ("GET", "/{id}", None),
        ("GET", "/{id}/events", None),
    ],
)
def test_reads_need_the_read_scope(client: TestClient, tenant: Tenant, issue: Issue, method: str, path: str, body: Any):
    full = url("/api/projects", tenant.project_id) + path.replace("{id}", str(issue.id))

    assert client.request(method, full, headers=tenant.headers("read")).status_code == 200
    assert client.request(method, full, headers=tenant.headers("write")).status_code == 200  # write covers read
    denied = client.request(method, full, headers=tenant.headers("none"))
    assert denied.status_code == 403
    assert denied.json()["detail"] == "API key missing required scope 'error_tracking:read'"
    assert client.request(method, full).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/{id}", {"status": "resolved"}),
        ("PUT", "/{id}", {"status": "resolved"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/merge", {"ids": [str(uuid.uuid4())]}),
        ("POST", "/{id}/split", {"fingerprints": []}),
        ("PATCH", "/{id}/assign", {"assignee": None}),
        ("POST", "/bulk", {"action": "set_status", "ids": [str(uuid.uuid4())], "status": "resolved"}),
    ],
)
def test_writes_need_the_write_scope(
    client: TestClient, tenant: Tenant, database: Database, issue: Issue, method: str, path: str, body: Any
):
    full = url("/api/projects", tenant.project_id) + path.replace("{id}", str(issue.id))

    denied = client.request(method, full, json=body, headers=tenant.headers("read"))

    assert denied.status_code == 403
    assert denied.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'error_tracking:write'",
        "attr": None,
    }
    assert client.request(method, full, json=body).status_code == 401
    assert stored(database, issue.id).status == "active"
    assert client.request(method, full, json=body, headers=tenant.headers("write")).status_code in (200, 404, 405)


def test_another_organizations_project_is_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, issue: Issue
):
    for method, path in (("GET", ""), ("GET", f"/{issue.id}"), ("PATCH", f"/{issue.id}"), ("GET", "/exists")):
        response = client.request(
            method, url("/api/projects", other_tenant.project_id) + path, json={}, headers=tenant.headers()
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "Not found."
