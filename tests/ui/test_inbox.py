"""The issue inbox, through real requests: filters, sorting, pages, bulk actions, bad input."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from tests.factories import Tenant, make_project, make_role, make_user
from tests.issue_data import ago, exception, fingerprints_of, make_event, make_issue
from tests.ui.conftest import csrf_of, sign_in, user_email
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.volumes import counts

# --- reading the page -----------------------------------------------------------------------


def inbox(ui: TestClient, tenant: Tenant, **params: Any) -> Response:
    return ui.get(f"/project/{tenant.project_id}/error_tracking", params=params)


def listed(page: str) -> list[str]:
    """The issue ids of the rows, in order."""
    return re.findall(r'<tr data-issue="([0-9a-f-]+)"', page)


def row_of(page: str, issue_id: object) -> str:
    found = re.search(rf'<tr data-issue="{issue_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {issue_id}"
    return found[1]


def number(page: str, issue_id: object, what: str) -> int:
    found = re.search(rf'title="(\d+) {what}s?"', row_of(page, issue_id))
    assert found, f"no {what} cell"
    return int(found[1])


def bars(page: str, issue_id: object) -> list[int]:
    svg = re.search(r"<svg class=\"spark\".*?</svg>", row_of(page, issue_id), re.S)
    assert svg, "no sparkline"
    return [int(value) for value in re.findall(r"<rect [^>]*><title>(\d+)</title></rect>", svg[0])]


def tab_count(page: str, status: str) -> int:
    found = re.search(rf'data-status="{status}"[^>]*>[^<]*<span class="count">(\d+)</span>', page)
    assert found, f"no {status} tab"
    return int(found[1])


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found[1]) if found else None


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def error_text(page: str) -> str:
    found = re.search(r'class="(?:form-error|error-detail)"[^>]*>(.*?)</p>', page, re.S)
    assert found, "no error message on the page"
    return html.unescape(found[1])


def new_issue(
    database: Database,
    tenant: Tenant,
    name: str = "TypeError",
    *,
    times: list[timedelta] | None = None,
    exceptions: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> uuid.UUID:
    """An issue with one event at each of ``times`` before now (default: one an hour ago)."""
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, name=name, **kwargs)
        for delta in times if times is not None else [timedelta(hours=1)]:
            make_event(
                session,
                tenant.project_id,
                f"fp-{issue.id}",
                timestamp=ago(seconds=delta.total_seconds()),
                exceptions=exceptions,
                commit=False,
            )
        session.commit()
        return issue.id


def hours(*values: float) -> list[timedelta]:
    return [timedelta(hours=value) for value in values]


def days(*values: float) -> list[timedelta]:
    return [timedelta(days=value) for value in values]


# --- tabs, filters, sorting -----------------------------------------------------------------


def test_tabs_list_one_status_each_and_count_the_issue_table(ui: TestClient, tenant: Tenant, database: Database):
    active = [new_issue(database, tenant, f"Active {n}") for n in range(2)]
    resolved = new_issue(database, tenant, "Resolved", status="resolved")
    legacy = new_issue(database, tenant, "Archived", status="archived")
    suppressed = new_issue(database, tenant, "Suppressed", status="suppressed")
    # Counts are all time: an issue without events in the range still counts in its tab.
    new_issue(database, tenant, "Old", times=days(40))

    page = inbox(ui, tenant)
    assert page.status_code == 200
    assert sorted(listed(page.text)) == sorted(map(str, active))
    assert 'data-status="active" aria-current="page"' in page.text
    assert [tab_count(page.text, tab) for tab in ("active", "resolved", "suppressed", "all")] == [3, 2, 1, 6]

    assert sorted(listed(inbox(ui, tenant, status="resolved").text)) == sorted(map(str, [resolved, legacy]))
    assert listed(inbox(ui, tenant, status="suppressed").text) == [str(suppressed)]
    assert len(listed(inbox(ui, tenant, status="all").text)) == 5
    assert 'data-status="all" aria-current="page"' in inbox(ui, tenant, status="all").text


def test_search_narrows_to_issues_with_matching_events(ui: TestClient, tenant: Tenant, database: Database):
    key_error = new_issue(database, tenant, "KeyError", exceptions=[exception("KeyError", "'customer'")])
    type_error = new_issue(
        database, tenant, "TypeError", exceptions=[exception("TypeError", "Cannot read properties of undefined")]
    )
    new_issue(database, tenant, "ValueError", exceptions=[exception("ValueError", "cannot parse 'abc'")])

    assert listed(inbox(ui, tenant, q="keyerror").text) == [str(key_error)]
    # A quoted phrase is one token; every token must match.
    assert listed(inbox(ui, tenant, q='"cannot read"').text) == [str(type_error)]
    assert len(listed(inbox(ui, tenant, q="cannot").text)) == 2
    assert listed(inbox(ui, tenant, q="cannot customer").text) == []
    page = inbox(ui, tenant, q="keyerror")
    assert 'value="keyerror"' in page.text  # the box keeps the search
    assert "data-search" in page.text


def test_assignee_filter_me_unassigned_a_person_and_a_role(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        colleague = make_user(session, tenant.organization_id, email="ana@example.com").id
        session.commit()
        role = make_role(session, tenant.organization_id, "Payments").id
    mine = new_issue(database, tenant, "Mine", user_id=tenant.user_id)
    theirs = new_issue(database, tenant, "Theirs", user_id=colleague)
    team = new_issue(database, tenant, "Team", role_id=role)
    nobody = new_issue(database, tenant, "Nobody")

    assert listed(inbox(ui, tenant, assignee="me").text) == [str(mine)]
    assert listed(inbox(ui, tenant, assignee="unassigned").text) == [str(nobody)]
    assert listed(inbox(ui, tenant, assignee=f"role:{role}").text) == [str(team)]
    assert listed(inbox(ui, tenant, assignee=f"user:{colleague}").text) == [str(theirs)]
    page = inbox(ui, tenant)
    assert len(listed(page.text)) == 4
    assert "assigned to Payments" in row_of(page.text, team)
    assert "assigned to ana@example.com" in row_of(page.text, theirs)
    assert "unassigned" in row_of(page.text, nobody)
    assert f'<option value="role:{role}" selected>' in inbox(ui, tenant, assignee=f"role:{role}").text


def test_the_date_range_leaves_out_issues_without_events_in_it(ui: TestClient, tenant: Tenant, database: Database):
    recent = new_issue(database, tenant, "Recent", times=hours(1))
    this_week = new_issue(database, tenant, "This week", times=days(3))
    this_month = new_issue(database, tenant, "This month", times=days(20))
    this_quarter = new_issue(database, tenant, "This quarter", times=days(60))
    long_ago = new_issue(database, tenant, "Long ago", times=days(200))

    def ids(**params: Any) -> set[str]:
        page = inbox(ui, tenant, **params)
        assert page.status_code == 200, page.text
        return set(listed(page.text))

    assert ids(date_from="-24h") == {str(recent)}
    assert ids() == {str(recent), str(this_week)}
    assert ids(date_from="-30d") == {str(recent), str(this_week), str(this_month)}
    assert ids(date_from="-90d") == {str(recent), str(this_week), str(this_month), str(this_quarter)}
    assert ids(date_from="all") == {str(recent), str(this_week), str(this_month), str(this_quarter), str(long_ago)}
    custom = {"date_from": ago(days=25).date().isoformat(), "date_to": ago(days=15).date().isoformat()}
    assert ids(**custom) == {str(this_month)}
    page = inbox(ui, tenant, **custom)
    assert "between" in page.text and '<details class="custom-range" open>' in page.text
    # An old event counts in a wide range, not in the issue's numbers for a narrow one.
    with database.session(write=True) as session:
        make_event(session, tenant.project_id, f"fp-{recent}", timestamp=ago(days=10))
    assert number(inbox(ui, tenant, date_from="-30d").text, recent, "event") == 2
    assert number(inbox(ui, tenant).text, recent, "event") == 1


@pytest.fixture
def three(database: Database, tenant: Tenant) -> dict[str, str]:
    """Three issues that every sort key orders differently."""
    with database.session(write=True) as session:
        a = make_issue(session, tenant.project_id, name="A")
        b = make_issue(session, tenant.project_id, name="B")
        c = make_issue(session, tenant.project_id, name="C", first_seen=ago(days=20))
        for n, user in enumerate(["u1", "u2", "u3"]):  # 3 events, 3 users, 1 session
            make_event(
                session, tenant.project_id, f"fp-{a.id}", timestamp=ago(hours=n + 1), distinct_id=user, session_id="s1"
            )
        for n, user in enumerate(["u1", "u2", "u1", "u2", "u1"]):  # 5 events, 2 users, 2 sessions
            make_event(
                session,
                tenant.project_id,
                f"fp-{b.id}",
                timestamp=ago(hours=10 + n),
                distinct_id=user,
                session_id=f"s{n % 2}",
            )
        make_event(session, tenant.project_id, f"fp-{c.id}", timestamp=ago(hours=30))  # 1, 1, 0
        return {"A": str(a.id), "B": str(b.id), "C": str(c.id)}


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("last_seen", "ABC"),
        ("first_seen", "CBA"),  # oldest first by default, as PostHog; C was first seen 20 days ago
        ("occurrences", "BAC"),
        ("users", "ABC"),
        ("sessions", "BAC"),
    ],
)
def test_each_sort_order_orders_both_ways(
    ui: TestClient, tenant: Tenant, three: dict[str, str], order_by: str, expected: str
):
    def order(**params: Any) -> str:
        names = {value: key for key, value in three.items()}
        return "".join(names[issue_id] for issue_id in listed(inbox(ui, tenant, order_by=order_by, **params).text))

    assert order() == expected
    flipped = "asc" if order_by != "first_seen" else "desc"
    assert order(order_direction=flipped) == expected[::-1]
    page = inbox(ui, tenant, order_by=order_by).text
    # The column header sorts the other way next.
    header = re.search(rf'href="([^"]+)" data-sort="{order_by}" aria-current="true"', page)
    assert header and query_of(html.unescape(header[1]))["order_direction"] == [flipped]


def test_rows_show_a_sparkline_with_one_bar_per_bucket(ui: TestClient, tenant: Tenant, database: Database):
    issue = new_issue(database, tenant, times=hours(1.5, 2.5, 3.5, 50))
    week = bars(inbox(ui, tenant).text, issue)
    assert len(week) == 28
    assert sum(week) == 4
    assert sum(week[-2:]) == 3  # six-hour buckets: the three recent events are in the last one or two
    day = bars(inbox(ui, tenant, date_from="-24h").text, issue)
    assert len(day) == 24 and sum(day) == 3
    assert len(bars(inbox(ui, tenant, date_from="-30d").text, issue)) == 30
    assert len(bars(inbox(ui, tenant, date_from="-90d").text, issue)) == 45
    assert len(bars(inbox(ui, tenant, date_from="all").text, issue)) == 48
    custom = bars(inbox(ui, tenant, date_from=ago(days=19).date().isoformat()).text, issue)
    assert len(custom) == 20 and sum(custom) == 4  # one a day
    page = inbox(ui, tenant).text
    assert number(page, issue, "event") == 4 and number(page, issue, "user") == 1
    assert 'aria-label="4 events in the last 7 days"' in page


def test_a_page_counts_its_quietest_issues_exactly_and_says_which_are_estimated(
    ui: TestClient, tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
):
    quiet = new_issue(database, tenant, "QuietError", times=hours(1))
    calm = new_issue(database, tenant, "CalmError", times=hours(1, 2))
    busy = new_issue(database, tenant, "BusyError", times=hours(1, 2, 3, 4, 5))
    page = inbox(ui, tenant).text
    assert "data-estimated-note" not in page and "≈" not in page
    monkeypatch.setattr(counts, "EXACT_DISTINCT_LIMIT", 3)  # room for the quiet and the calm one
    page = inbox(ui, tenant).text
    assert number(page, quiet, "user") == 1 and number(page, calm, "user") == 1
    assert re.search(r'title="about 1 user">≈1<', row_of(page, busy))
    assert "≈" not in row_of(page, quiet) + row_of(page, calm)
    assert "A page counts at most 3 events exactly" in page


def test_pages_of_the_list_keep_the_filters(ui: TestClient, tenant: Tenant, database: Database):
    ids = [str(new_issue(database, tenant, f"Issue {n}", times=hours(n + 1))) for n in range(5)]
    new_issue(database, tenant, "Not matching", exceptions=[exception("KeyError", "x")])
    first = inbox(ui, tenant, q="typeerror", status="all", limit=2)
    assert listed(first.text) == ids[:2]
    assert "1–2 of many" in first.text
    assert link(first.text, "prev") is None
    next_url = link(first.text, "next")
    assert next_url is not None
    assert query_of(next_url) == {"q": ["typeerror"], "status": ["all"], "limit": ["2"], "offset": ["2"]}

    second = ui.get(next_url)
    assert listed(second.text) == ids[2:4]
    assert "3–4 of many" in second.text
    prev_url = link(second.text, "prev")
    assert prev_url is not None and query_of(prev_url) == {"q": ["typeerror"], "status": ["all"], "limit": ["2"]}
    assert listed(ui.get(prev_url).text) == ids[:2]

    last_url = link(second.text, "next")
    assert last_url is not None
    last = ui.get(last_url)
    assert listed(last.text) == ids[4:]
    assert "5–5 of 5" in last.text
    assert link(last.text, "next") is None
    # Past the end: said in words, with the way back.
    beyond = inbox(ui, tenant, q="typeerror", offset=50)
    assert beyond.status_code == 200 and "No more issues" in beyond.text
    # A page size over the largest is cut to it.
    assert "<strong>100</strong>" in inbox(ui, tenant, limit=1000).text


def test_empty_states_say_what_is_empty(ui: TestClient, tenant: Tenant, database: Database):
    page = inbox(ui, tenant)
    assert "No active issues in the last 7 days." in page.text
    assert "Set up an SDK" in page.text
    new_issue(database, tenant, times=days(20))
    assert "No active issues in the last 7 days." in inbox(ui, tenant).text
    assert "Look at all time" in inbox(ui, tenant).text
    filtered = inbox(ui, tenant, q="nothing-like-this", date_from="-24h", status="resolved")
    assert "No resolved issues in the last 24 hours matching these filters." in filtered.text
    assert "Clear the filters" in filtered.text
    assert "No issues." in inbox(ui, tenant, status="all", date_from="all", assignee="me").text.replace(
        " matching these filters", ""
    )


# --- bulk actions ---------------------------------------------------------------------------


def post_bulk(ui: TestClient, tenant: Tenant, data: dict[str, Any], query: str = "", csrf: bool = True) -> Response:
    url = f"/project/{tenant.project_id}/error_tracking" + (f"?{query}" if query else "")
    if csrf:
        data = {**data, "csrf_token": csrf_of(ui.get(url).text)}
    return ui.post(url, data=data, follow_redirects=False)


def statuses(database: Database, ids: list[uuid.UUID]) -> list[str]:
    with database.session(write=False) as session:
        found = {row.id: row.status for row in session.execute(select(Issue.id, Issue.status).where(Issue.id.in_(ids)))}
        return [found[issue_id] for issue_id in ids]


@pytest.mark.parametrize(
    ("action", "before", "after", "words"),
    [
        ("resolve", "active", "resolved", "resolved"),
        ("suppress", "active", "suppressed", "suppressed"),
        ("activate", "resolved", "active", "reopened"),
    ],
)
def test_bulk_status_changes_the_selected_issues_and_returns_to_the_view(
    ui: TestClient, tenant: Tenant, database: Database, action: str, before: str, after: str, words: str
):
    ids = [new_issue(database, tenant, f"Issue {n}", status=before) for n in range(3)]
    query = f"status={before}&q=typeerror&date_from=-30d"
    answer = post_bulk(ui, tenant, {"action": action, "ids": [str(ids[0]), str(ids[1])]}, query)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/project/{tenant.project_id}/error_tracking?{query}"
    assert statuses(database, ids) == [after, after, before]
    shown = ui.get(answer.headers["location"])
    assert f"2 issues {words}." in shown.text
    assert listed(shown.text) == [str(ids[2])]
    # Again with one already done: said so.
    again = post_bulk(ui, tenant, {"action": action, "ids": [str(ids[1]), str(ids[2])]})
    assert "1 issue " + words + ". 1 issue already was." in ui.get(again.headers["location"]).text


def assignment(database: Database, issue_id: uuid.UUID) -> tuple[int | None, uuid.UUID | None] | None:
    with database.session(write=False) as session:
        row = session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id == issue_id))
        return None if row is None else (row.user_id, row.role_id)


def test_bulk_assign_to_people_and_roles_and_unassign(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        colleague = make_user(session, tenant.organization_id, email="ana@example.com").id
        session.commit()
        role = make_role(session, tenant.organization_id, "Payments").id
    ids = [new_issue(database, tenant, f"Issue {n}") for n in range(2)]
    selected = [str(issue_id) for issue_id in ids]

    answer = post_bulk(ui, tenant, {"action": "assign", "ids": selected, "assign_to": f"role:{role}"})
    assert answer.status_code == 303
    assert [assignment(database, issue_id) for issue_id in ids] == [(None, role), (None, role)]
    assert "2 issues assigned to Payments." in ui.get(answer.headers["location"]).text

    post_bulk(ui, tenant, {"action": "assign", "ids": selected[:1], "assign_to": f"user:{colleague}"})
    assert assignment(database, ids[0]) == (colleague, None)
    answer = post_bulk(ui, tenant, {"action": "assign", "ids": selected[1:], "assign_to": "me"})
    assert assignment(database, ids[1]) == (tenant.user_id, None)
    assert listed(inbox(ui, tenant, assignee="me").text) == [selected[1]]

    answer = post_bulk(ui, tenant, {"action": "assign", "ids": selected, "assign_to": "unassigned"})
    assert [assignment(database, issue_id) for issue_id in ids] == [None, None]
    assert "2 issues unassigned." in ui.get(answer.headers["location"]).text


def test_bulk_merge_keeps_the_chosen_issue_with_every_event(ui: TestClient, tenant: Tenant, database: Database):
    first = new_issue(database, tenant, "First", times=hours(1, 2))
    kept = new_issue(database, tenant, "Kept", times=hours(3, 4, 5))
    other = new_issue(database, tenant, "Other", times=hours(6))
    with database.session(write=False) as session:
        first_fingerprints = fingerprints_of(session, first)

    answer = post_bulk(ui, tenant, {"action": "merge", "ids": [str(first), str(kept)], "primary": str(kept)})
    assert answer.status_code == 303
    shown = ui.get(answer.headers["location"])
    assert "1 issue merged into “Kept”." in shown.text
    assert set(listed(shown.text)) == {str(kept), str(other)}
    assert number(shown.text, kept, "event") == 5
    with database.session(write=False) as session:
        assert session.get(Issue, first) is None
        assert set(first_fingerprints) <= set(fingerprints_of(session, kept))
        events = session.scalar(
            select(func.count())
            .select_from(ExceptionEvent)
            .join(IssueFingerprint, IssueFingerprint.fingerprint == ExceptionEvent.fingerprint)
            .where(IssueFingerprint.issue_id == kept)
        )
        assert events == 5


def test_bulk_merge_keeps_the_first_selected_when_none_is_chosen(ui: TestClient, tenant: Tenant, database: Database):
    ids = [new_issue(database, tenant, f"Ошибка {n}", times=hours(n + 1)) for n in range(3)]
    answer = post_bulk(ui, tenant, {"action": "merge", "ids": [str(ids[1]), str(ids[0]), str(ids[2])]})
    assert answer.status_code == 303
    with database.session(write=False) as session:
        assert [session.get(Issue, issue_id) is not None for issue_id in ids] == [False, True, False]
    shown = ui.get(answer.headers["location"]).text
    assert number(shown, ids[1], "event") == 3
    assert "2 issues merged into “Ошибка 1”." in shown  # names in any script survive the redirect


def test_the_issue_to_keep_joins_the_merge_even_if_not_ticked(ui: TestClient, tenant: Tenant, database: Database):
    kept, merged = new_issue(database, tenant, "Kept"), new_issue(database, tenant, "Merged")
    answer = post_bulk(ui, tenant, {"action": "merge", "ids": [str(merged)], "primary": str(kept)})
    assert answer.status_code == 303
    with database.session(write=False) as session:
        assert session.get(Issue, merged) is None and session.get(Issue, kept) is not None


def test_a_bulk_form_for_a_view_that_cannot_be_read_is_refused(ui: TestClient, tenant: Tenant, database: Database):
    issue = new_issue(database, tenant)
    answer = post_bulk(ui, tenant, {"action": "resolve", "ids": [str(issue)]}, "status=bogus")
    assert answer.status_code == 400
    assert "is not a status" in error_text(answer.text)
    assert statuses(database, [issue]) == ["active"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "resolve"}, "No issues were selected"),
        ({"action": "merge", "ids": ["{first}"]}, "at least two"),
        ({"action": "assign", "ids": ["{first}"]}, "Choose who to assign"),
        ({"action": "assign", "ids": ["{first}"], "assign_to": "user:99999"}, "does not belong to this organization"),
        ({"action": "assign", "ids": ["{first}"], "assign_to": "somebody"}, "is not an assignee"),
        ({"action": "explode", "ids": ["{first}"]}, "Choose what to do"),
        ({"ids": ["{first}"]}, "Choose what to do"),
        ({"action": "resolve", "ids": ["not-a-uuid"]}, "could not be read"),
        ({"action": "merge", "ids": ["{first}", "{elsewhere}"]}, "no longer exist"),
    ],
)
def test_bad_bulk_requests_show_the_inbox_with_the_reason(
    ui: TestClient, tenant: Tenant, database: Database, data: dict[str, Any], message: str
):
    first = new_issue(database, tenant, "First")
    with database.session(write=True) as session:
        elsewhere = make_issue(session, make_project(session, tenant.organization_id).id).id
    filled = {
        key: [item.format(first=first, elsewhere=elsewhere) for item in value] if isinstance(value, list) else value
        for key, value in data.items()
    }
    answer = post_bulk(ui, tenant, filled, "q=typeerror")
    assert answer.status_code == 400
    assert message in error_text(answer.text)
    assert "data-inbox-rows" in answer.text  # the inbox itself, to try again from
    if "ids" in data and data["ids"] == ["{first}"]:
        assert f'value="{first}" aria-label="Select First" checked' in answer.text  # still ticked
    assert statuses(database, [first]) == ["active"]
    assert assignment(database, first) is None
    with database.session(write=False) as session:
        assert session.get(Issue, elsewhere) is not None


def test_a_bulk_form_without_its_csrf_token_is_refused(ui: TestClient, tenant: Tenant, database: Database):
    issue = new_issue(database, tenant)
    answer = post_bulk(ui, tenant, {"action": "resolve", "ids": [str(issue)]}, csrf=False)
    assert answer.status_code == 403
    assert "Reload the page" in answer.text
    forged = post_bulk(ui, tenant, {"action": "resolve", "ids": [str(issue)], "csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 403
    assert statuses(database, [issue]) == ["active"]


# --- bad input, strangers, no JavaScript ------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"status": "bogus"}, "is not a status"),
        ({"order_by": "bogus"}, "is not a sort order"),
        ({"order_direction": "sideways"}, "is not a sort direction"),
        ({"date_from": "garbage"}, "start of the date range"),
        ({"date_to": "2024-13-45"}, "end of the date range"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "must not be after"),
        ({"limit": "-1"}, "page size (limit) must be 1 or more"),
        ({"limit": "ten"}, "must be a whole number"),
        ({"offset": "-5"}, "offset must be from 0"),
        ({"assignee": "bogus"}, "is not an assignee"),
        ({"assignee": "user:99999"}, "no such user"),
        ({"assignee": f"role:{uuid.uuid4()}"}, "no such role"),
        ({"q": "x " * 101}, "Too many search tokens"),
    ],
)
def test_bad_parameters_are_a_400_page_in_words(ui: TestClient, tenant: Tenant, params: dict[str, str], words: str):
    answer = inbox(ui, tenant, **params)
    assert answer.status_code == 400
    assert "<html" in answer.text
    assert words in error_text(answer.text)
    assert "Traceback" not in answer.text


def test_people_of_another_organization_get_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    issue = new_issue(database, tenant)
    sign_in(client, user_email(database, other_tenant.user_id))
    assert client.get(f"/project/{tenant.project_id}/error_tracking").status_code == 404
    token = csrf_of(client.get(f"/project/{other_tenant.project_id}/error_tracking").text)
    answer = client.post(
        f"/project/{tenant.project_id}/error_tracking",
        data={"action": "resolve", "ids": [str(issue)], "csrf_token": token},
    )
    assert answer.status_code == 404
    assert statuses(database, [issue]) == ["active"]


def test_the_page_is_complete_without_javascript(ui: TestClient, tenant: Tenant, database: Database):
    issue = new_issue(database, tenant, "TypeError", description="Cannot read properties of undefined")
    page = inbox(ui, tenant).text
    # Scripts are files that add keys; nothing is written into the page by them.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert " on" not in re.sub(r"<[^>]*>", lambda tag: "" if not re.search(r"\son\w+=", tag[0]) else " on", page)
    assert f'<a href="/project/{tenant.project_id}/error_tracking/{issue}" data-open>TypeError</a>' in page
    assert "Cannot read properties of undefined" in row_of(page, issue)
    assert f'<form method="post" action="/project/{tenant.project_id}/error_tracking" class="bulk"' in page
    assert '<form class="filters" method="get"' in page
    assert 'type="submit" name="action" value="resolve"' in page
    assert ui.get("/assets/inbox.js").status_code == 200
    assert ui.get("/assets/inbox.css").status_code == 200
