"""The ``live_trapline`` fixture holds what it says, as the REST API shows it.

The MCP tests compare tool output with the fixture's ground truth; these tests check that
ground truth against the REST API first, so that an MCP test failing means the MCP server is
wrong, not the seeding.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mcp.live import LiveTrapline, SeededIssue, auth

pytestmark = pytest.mark.slow


def api(live: LiveTrapline, project_id: int, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{live.url}/api/projects/{project_id}/error_tracking", headers=auth(key), timeout=10)


def crash_frame(client: httpx.Client, seeded: SeededIssue) -> tuple[dict[str, Any], dict[str, Any]]:
    """The issue's one event and the throw site of its outermost exception (the last frame)."""
    response = client.get(f"/issues/{seeded.issue_id}/events/")
    assert response.status_code == 200, response.text
    [event] = response.json()["results"]
    frame: dict[str, Any] = event["properties"]["$exception_list"][0]["stacktrace"]["frames"][-1]
    return event, frame


def test_the_seeded_issues_are_listed_with_their_crash_frames(live_trapline: LiveTrapline):
    live = live_trapline
    with api(live, live.project_id, live.keys.full) as client:
        listed = client.get("/issues/", params={"status": "all", "date_from": "all"}).json()["results"]
        assert {(i["id"], i["name"], i["description"]) for i in listed} == {
            (s.issue_id, s.exception_type, s.message) for s in live.issues
        }
        for seeded in (live.python_locals, live.python_chained):
            event, frame = crash_frame(client, seeded)
            assert (frame["source"], frame["resolved_name"], frame["line"]) == (
                seeded.file,
                seeded.function,
                seeded.line,
            )
            assert frame["resolved"] is True and frame["in_app"] is True

        # posthog-python sent the crash frame's locals (capture_exception_code_variables=True).
        _, frame = crash_frame(client, live.python_locals)
        expected = live.python_locals.code_variables
        assert set(expected) == {"sku", "quantity", "warehouse", "available"}
        assert {name: frame["code_variables"].get(name) for name in expected} == expected, frame
        # The chain: the outer exception first, its cause after it.
        event, _ = crash_frame(client, live.python_chained)
        chain = [entry["type"] for entry in event["properties"]["$exception_list"]]
        assert chain == [live.python_chained.exception_type, live.python_chained.cause_type]

    # The other organization's issue is there, in its own project, for its own key.
    with api(live, live.other_project_id, live.keys.other_org) as client:
        [issue] = client.get("/issues/").json()["results"]
        assert (issue["id"], issue["name"]) == (live.other_org_issue.issue_id, live.other_org_issue.exception_type)


def test_the_minified_js_crash_frame_resolves_to_the_original_source(live_trapline: LiveTrapline):
    live = live_trapline
    seeded = live.require_js()
    with api(live, live.project_id, live.keys.full) as client:
        event, frame = crash_frame(client, seeded)
        assert event["properties"]["$lib"] == "web"
        assert frame["resolved"] is True and frame["in_app"] is True
        assert seeded.file.endswith("src/checkout.js")
        assert (frame["source"], frame["resolved_name"], frame["line"]) == (seeded.file, seeded.function, seeded.line)
        assert frame["mangled_name"] != seeded.function  # it really was minified
        # The source context, from the uploaded map's sourcesContent.
        response = client.post("/stack_frames/batch_get/", json={"raw_ids": [frame["raw_id"]]})
        assert response.status_code == 200, response.text
        [stored] = response.json()["results"]
        assert stored["context"]["line"]["line"] == seeded.source_line, stored["context"]


def test_each_key_reaches_what_its_scope_and_organization_allow(live_trapline: LiveTrapline):
    live = live_trapline
    issue = live.python_locals.issue_id
    path = f"/issues/{issue}/"
    with api(live, live.project_id, live.keys.read_only) as read_only:
        assert read_only.get(path).status_code == 200
        refused = read_only.patch(path, json={"status": "resolved"})
        assert refused.status_code == 403, refused.text
        assert "error_tracking:write" in refused.text
    with api(live, live.project_id, live.keys.other_org) as other:
        # Not 403: a key cannot even learn that another organization's project exists.
        assert other.get(path).status_code == 404
        assert other.patch(path, json={"status": "resolved"}).status_code == 404
    with api(live, live.project_id, live.keys.full) as full:
        # Nothing above changed the issue; the full key may, and puts it back as it was.
        assert full.get(path).json()["status"] == "active"
        assert full.patch(path, json={"status": "resolved"}).status_code == 200
        assert full.patch(path, json={"status": "active"}).status_code == 200
