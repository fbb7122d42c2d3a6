"""The issue page, through real requests: an event's stack traces, stepping through events,
numbers and chart, properties, fingerprints, and the status, assignee and split forms."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from tests.capture import exception as raw_exception
from tests.capture import exception_event, post_batch, python_frame
from tests.factories import Tenant, make_role, make_user
from tests.issue_data import ago, exception, fingerprints_of, frame, make_event, make_issue
from tests.ui.conftest import csrf_of
from trapline.db.engine import Database
from trapline.errors import InvalidInput
from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue, IssueAssignment
from trapline.issues.queries import VolumeBucket
from trapline.issues.service import merge_issues
from trapline.symbols.resolver import SymbolResolver
from trapline.ui.issue_page import chart_range, event_facts, split_refusal, volume_chart
from trapline.worker import Worker

# --- reading the page -----------------------------------------------------------------------


def page_url(tenant: Tenant, issue_id: object) -> str:
    return f"/project/{tenant.project_id}/error_tracking/{issue_id}"


def open_issue(ui: TestClient, tenant: Tenant, issue_id: object, **params: Any) -> Response:
    return ui.get(page_url(tenant, issue_id), params=params)


def text(fragment: str) -> str:
    """What a reader sees of some HTML: tags dropped, entities decoded, spaces collapsed."""
    spaced = re.sub(_BLOCK, " ", fragment)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", spaced)).split())


_BLOCK = re.compile(r"</?(?:p|div|li|ul|ol|tr|td|th|dt|dd|h[1-6]|br|table|section|article|summary|details|pre)\b[^>]*>")


def exceptions_of(page: str) -> list[str]:
    return re.findall(r'<article class="exception" id="exception-\d+">(.*?)</article>', page, re.S)


def frames_of(fragment: str) -> list[tuple[str, str]]:
    """(classes, html) of each frame shown, in page order."""
    return re.findall(r'<li class="frame ([^"]*)" data-frame="\d+">(.*?)</li>', fragment, re.S)


def frame_named(fragment: str, name: str) -> tuple[str, str]:
    for classes, body in frames_of(fragment):
        if re.search(rf'<span class="fn">{re.escape(name)}</span>', body):
            return classes, body
    raise AssertionError(f"no frame {name!r} on the page")


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section class="[^"]*" id="{section_id}"[^>]*>(.*?)</section>', page, re.S)
    assert found, f"no section {section_id}"
    return found[1]


def facts(page: str) -> dict[str, str]:
    event = section(page, "event")
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", event, re.S)
    return {text(key): text(value) for key, value in pairs}


def link(page: str, label: str) -> str | None:
    """The href of the link whose text starts with ``label``, if there is one."""
    for href, body in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', page, re.S):
        if text(body).startswith(label):
            return html.unescape(href)
    return None


def post_form(ui: TestClient, tenant: Tenant, issue_id: object, action: str, **fields: str) -> Response:
    token = csrf_of(open_issue(ui, tenant, issue_id).text)
    return ui.post(
        f"{page_url(tenant, issue_id)}/{action}", data={"csrf_token": token, **fields}, follow_redirects=False
    )


def issue_of(database: Database, issue_id: object) -> Issue:
    with database.session(write=False) as session:
        issue = session.get(Issue, uuid.UUID(str(issue_id)))
        assert issue is not None
        return issue


# --- events through the real pipeline -------------------------------------------------------


def process(ui: TestClient, database: Database, tenant: Tenant, *events: dict[str, Any]) -> list[ExceptionEvent]:
    """Send events as posthog-python does and process them as a worker of `trapline serve`
    does (with the symbol resolver, which stores every frame's context)."""
    assert post_batch(ui, tenant.project_token, *events).status_code == 200
    Worker(database, resolver=SymbolResolver(database, ui.app.state.objects)).drain()  # type: ignore[attr-defined]
    with database.session(write=False) as session:
        return list(session.scalars(select(ExceptionEvent).order_by(ExceptionEvent.timestamp, ExceptionEvent.id)))


def chained_event(**properties: Any) -> dict[str, Any]:
    cause = raw_exception(
        "KeyError",
        "'sku'",
        [
            python_frame(
                "lookup_price",
                filename="app/prices.py",
                lineno=42,
                pre_context=["def lookup_price(sku):", "    table = load_table()"],
                post_context=["    return price"],
                code_variables={"sku": "'X-1'", "table": {"size": 3}},
            )
        ],
    )
    cause["mechanism"] = {"type": "generic", "handled": True, "source": "cause"}
    outer = raw_exception(
        "ValueError",
        "bad order",
        [
            python_frame("dispatch", filename="lib/framework.py", lineno=7, in_app=False),
            python_frame("handle_order", filename="app/orders.py", lineno=12),
        ],
    )
    return exception_event(outer, cause, **properties)


@pytest.fixture
def pipeline_event(ui: TestClient, database: Database, tenant: Tenant) -> ExceptionEvent:
    [event] = process(
        ui,
        database,
        tenant,
        chained_event(
            **{
                "$current_url": "https://shop.example/checkout?step=2",
                "$browser": "Firefox",
                "$browser_version": 131,
                "$os": "Linux",
                "$session_id": "session-abc",
                "$app_version": "2.4.1",
                "plan": {"tier": "pro", "seats": 5},
            }
        ),
    )
    return event


def test_a_real_event_shows_its_frames_resolved_with_context_and_variables(
    ui: TestClient, tenant: Tenant, pipeline_event: ExceptionEvent
):
    answer = open_issue(ui, tenant, pipeline_event.issue_id)
    assert answer.status_code == 200
    page = answer.text
    outer, cause = exceptions_of(page)

    classes, body = frame_named(outer, "handle_order")
    assert "inapp" in classes.split()
    assert "app/orders.py:12" in text(body)
    assert "app.orders" in text(body)  # the module
    # Context lines come from the stack_frame table: the frame's own line is the current one.
    assert re.search(r'<tr class="current"><td class="ln">12</td><td class="src">    handle_order\(\)</td>', body)

    classes, body = frame_named(cause, "lookup_price")
    assert "inapp" in classes.split()
    lines = re.findall(r'<td class="ln">(\d+)</td><td class="src">(.*?)</td>', body)
    assert [(int(n), html.unescape(src)) for n, src in lines] == [
        (40, "def lookup_price(sku):"),
        (41, "    table = load_table()"),
        (42, "    lookup_price()"),
        (43, "    return price"),
    ]
    variables = dict(re.findall(r'<tr><td class="mono">(.*?)</td><td class="src">(.*?)</td></tr>', body, re.S))
    assert html.unescape(variables["sku"]) == "'X-1'"
    assert '"size": 3' in html.unescape(variables["table"])


def test_library_frames_are_hidden_until_asked_for(ui: TestClient, tenant: Tenant, pipeline_event: ExceptionEvent):
    page = open_issue(ui, tenant, pipeline_event.issue_id).text
    outer = exceptions_of(page)[0]
    assert [f for f in frames_of(outer) if "dispatch" in f[1]] == []
    assert "1 library frame hidden" in text(outer)

    everything = exceptions_of(open_issue(ui, tenant, pipeline_event.issue_id, frames="all").text)[0]
    names = [re.search(r'<span class="fn">(.*?)</span>', body)[1] for _, body in frames_of(everything)]  # type: ignore[index]
    assert names == ["dispatch", "handle_order"]  # as stored: the oldest call first
    assert "vendor" in frame_named(everything, "dispatch")[0].split()

    reversed_ = exceptions_of(open_issue(ui, tenant, pipeline_event.issue_id, frames="all", order="newest").text)[0]
    names = [re.search(r'<span class="fn">(.*?)</span>', body)[1] for _, body in frames_of(reversed_)]  # type: ignore[index]
    assert names == ["handle_order", "dispatch"]


def test_a_chained_exception_shows_both_in_stored_order(ui: TestClient, tenant: Tenant, pipeline_event: ExceptionEvent):
    page = open_issue(ui, tenant, pipeline_event.issue_id).text
    outer, cause = exceptions_of(page)
    assert text(outer).startswith("ValueError: bad order")
    assert "Caused by" not in text(outer)
    assert text(cause).startswith("Caused by KeyError: 'sku'")
    assert "handled" in text(cause)


def test_the_properties_show_url_browser_os_library_and_release(
    ui: TestClient, tenant: Tenant, pipeline_event: ExceptionEvent
):
    page = open_issue(ui, tenant, pipeline_event.issue_id).text
    shown = facts(page)
    assert shown["URL"] == "https://shop.example/checkout?step=2"
    assert shown["Browser"] == "Firefox 131"
    assert shown["OS"] == "Linux"
    assert shown["Library"] == "posthog-python 7.91.1"
    assert shown["Release"] == "2.4.1"
    assert shown["Distinct id"] == "user-1"
    assert shown["Session"] == "session-abc"
    table = re.search(r'<table class="grid props">(.*?)</table>', page, re.S)
    assert table
    rows = dict(re.findall(r'<td class="mono key">(.*?)</td><td>(.*?)</td>', table[1], re.S))
    assert '"seats": 5' in html.unescape(rows["plan"])  # nested values as JSON
    assert "$exception_fingerprint" in rows


def test_the_fingerprint_record_says_what_was_hashed(ui: TestClient, tenant: Tenant, pipeline_event: ExceptionEvent):
    page = open_issue(ui, tenant, pipeline_event.issue_id).text
    fingerprints = text(section(page, "fingerprints"))
    assert "ValueError — type" in fingerprints
    assert "handle_order in app/orders.py — file, module, function" in fingerprints
    assert "lookup_price in app/prices.py — file, module, function" in fingerprints
    # The frames the fingerprint came from are marked in the stack trace too.
    assert "fingerprint" in text(frame_named(exceptions_of(page)[0], "handle_order")[1])


def test_release_names_come_from_symbol_sets_first():
    properties = {
        "$exception_releases": {"abc": {"project": "shop", "version": "1.2.3"}},
        "$app_version": "ignored",
        "$lib": "web",
        "$lib_version": "1.449.2",
        "$os": "Mac OS X",
        "$os_version": "14.5",
    }
    assert dict(event_facts(properties)) == {"Release": "shop 1.2.3", "Library": "web 1.449.2", "OS": "Mac OS X 14.5"}
    assert event_facts({}) == []


# --- frames that did not resolve ------------------------------------------------------------

FAILURE = "No sourcemap uploaded for chunk id: 0de4d024-c159-4f6d-b15a-cc4ef7a6856d"


def test_an_unresolved_js_frame_shows_why(ui: TestClient, tenant: Tenant, database: Database):
    minified = frame("Kt", "https://shop.example/assets/index-Bx3k2.js", line=1, column=48213)
    minified.update(resolved=False, resolve_failure=FAILURE)
    raw = {"platform": "web:javascript", "filename": minified["source"], "function": "Kt", "lineno": 1, "colno": 48213}
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-js"])
        event = make_event(
            session,
            tenant.project_id,
            "fp-js",
            exceptions=[exception("TypeError", "x is undefined", [frame("main", "src/main.js"), minified])],
        )
        # Minified and unmapped: cymbal gives such a frame no resolved name.
        stack = event.properties["$exception_list"][0]["stacktrace"]["frames"]
        stack[1] = {key: value for key, value in minified.items() if key != "resolved_name"}
        event.properties = {**event.properties}
        event.unresolved_frames = {minified["raw_id"]: raw}
        session.commit()
    page = open_issue(ui, tenant, issue.id).text
    classes, body = frame_named(page, "Kt")
    assert "unresolved" in classes.split()
    assert f"Not resolved: {FAILURE}" in text(body)
    assert "index-Bx3k2.js:1:48213" in text(body)
    assert "Raw frame, as the SDK sent it" in text(body)  # what `trapline reprocess` will use
    assert "1 frame could not be resolved" in text(page)
    # A resolved frame next to it says nothing of the kind.
    assert "Not resolved" not in text(frame_named(page, "main")[1])


def test_a_frame_without_a_stored_context_uses_the_raw_frame_the_event_kept(
    ui: TestClient, tenant: Tenant, database: Database
):
    node = frame("render", "server/render.js", line=8, column=3)
    node.update(resolved=False, resolve_failure="Invalid source map: bad mappings")
    raw = {
        "platform": "node:javascript",
        "filename": "server/render.js",
        "function": "render",
        "lineno": 8,
        "colno": 3,
        "context_line": "  return template(data)",
        "pre_context": ["function render(data) {"],
        "post_context": ["}"],
        "chunk_id": "chunk-1",
    }
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-node"])
        event = make_event(session, tenant.project_id, "fp-node", exceptions=[exception("Error", "x", [node])])
        event.unresolved_frames = {node["raw_id"]: raw}
        session.commit()
    body = frame_named(open_issue(ui, tenant, issue.id).text, "render")[1]
    lines = re.findall(r'<td class="ln">(\d+)</td><td class="src">(.*?)</td>', body)
    assert [int(n) for n, _ in lines] == [7, 8, 9]
    assert html.unescape(lines[1][1]) == "  return template(data)"


def test_odd_stored_events_still_render(ui: TestClient, tenant: Tenant, database: Database):
    weird = [
        {"type": 5, "value": None, "stacktrace": {"type": "resolved", "frames": [{"in_app": "yes"}, "not a frame"]}},
        "not an exception",
        {"type": "RawError", "value": "v", "stacktrace": {"type": "raw", "frames": [{"platform": "python"}]}},
    ]
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-weird"])
        make_event(session, tenant.project_id, "fp-weird", exceptions=[exception()])
        event = session.scalars(select(ExceptionEvent)).one()
        event.properties = {**event.properties, "$exception_list": weird, "$cymbal_errors": ["Invalid properties: x"]}
        session.commit()
    answer = open_issue(ui, tenant, issue.id, frames="all")
    assert answer.status_code == 200
    assert "Processing problems: Invalid properties: x" in text(answer.text)
    assert "This stack was not resolved." in text(answer.text)


# --- stepping through events ----------------------------------------------------------------


@pytest.fixture
def three_events(database: Database, tenant: Tenant) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An issue with two fingerprints and three events; their uuids newest first."""
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a", "fp-b"])
        oldest = make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=3), distinct_id="u-old")
        middle = make_event(session, tenant.project_id, "fp-b", timestamp=ago(hours=2), distinct_id="u-mid")
        newest = make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=1), distinct_id="u-new")
        return issue.id, [newest.uuid, middle.uuid, oldest.uuid]


def test_newer_and_older_links_step_through_events_and_stop_at_the_ends(
    ui: TestClient, tenant: Tenant, three_events: tuple[uuid.UUID, list[uuid.UUID]]
):
    issue_id, (newest, middle, oldest) = three_events
    page = open_issue(ui, tenant, issue_id).text
    assert "Event 1 of 3" in text(page)
    assert facts(page)["Distinct id"] == "u-new"
    assert link(page, "‹ Newer") is None and link(page, "« Newest") is None
    older = link(page, "Older")
    assert older is not None and f"event={middle}" in older
    assert 'data-key="j"' in page  # the keyboard's way to the same link

    page = ui.get(older).text
    assert "Event 2 of 3" in text(page)
    assert facts(page)["Distinct id"] == "u-mid"
    assert f"event={newest}" in (link(page, "‹ Newer") or "")
    older = link(page, "Older")
    assert older is not None and f"event={oldest}" in older

    page = ui.get(older).text
    assert "Event 3 of 3" in text(page)
    assert facts(page)["Distinct id"] == "u-old"
    assert link(page, "Older") is None and link(page, "Oldest") is None
    assert f"event={newest}" in (link(page, "« Newest") or "")


def test_events_at_the_same_moment_are_stepped_through_one_by_one(ui: TestClient, tenant: Tenant, database: Database):
    moment = ago(hours=1)
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a", "fp-b"])
        for n, fingerprint in enumerate(["fp-a", "fp-b", "fp-a", "fp-b"]):
            make_event(session, tenant.project_id, fingerprint, timestamp=moment, distinct_id=f"u{n}")
    seen, url = [], page_url(tenant, issue.id)
    for _ in range(5):
        page = ui.get(url).text
        seen.append(facts(page)["Distinct id"])
        following = link(page, "Older")
        if following is None:
            break
        url = following
    assert seen == ["u3", "u2", "u1", "u0"]  # ties by arrival, newest first; each exactly once


def test_a_bad_or_foreign_event_id_is_a_page_in_words(
    ui: TestClient, tenant: Tenant, database: Database, three_events: tuple[uuid.UUID, list[uuid.UUID]]
):
    issue_id, _ = three_events
    answer = open_issue(ui, tenant, issue_id, event="not-a-uuid")
    assert answer.status_code == 400
    assert "is not an event id" in text(answer.text)

    with database.session(write=True) as session:
        other = make_issue(session, tenant.project_id, ["fp-other"])
        elsewhere = make_event(session, tenant.project_id, "fp-other")
    for event_id in (uuid.uuid4(), elsewhere.uuid):
        answer = open_issue(ui, tenant, issue_id, event=str(event_id))
        assert answer.status_code == 404
        assert "not one of this issue's events" in text(answer.text)
    assert open_issue(ui, tenant, other.id, event=str(elsewhere.uuid)).status_code == 200


def test_unknown_malformed_and_foreign_issues_are_not_found(
    ui: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        theirs = make_issue(session, other_tenant.project_id, ["fp-theirs"])
    for issue_id in (uuid.uuid4(), "not-a-uuid", theirs.id):
        answer = open_issue(ui, tenant, issue_id)
        assert answer.status_code == 404, issue_id
        assert "no such issue" in text(answer.text)
    answer = ui.get(f"/project/{other_tenant.project_id}/error_tracking/{theirs.id}")
    assert answer.status_code == 404
    assert "not a member" in text(answer.text)


def test_an_issue_without_events_says_so(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-empty"])
    answer = open_issue(ui, tenant, issue.id)
    assert answer.status_code == 200
    assert "This issue has no stored events." in text(answer.text)


# --- numbers and the chart ------------------------------------------------------------------


def test_all_time_numbers_and_range_numbers(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a", "fp-b"])
        two, three = ago(hours=2), ago(hours=3)
        make_event(session, tenant.project_id, "fp-a", timestamp=two, distinct_id="a", session_id="s1")
        make_event(session, tenant.project_id, "fp-b", timestamp=three, distinct_id="b", session_id="s1")
        make_event(session, tenant.project_id, "fp-b", timestamp=ago(days=20), distinct_id="c", session_id="s2")
    # The chart's bars are UTC days: between 02:00 and 03:00 the two recent events fall on two.
    busiest = 2 if two.date() == three.date() else 1

    def numbers(page: str) -> dict[str, str]:
        block = re.search(r'<dl class="numbers">(.*?)</dl>', page, re.S)
        assert block
        return {text(k): text(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", block[1], re.S)}

    week = open_issue(ui, tenant, issue.id).text
    assert numbers(week) == {
        "Occurrences": "3",
        "First seen": "20 days ago",
        "Last seen": "2 hours ago",
        "Events": "2",
        "Users": "2",
        "Sessions": "1",
    }
    assert f'aria-label="2 events; at most {busiest} in one day"' in week
    month = open_issue(ui, tenant, issue.id, date_from="-30d").text
    assert numbers(month)["Events"] == "3" and numbers(month)["Users"] == "3" and numbers(month)["Sessions"] == "2"
    assert f'aria-label="3 events; at most {busiest} in one day"' in month
    assert len(re.findall(r'<rect class="bar', month)) == 30

    answer = open_issue(ui, tenant, issue.id, date_from="-5y")
    assert answer.status_code == 400
    assert "Unknown range" in text(answer.text)


def test_chart_ranges_are_aligned_to_hours_and_days():
    now = datetime(2026, 3, 10, 15, 42, 7, tzinfo=UTC)
    day_range, bounds = chart_range("-7d", now)
    assert bounds[0] == datetime(2026, 3, 4, tzinfo=UTC) and bounds[-1] == datetime(2026, 3, 11, tzinfo=UTC)
    assert len(bounds) == 8 and day_range.start == bounds[0] and day_range.end == bounds[-1]
    _, hours = chart_range("-24h", now)
    assert hours[0] == datetime(2026, 3, 9, 16, tzinfo=UTC) and hours[-1] == datetime(2026, 3, 10, 16, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        chart_range("all", now)


def test_the_chart_has_one_bar_per_bucket_with_its_count():
    buckets = [VolumeBucket(datetime(2026, 3, d, tzinfo=UTC), v) for d, v in ((1, 0), (2, 5), (3, 1))]
    svg = str(volume_chart(buckets, hourly=False))
    assert svg.count("<rect") == 3
    assert "2026-03-02 00:00 UTC: 5 events" in svg and "2026-03-03 00:00 UTC: 1 event<" in svg
    assert ">Mar 01<" in svg and ">Mar 03<" in svg and ">5<" in svg
    assert 'class="bar empty"' in svg
    assert "<rect" not in str(volume_chart([], hourly=True))


# --- status ---------------------------------------------------------------------------------


def test_resolve_suppress_and_reopen(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-s"])
        make_event(session, tenant.project_id, "fp-s")
    for status, notice in (
        ("resolved", "The issue was resolved."),
        ("suppressed", "The issue was suppressed."),
        ("active", "The issue was reopened."),
    ):
        answer = post_form(ui, tenant, issue.id, "status", status=status)
        assert answer.status_code == 303
        assert answer.headers["location"] == page_url(tenant, issue.id)
        assert issue_of(database, issue.id).status == status
        assert issue_of(database, issue.id).state_updated_at is not None
        shown = ui.get(answer.headers["location"]).text
        assert notice in text(shown)
        assert f'<span class="badge {status}">{status}</span>' in shown
    again = post_form(ui, tenant, issue.id, "status", status="active")
    assert "already reopened" in text(ui.get(again.headers["location"]).text)


def test_bad_status_and_forms_without_a_token_are_refused(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-s"])
    answer = post_form(ui, tenant, issue.id, "status", status="archived")
    assert answer.status_code == 400
    assert "Choose resolve, suppress or reopen" in text(answer.text)
    for action, fields in (("status", {"status": "resolved"}), ("assign", {"assignee": ""}), ("split", {})):
        answer = ui.post(f"{page_url(tenant, issue.id)}/{action}", data=fields, follow_redirects=False)
        assert answer.status_code == 403
        assert "expired or came from elsewhere" in text(answer.text)
    assert issue_of(database, issue.id).status == "active"


# --- assignee -------------------------------------------------------------------------------


def assignment(database: Database, issue_id: uuid.UUID) -> tuple[int | None, uuid.UUID | None] | None:
    with database.session(write=False) as session:
        row = session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id == issue_id))
        return None if row is None else (row.user_id, row.role_id)


def test_assign_to_a_person_or_a_role_and_unassign(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a"])
        colleague = make_user(session, tenant.organization_id, email="dana@example.com")
        session.commit()
        colleague_id = colleague.id
        role = make_role(session, tenant.organization_id, name="Payments team")
    page = open_issue(ui, tenant, issue.id).text
    assert f'<option value="user:{colleague_id}" >dana@example.com</option>' in page
    assert f'<option value="role:{role.id}" >Payments team</option>' in page

    answer = post_form(ui, tenant, issue.id, "assign", assignee=f"user:{colleague_id}")
    assert answer.status_code == 303
    assert assignment(database, issue.id) == (colleague_id, None)
    shown = ui.get(answer.headers["location"]).text
    assert "The issue is now assigned to dana@example.com." in text(shown)
    assert f'<option value="user:{colleague_id}" selected>' in shown

    post_form(ui, tenant, issue.id, "assign", assignee=f"role:{role.id}")
    assert assignment(database, issue.id) == (None, role.id)
    with database.session(write=True) as session:
        team = make_role(session, tenant.organization_id, name="決済チーム")
    answer = post_form(ui, tenant, issue.id, "assign", assignee=f"role:{team.id}")
    assert assignment(database, issue.id) == (None, team.id)
    # The notice cookie cannot carry the name; the page shows it in the select instead.
    shown = ui.get(answer.headers["location"]).text
    assert "now assigned to 決済チーム" in text(shown)
    assert f'<option value="role:{team.id}" selected>決済チーム</option>' in shown
    answer = post_form(ui, tenant, issue.id, "assign", assignee="")
    assert assignment(database, issue.id) is None
    assert "now unassigned" in text(ui.get(answer.headers["location"]).text)


def test_an_assignee_from_elsewhere_or_garbled_is_refused_in_words(
    ui: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a"])
        stranger_role = make_role(session, other_tenant.organization_id, name="Theirs")
    cases = {
        f"user:{other_tenant.user_id}": "Assignee user does not belong to this organization.",
        f"role:{stranger_role.id}": "Assignee role does not belong to this organization.",
        "user:abc": "“user:abc” is not an assignee: choose a person or a role from the list.",
        "team:1": "“team:1” is not an assignee: choose a person or a role from the list.",
        "user:99999999999": "is not an assignee",
    }
    for value, words in cases.items():
        answer = post_form(ui, tenant, issue.id, "assign", assignee=value)
        assert answer.status_code == 400, value
        assert words in text(answer.text)
    assert assignment(database, issue.id) is None


# --- fingerprints and splitting -------------------------------------------------------------


def test_split_moves_a_fingerprint_and_its_events_into_a_new_issue(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-keep", "fp-move"], name="Mixed bag")
        make_event(session, tenant.project_id, "fp-keep", timestamp=ago(hours=1))
        for hours in (2, 3):
            make_event(
                session,
                tenant.project_id,
                "fp-move",
                timestamp=ago(hours=hours),
                exceptions=[exception("RangeError", "too deep")],
            )
    fingerprints = text(section(open_issue(ui, tenant, issue.id).text, "fingerprints"))
    assert "fp-keep" in fingerprints and "fp-move" in fingerprints

    answer = post_form(ui, tenant, issue.id, "split", fingerprint="fp-move")
    assert answer.status_code == 303
    new_id = answer.headers["location"].rsplit("/", 1)[1]
    assert new_id != str(issue.id)
    assert fingerprints_of_issue(database, new_id) == ["fp-move"]
    assert fingerprints_of_issue(database, issue.id) == ["fp-keep"]

    page = ui.get(answer.headers["location"]).text
    assert "The fingerprint was split out into this new issue, with its past events." in text(page)
    assert '<span class="issue-name">RangeError</span>' in page  # named after its latest event
    assert "Event 1 of 2" in text(page)
    assert "Occurrences 2" in text(page)
    assert "Event 1 of 1" in text(open_issue(ui, tenant, issue.id).text)


def fingerprints_of_issue(database: Database, issue_id: object) -> list[str]:
    with database.session(write=False) as session:
        return fingerprints_of(session, uuid.UUID(str(issue_id)))


def test_splitting_the_only_or_a_foreign_fingerprint_is_refused_in_words(
    ui: TestClient, tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-only"])
        make_issue(session, tenant.project_id, ["fp-elsewhere"])
        make_event(session, tenant.project_id, "fp-only")
    page = open_issue(ui, tenant, issue.id).text
    assert re.search(r'<button type="submit" class="small" disabled[^>]*>Split out</button>', page)
    answer = post_form(ui, tenant, issue.id, "split", fingerprint="fp-only")
    assert answer.status_code == 400
    assert "only fingerprint" in text(answer.text) and "Nothing was changed" in text(answer.text)
    for fingerprint in ("fp-elsewhere", "", "nope"):
        answer = post_form(ui, tenant, issue.id, "split", fingerprint=fingerprint)
        assert answer.status_code == 400
        assert "not part of this issue" in text(answer.text)
    assert fingerprints_of_issue(database, issue.id) == ["fp-only"]
    with database.session(write=False) as session:
        assert len(list(session.scalars(select(Issue.id)))) == 2


def test_fingerprints_from_rules_or_the_client_say_so(ui: TestClient, tenant: Tenant, database: Database):
    rule_id = uuid.uuid4()
    rule_fp = f"custom-rule:{rule_id}"
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, [rule_fp, "checkout-failed"])
        make_event(
            session,
            tenant.project_id,
            rule_fp,
            timestamp=ago(hours=1),
            properties={"$exception_fingerprint_record": [{"type": "custom", "rule_id": str(rule_id)}]},
        )
        make_event(
            session,
            tenant.project_id,
            "checkout-failed",
            timestamp=ago(hours=2),
            properties={"$exception_fingerprint_record": [{"type": "manual"}]},
        )
    fingerprints = text(section(open_issue(ui, tenant, issue.id).text, "fingerprints"))
    assert f"A grouping rule matched (rule {rule_id})." in fingerprints
    assert "The client sent its own fingerprint ($exception_fingerprint)." in fingerprints


def test_split_refusal_words():
    assert split_refusal(["a", "b"], "a") is None
    assert "only fingerprint" in (split_refusal(["a"], "a") or "")
    assert "not part of this issue" in (split_refusal(["a", "b"], "c") or "")


def test_pages_need_a_session(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-a"])
    answer = client.get(page_url(tenant, issue.id), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_a_year_counts_what_ninety_days_leave_out(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-old"])
        make_event(session, tenant.project_id, "fp-old", timestamp=ago(days=200), distinct_id="early")
        make_event(session, tenant.project_id, "fp-old", timestamp=ago(days=2), distinct_id="recent")
    quarter = text(open_issue(ui, tenant, issue.id, date_from="-90d").text)
    year = open_issue(ui, tenant, issue.id, date_from="-52w")
    assert year.status_code == 200
    assert "Events 1 last 90 days Users 1 last 90 days" in quarter
    assert "Events 2 last 1 year Users 2 last 1 year" in text(year.text)
    assert "at most 1 in one week" in year.text


def test_a_merged_away_issue_leads_to_where_it_went(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        first = make_issue(session, tenant.project_id, ["fp-1"])
        second = make_issue(session, tenant.project_id, ["fp-2"])
        third = make_issue(session, tenant.project_id, ["fp-3"])
        first_id, second_id, third_id = first.id, second.id, third.id
        merge_issues(session, tenant.project_id, second_id, [first_id])
        # Merged again: links to the first still arrive in one hop.
        merge_issues(session, tenant.project_id, third_id, [second_id])
    for gone in (first_id, second_id):
        answer = ui.get(page_url(tenant, gone), follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == page_url(tenant, third_id)
    landed = open_issue(ui, tenant, first_id)
    assert landed.status_code == 200
    assert "That issue was merged into this one." in landed.text
    assert open_issue(ui, tenant, uuid.uuid4()).status_code == 404
