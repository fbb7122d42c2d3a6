"""The MCP server as an agent meets it, over both transports, against real issues.

Each test that takes ``connect`` runs twice: over Streamable HTTP (``/mcp`` on ``trapline
serve``, the key as a Bearer header) and over stdio (``trapline mcp`` started by the SDK's
client, calling the same server's REST API). What a tool says is compared with the seeded
issues' ground truth (tests/mcp/live.py), which test_live_fixture.py checks against the REST
API; a write is checked through the REST API, never through the tool's own answer.

One module, so one live server is seeded for all of it: the writes put everything back (or
touch only what they made), so the tests hold in any order and on any xdist worker.
"""

from __future__ import annotations

import json
import linecache
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mcp import live as live_module
from tests.mcp.live import LiveTrapline, SeededIssue, auth
from tests.mcp.support import TRANSPORTS, Connect, Connections, Rest, connections, http_mcp, stdio_mcp, user_id
from tests.server import free_port
from trapline.mcp import text

pytestmark = pytest.mark.slow

READ_TOOLS = {
    "query-error-tracking-issues-list",
    "query-error-tracking-issue",
    "query-error-tracking-issue-events",
    "error-tracking-suppression-rules-list",
    "error-tracking-symbol-sets-list",
    "error-tracking-settings-setup-status-retrieve",
}
WRITE_TOOLS = {
    "error-tracking-issues-partial-update",
    "error-tracking-issues-assign-partial-update",
    "error-tracking-issues-merge-create",
    "error-tracking-issues-split-create",
    "error-tracking-suppression-rules-create",
}
ALL_ISSUES = {"status": "all", "dateRange": {"date_from": "all"}}


@pytest.fixture(scope="module")
def opened(live_trapline: LiveTrapline) -> Iterator[Connections]:
    with connections(live_trapline) as found:
        yield found


@pytest.fixture(params=TRANSPORTS)
def connect(request: pytest.FixtureRequest, opened: Connections) -> Connect:
    return opened.transport(request.param)


@pytest.fixture(scope="module")
def rest(live_trapline: LiveTrapline) -> Iterator[Rest]:
    client = Rest(live_trapline)
    yield client
    client.close()


def listed_ids(data: dict[str, Any]) -> list[str]:
    return [row["id"] for row in data["results"]]


def show(value: object) -> str:
    """A variable's value as the tools print it (trapline.ui.stacktrace.show_value: strings as
    they are, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def frame_block(issue_text: str, seeded: SeededIssue) -> list[str]:
    """The lines of the crash frame in an issue's text: its "at …" line, then its source lines
    and variables, up to the next frame or section."""
    lines = issue_text.splitlines()
    head = f"  at {seeded.function} ({seeded.file}:{seeded.line}"
    starts = [n for n, line in enumerate(lines) if line.startswith(head)]
    assert starts, f"no frame {head!r} in:\n{issue_text}"
    block = [lines[starts[0]]]
    for line in lines[starts[0] + 1 :]:
        if not line.startswith("     "):  # source lines and variables are indented past "  at"
            break
        block.append(line)
    return block


# --- discovery ------------------------------------------------------------------------------


def test_the_tools_carry_posthogs_names_and_read_only_hints(connect: Connect, live_trapline: LiveTrapline):
    session = connect(live_trapline.keys.full)
    tools = {tool.name: tool for tool in session.list_tools().tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name in READ_TOOLS:
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is True, name
    for name in WRITE_TOOLS:
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is False, name
    # Merging deletes the merged issues: the one tool a client should confirm first.
    destructive = {name for name, tool in tools.items() if tool.annotations and tool.annotations.destructive_hint}
    assert destructive == {"error-tracking-issues-merge-create"}


# --- reading --------------------------------------------------------------------------------


def test_the_issue_list_shows_the_seeded_issues_and_narrows(connect: Connect, live_trapline: LiveTrapline):
    live = live_trapline
    session = connect(live.keys.full)
    body, data = session.ok("query-error-tracking-issues-list")
    assert sorted(listed_ids(data)) == sorted(seeded.issue_id for seeded in live.issues)
    for seeded in live.issues:
        assert f"id {seeded.issue_id}" in body
        assert f"] {seeded.exception_type} —" in body  # "N. [active] ValueError — 1 occurrences…"
        assert seeded.message in body
    assert live.other_org_issue.issue_id not in body

    # searchQuery matches messages (and types, functions, files).
    body, data = session.ok("query-error-tracking-issues-list", searchQuery="sku-42")
    assert listed_ids(data) == [live.python_locals.issue_id]
    assert "matching 'sku-42'" in body and live.python_chained.issue_id not in body
    _, data = session.ok("query-error-tracking-issues-list", searchQuery=live.python_chained.function)
    assert listed_ids(data) == [live.python_chained.issue_id]

    # status: nothing is resolved (the write tests put their issues back).
    body, data = session.ok("query-error-tracking-issues-list", status="resolved")
    assert data["results"] == [] and body.startswith("No issues match")
    _, data = session.ok("query-error-tracking-issues-list", **ALL_ISSUES)
    assert sorted(listed_ids(data)) == sorted(seeded.issue_id for seeded in live.issues)

    # limit/offset page through them, each page saying where the next starts.
    pages = []
    for offset in range(len(live.issues)):
        body, data = session.ok("query-error-tracking-issues-list", limit=1, offset=offset)
        [issue_id] = listed_ids(data)
        pages.append(issue_id)
        more = offset + 1 < len(live.issues)
        assert data["hasMore"] is more
        assert (f"call again with offset {offset + 1}" in body) is more
        assert f"{offset + 1}. [active]" in body  # numbered from the offset
    assert sorted(pages) == sorted(seeded.issue_id for seeded in live.issues)


def test_the_minified_js_issue_reads_as_its_original_source(connect: Connect, live_trapline: LiveTrapline, rest: Rest):
    seeded = live_trapline.require_js()
    body, data = connect(live_trapline.keys.full).ok("query-error-tracking-issue", issueId=seeded.issue_id)
    assert body.startswith(f"# {seeded.exception_type}\n{seeded.message}")
    # The throw site, through the uploaded source map: original name, file, line…
    block = frame_block(body, seeded)
    # …and the original line's text, marked as the current one.
    assert seeded.source_line is not None
    current = [line for line in block if line.lstrip().startswith(">")]
    assert current == [f"     > {seeded.line:>5} | {seeded.source_line}"], block
    # The minified name the browser threw from appears nowhere.
    events = rest.client.get(f"/issues/{seeded.issue_id}/events/").json()["results"]
    mangled = events[0]["properties"]["$exception_list"][0]["stacktrace"]["frames"][-1]["mangled_name"]
    assert mangled != seeded.function
    assert f"at {mangled} (" not in body
    # The crash is the last frame of the stack (oldest call first), as the text says.
    frames = [line for line in body.splitlines() if line.startswith("  at ")]
    assert frames[-1] == block[0]
    assert data["issue"]["id"] == seeded.issue_id and data["contexts"]


def test_the_python_issue_shows_its_crash_frame_and_variables(connect: Connect, live_trapline: LiveTrapline):
    seeded = live_trapline.python_locals
    body, data = connect(live_trapline.keys.full).ok("query-error-tracking-issue", issueId=seeded.issue_id)
    assert f"### {seeded.exception_type}: {seeded.message}" in body
    block = frame_block(body, seeded)
    assert block[0].startswith(f"  at {seeded.function} ({seeded.file}:{seeded.line})")
    [variables] = [line for line in block if line.lstrip().startswith("variables:")]
    assert seeded.code_variables
    for name, value in seeded.code_variables.items():
        assert f"{name} = {show(value)}" in variables, variables
    # The source line, as the interpreter ran it (posthog-python sends its context lines).
    source = linecache.getline(str(Path(live_module.__file__)), seeded.line).rstrip("\n")
    assert "raise ValueError" in source
    current = [line for line in block if line.lstrip().startswith(">")]
    assert current == [f"     > {seeded.line:>5} | {source}"], block
    assert data["latest_event"]["properties"]["$exception_list"][0]["type"] == seeded.exception_type


def test_the_chained_issue_shows_both_exceptions_in_order(connect: Connect, live_trapline: LiveTrapline):
    seeded = live_trapline.python_chained
    body, _ = connect(live_trapline.keys.full).ok("query-error-tracking-issue", issueId=seeded.issue_id)
    outer = body.index(f"### {seeded.exception_type}: {seeded.message}")
    cause = body.index(f"### Caused by: {seeded.cause_type}: ")
    assert outer < cause
    frame_block(body, seeded)  # the outer exception's throw site
    grouping = body[body.index("## Why these events are grouped") :]
    assert grouping.index(f"exception {seeded.exception_type}") < grouping.index(f"exception {seeded.cause_type}")


def test_issue_events_come_with_their_frames(connect: Connect, live_trapline: LiveTrapline):
    session = connect(live_trapline.keys.full)
    for seeded in live_trapline.issues:
        body, data = session.ok("query-error-tracking-issue-events", issueId=seeded.issue_id)
        [event] = data["results"]
        frames = event["properties"]["$exception_list"][0]["stacktrace"]["frames"]
        assert (frames[-1]["resolved_name"], frames[-1]["line"]) == (seeded.function, seeded.line)
        assert body.startswith(f"1 event(s) of issue {seeded.issue_id}")
        assert f"uuid {event['uuid']}" in body
        assert f"  at {seeded.function} ({seeded.file}:{seeded.line}" in body


def test_answers_stay_bounded(connect: Connect, live_trapline: LiveTrapline):
    session = connect(live_trapline.keys.full)
    for seeded in live_trapline.issues:
        body, _ = session.ok("query-error-tracking-issue", issueId=seeded.issue_id)
        assert len(body) < text.MAX_TEXT and "[cut:" not in body


def test_the_issue_resource_and_the_fix_prompt(connect: Connect, live_trapline: LiveTrapline):
    seeded = live_trapline.python_locals
    session = connect(live_trapline.keys.full)
    [template] = session.list_resource_templates().resource_templates
    assert (template.uri_template, template.mime_type) == ("trapline://issues/{issue_id}", "text/markdown")
    read = session.read_resource(f"trapline://issues/{seeded.issue_id}")
    [content] = read.contents
    assert content.mime_type == "text/markdown"
    body = getattr(content, "text", "")
    assert body.startswith(f"# {seeded.exception_type}\n") and "## Latest event" in body
    frame_block(body, seeded)

    [prompt] = session.list_prompts().prompts
    assert prompt.name == "fix-error-tracking-issue"
    got = session.get_prompt("fix-error-tracking-issue", {"issue_id": seeded.issue_id})
    [message] = got.messages
    said = getattr(message.content, "text", "")
    assert message.role == "user"
    assert f"query-error-tracking-issue with issueId {seeded.issue_id}" in said


# --- writing with the full key ------------------------------------------------------------------


def test_resolve_and_suppress_reach_the_rest_api(connect: Connect, live_trapline: LiveTrapline, rest: Rest):
    session = connect(live_trapline.keys.full)
    issue_id = live_trapline.python_locals.issue_id
    try:
        body, data = session.ok("error-tracking-issues-partial-update", id=issue_id, status="resolved")
        assert "It is now resolved" in body and data["status"] == "resolved"
        assert rest.issue(issue_id)["status"] == "resolved"
        # The list's status filter sees it too.
        _, data = session.ok("query-error-tracking-issues-list", status="resolved")
        assert listed_ids(data) == [issue_id]
        _, data = session.ok("query-error-tracking-issues-list")
        assert issue_id not in listed_ids(data)

        body, _ = session.ok("error-tracking-issues-partial-update", id=issue_id, status="suppressed")
        assert "It is now suppressed" in body
        assert rest.issue(issue_id)["status"] == "suppressed"
        body, _ = session.ok("query-error-tracking-issue", issueId=issue_id)
        assert "- status: suppressed" in body
    finally:
        rest.set_status(issue_id, "active")


def test_assign_to_a_member_and_unassign(connect: Connect, live_trapline: LiveTrapline, rest: Rest):
    live = live_trapline
    session = connect(live.keys.full)
    issue_id = live.python_chained.issue_id
    member = user_id(live, live.email)
    try:
        body, _ = session.ok(
            "error-tracking-issues-assign-partial-update", id=issue_id, assignee={"type": "user", "id": member}
        )
        assert f"assigned to user {member}" in body
        assert rest.issue(issue_id)["assignee"] == {"type": "user", "id": member}
        _, data = session.ok("query-error-tracking-issues-list", assignee={"type": "user", "id": member})
        assert listed_ids(data) == [issue_id]
        body, _ = session.ok("query-error-tracking-issue", issueId=issue_id)
        assert f"- assignee: user {member}" in body

        # The other organization's user is no member: the API's reason comes back.
        stranger = user_id(live, "other@example.com")
        refused = session.error(
            "error-tracking-issues-assign-partial-update", id=issue_id, assignee={"type": "user", "id": stranger}
        )
        assert "does not belong to this organization" in refused
        assert rest.issue(issue_id)["assignee"] == {"type": "user", "id": member}

        body, _ = session.ok("error-tracking-issues-assign-partial-update", id=issue_id)
        assert "assigned to nobody" in body
        assert rest.issue(issue_id)["assignee"] is None
    finally:
        rest.unassign(issue_id)


def test_a_suppression_rule_is_created_and_listed(connect: Connect, live_trapline: LiveTrapline, rest: Rest):
    session = connect(live_trapline.keys.full)
    # A type no seeded issue has (and one per transport), so the rule drops nothing the other
    # tests need and each run finds its own.
    dropped = f"ChunkLoadError{session.transport.capitalize()}"
    body, rule = session.ok("error-tracking-suppression-rules-create", exception_type=dropped)
    try:
        assert f"suppression rule {rule['id']} created" in body
        [stored] = [row for row in rest.rules() if row["id"] == rule["id"]]
        assert stored["filters"]["values"][0]["value"] == [dropped]
        body, data = session.ok("error-tracking-suppression-rules-list")
        assert rule["id"] in [row["id"] for row in data["results"]]
        [line] = [line for line in body.splitlines() if rule["id"] in line]
        assert "drops 100% of events" in line and dropped in line
    finally:
        rest.delete_rule(rule["id"])


def test_merge_and_split_that_change_nothing_say_so(connect: Connect, live_trapline: LiveTrapline, rest: Rest):
    # Real merges and splits would change the seeded issues under the other tests; the REST
    # API's own tests cover them. Here: the tools reach it and report a no-op truthfully.
    session = connect(live_trapline.keys.full)
    issue_id = live_trapline.python_locals.issue_id
    body, data = session.ok("error-tracking-issues-merge-create", id=issue_id, ids=[issue_id])
    assert data["success"] is False and body.startswith("Nothing merged")
    body, data = session.ok("error-tracking-issues-split-create", id=issue_id, fingerprints=[{"fingerprint": "nope"}])
    assert data["new_issue_ids"] == [] and body.startswith("Nothing split")
    assert rest.issue(issue_id)["status"] == "active"


def test_an_issue_with_no_event_in_the_range_still_shows_its_latest_stack(
    connect: Connect, live_trapline: LiveTrapline
):
    seeded = live_trapline.python_locals
    long_ago = {"date_from": "2000-01-01", "date_to": "2000-01-02"}
    body, data = connect(live_trapline.keys.full).ok(
        "query-error-tracking-issue", issueId=seeded.issue_id, dateRange=long_ago
    )
    assert "impact in range: no events in range" in body
    assert "## Latest event of all (none in the range)" in body
    assert f"at {seeded.function} (" in body and "seen: None" not in body
    assert data["latest_event"]["properties"]["$exception_list"]


# --- the read-only key and the other organization ---------------------------------------------


def test_the_read_only_key_reads_everything_and_writes_nothing(
    connect: Connect, live_trapline: LiveTrapline, rest: Rest
):
    live = live_trapline
    session = connect(live.keys.read_only)
    seeded = live.python_locals
    rules_before = rest.rules()

    _, data = session.ok("query-error-tracking-issues-list")
    assert sorted(listed_ids(data)) == sorted(issue.issue_id for issue in live.issues)
    body, _ = session.ok("query-error-tracking-issue", issueId=seeded.issue_id)
    frame_block(body, seeded)
    session.ok("query-error-tracking-issue-events", issueId=seeded.issue_id)
    session.ok("error-tracking-suppression-rules-list")
    body, _ = session.ok("error-tracking-symbol-sets-list")
    if live.js_minified is not None:
        assert "Usable:" in body  # the JS issue's uploaded map
    body, _ = session.ok("error-tracking-settings-setup-status-retrieve")
    assert "- issues: yes" in body
    assert session.read_resource(f"trapline://issues/{seeded.issue_id}").contents

    writes: dict[str, dict[str, Any]] = {
        "error-tracking-issues-partial-update": {"id": seeded.issue_id, "status": "resolved"},
        "error-tracking-issues-assign-partial-update": {
            "id": seeded.issue_id,
            "assignee": {"type": "user", "id": user_id(live, live.email)},
        },
        # Harmless even if it were allowed: only the issue itself is named.
        "error-tracking-issues-merge-create": {"id": seeded.issue_id, "ids": [seeded.issue_id]},
        "error-tracking-issues-split-create": {"id": seeded.issue_id, "fingerprints": [{"fingerprint": "none"}]},
        "error-tracking-suppression-rules-create": {"exception_type": seeded.exception_type},
    }
    assert set(writes) == WRITE_TOOLS
    for tool, arguments in writes.items():
        refused = session.error(tool, **arguments)
        assert "Permission denied" in refused and "error_tracking:write" in refused, (tool, refused)
    after = rest.issue(seeded.issue_id)
    assert (after["status"], after["assignee"]) == ("active", None)
    assert rest.rules() == rules_before


def test_the_other_organizations_key_cannot_reach_this_project(
    connect: Connect, live_trapline: LiveTrapline, rest: Rest
):
    live = live_trapline
    target = live.python_locals.issue_id
    # Its own project (the default): the main project's issue is simply not there.
    session = connect(live.keys.other_org)
    assert "Not found" in session.error("query-error-tracking-issue", issueId=target)
    _, data = session.ok("query-error-tracking-issues-list")
    assert listed_ids(data) == [live.other_org_issue.issue_id]
    body, _ = session.ok("query-error-tracking-issue", issueId=live.other_org_issue.issue_id)
    frame_block(body, live.other_org_issue)
    # Naming the main project does not get it in either.
    aimed = connect(live.keys.other_org, live.project_id)
    assert "Not found" in aimed.error("query-error-tracking-issue", issueId=target)
    assert "Not found" in aimed.error("query-error-tracking-issues-list")
    assert "Not found" in aimed.error("error-tracking-issues-partial-update", id=target, status="resolved")
    assert rest.issue(target)["status"] == "active"


# --- bad input --------------------------------------------------------------------------------


def test_invalid_input_is_a_tool_error_and_the_server_carries_on(connect: Connect, live_trapline: LiveTrapline):
    session = connect(live_trapline.keys.full)
    refused = session.error("query-error-tracking-issues-list", limit=1000)
    assert "limit" in refused and "less than or equal to 100" in refused
    assert "Must be a valid UUID" in session.error("query-error-tracking-issue", issueId="not-a-uuid")
    assert "limit" in session.error(
        "query-error-tracking-issue-events", issueId=live_trapline.python_locals.issue_id, limit=50
    )
    missing = "00000000-0000-7000-8000-000000000000"
    assert "Not found" in session.error("query-error-tracking-issue", issueId=missing)
    assert "Invalid date" in session.error("query-error-tracking-issues-list", dateRange={"date_from": "someday"})
    assert "Nothing to change" in session.error("error-tracking-issues-partial-update", id=missing)
    assert "Say what to drop" in session.error("error-tracking-suppression-rules-create")
    assert "Unknown tool" in session.error("no-such-tool")
    # Still answering (over stdio: the process is still alive).
    session.ok("query-error-tracking-issues-list")


# --- HTTP only: how the caller and the project arrive ------------------------------------------


def test_http_without_a_valid_key_says_what_to_send(opened: Connections, live_trapline: LiveTrapline):
    live = live_trapline
    missing = opened.transport("http")(None)
    refused = missing.error("query-error-tracking-issues-list")
    assert "Authorization: Bearer phx_" in refused
    invalid = opened.transport("http")("phx_not_a_real_key")
    assert "Not authenticated" in invalid.error("query-error-tracking-issue", issueId=live.python_locals.issue_id)
    # A key sent another way than as a Bearer is no key at all.
    with opened.open(http_mcp(f"{live.url}/mcp", {"Authorization": live.keys.full}), "http") as raw:
        assert "Authorization: Bearer phx_" in raw.error("query-error-tracking-issues-list")


def test_http_takes_the_project_from_the_query_string_or_the_header(opened: Connections, live_trapline: LiveTrapline):
    live = live_trapline
    other = live.other_org_issue.issue_id
    # ?project_id= (as PostHog's MCP URL carries it) picks the other organization's project…
    url = f"{live.url}/mcp?project_id={live.other_project_id}"
    with opened.open(http_mcp(url, auth(live.keys.other_org)), "http") as own:
        _, data = own.ok("query-error-tracking-issues-list")
        assert listed_ids(data) == [other]
        assert data["url"] == f"{live.url}/project/{live.other_project_id}/error_tracking"
    # …which the main organization's key may not enter.
    with opened.open(http_mcp(url, auth(live.keys.full)), "http") as foreign:
        assert "Not found" in foreign.error("query-error-tracking-issue", issueId=other)
    # The header names the key's own project explicitly; a project that is no number is refused.
    session = opened.transport("http")(live.keys.full, live.project_id)
    _, data = session.ok("query-error-tracking-issues-list")
    assert sorted(listed_ids(data)) == sorted(issue.issue_id for issue in live.issues)
    headers = {**auth(live.keys.full), "x-posthog-project-id": "shop"}
    with opened.open(http_mcp(f"{live.url}/mcp", headers), "http") as bad:
        assert "must be a number or @current" in bad.error("query-error-tracking-issues-list")


# --- stdio only: how trapline mcp is configured ------------------------------------------------


def test_stdio_reads_the_key_and_project_from_its_environment(opened: Connections, live_trapline: LiveTrapline):
    live = live_trapline
    # PostHog's variable for the key, and the project by TRAPLINE_PROJECT_ID.
    env = {"POSTHOG_PERSONAL_API_KEY": live.keys.other_org, "TRAPLINE_PROJECT_ID": str(live.other_project_id)}
    with opened.open(stdio_mcp(live.url, None, env=env), "stdio") as own:
        _, data = own.ok("query-error-tracking-issues-list")
        assert listed_ids(data) == [live.other_org_issue.issue_id]
    env["TRAPLINE_PROJECT_ID"] = str(live.project_id)
    with opened.open(stdio_mcp(live.url, None, env=env), "stdio") as aimed:
        assert "Not found" in aimed.error("query-error-tracking-issue", issueId=live.python_locals.issue_id)


def test_stdio_says_when_the_server_cannot_be_reached(opened: Connections, live_trapline: LiveTrapline):
    nowhere = f"http://127.0.0.1:{free_port()}"
    with opened.open(stdio_mcp(nowhere, live_trapline.keys.full), "stdio") as session:
        refused = session.error("query-error-tracking-issues-list")
        assert "could not be reached" in refused
