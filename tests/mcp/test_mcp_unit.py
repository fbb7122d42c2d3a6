"""What the MCP tools say when the data is huge (trapline.mcp.text, pure), and ``trapline
mcp``'s command line when it cannot start. No server: the live tests are test_mcp_live.py."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from tests.server import TRAPLINE
from trapline.mcp import text


def frame(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "raw_id": f"{number:064x}/0",
        "resolved_name": f"step_{number}",
        "source": "app/work.py",
        "line": number,
        "in_app": True,
        "resolved": True,
        **extra,
    }


def issue_answer(exception_list: list[dict[str, Any]]) -> str:
    issue = {"id": "01a2", "name": "ValueError", "status": "active", "aggregations": {"occurrences": 1}}
    event = {"uuid": "e1", "timestamp": "2026-01-01T00:00:00Z", "properties": {"$exception_list": exception_list}}
    return text.bounded(text.issue_text(issue, event, {}, public_url="", project=1))


def test_bounded_keeps_short_text_and_says_where_it_cut_long_text():
    assert text.bounded("short") == "short"
    huge = "x" * (text.MAX_TEXT * 3)
    cut = text.bounded(huge)
    assert len(cut) == text.MAX_TEXT
    shown = cut.index("\n\n[cut:")
    assert cut == "x" * shown + f"\n\n[cut: the answer was {len(huge)} characters; the first {shown} are shown]"
    # The note is all that goes past the limit.
    assert len(cut) < text.MAX_TEXT + 100


def test_a_giant_value_is_cut_with_a_note():
    message = "y" * 50_000
    variables = {"payload": "z" * 50_000}
    answer = issue_answer([{"type": "ValueError", "value": message, "stacktrace": {"type": "resolved", "frames": [
        frame(1, code_variables=variables)
    ]}}])  # fmt: skip
    assert "more characters]" in answer
    assert len(answer) < text.MAX_TEXT
    heading = next(line for line in answer.splitlines() if line.startswith("### ValueError: "))
    assert len(heading) < 1_000


def test_a_huge_stack_shows_the_frames_nearest_the_crash_and_says_what_it_left_out():
    frames = [frame(n) for n in range(1, 101)]
    frames[-1]["code_variables"] = {f"v{n}": n for n in range(30)}
    frames.insert(0, frame(0, in_app=False, resolved_name="library_call"))
    answer = issue_answer(
        [{"type": "ValueError", "value": "deep", "stacktrace": {"type": "resolved", "frames": frames}}]
    )
    shown = [line for line in answer.splitlines() if line.startswith("  at ")]
    assert len(shown) == text.MAX_FRAMES
    assert shown[-1].startswith("  at step_100 (app/work.py:100)")  # the crash site, last
    assert f"… {100 - text.MAX_FRAMES} older frames not shown" in answer
    assert "(1 library frames hidden)" in answer
    assert "(10 more variables not shown)" in answer
    assert "library_call" not in answer


def test_a_long_chain_is_bounded_as_a_whole():
    chain = [
        {
            "type": f"Error{n}",
            "value": "v" * 400,
            "mechanism": {"type": "chained", "source": "cause"},
            "stacktrace": {
                "type": "resolved",
                "frames": [frame(m, code_variables={"x": "w" * 500}) for m in range(30)],
            },
        }
        for n in range(40)
    ]
    answer = issue_answer(chain)
    assert "[cut: the answer was" in answer
    assert len(answer) < text.MAX_TEXT + 100
    assert answer.count("### Caused by: ") >= 1


def test_the_issue_list_says_how_to_get_the_next_page():
    page = {
        "results": [{"id": "a", "name": "KeyError", "status": "active", "aggregations": {"occurrences": 2}}],
        "offset": 5,
        "hasMore": True,
        "nextOffset": 6,
    }
    listed = text.issues_text(page, public_url="https://errors.example.com", project=3, described="status active")
    assert "6. [active] KeyError — 2 occurrences" in listed
    assert "https://errors.example.com/project/3/error_tracking/a" in listed
    assert "call again with offset 6" in listed
    assert text.issues_text({"results": []}, public_url="", project=3, described="x").startswith("No issues match")


# --- trapline mcp's command line ----------------------------------------------------------------


def run_mcp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only PATH: no TRAPLINE_* or POSTHOG_* key of the machine running the tests gets in.
    return subprocess.run(
        [TRAPLINE, "mcp", *args], env=env or {"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def test_trapline_mcp_without_a_key_says_how_to_give_one():
    result = run_mcp()
    assert result.returncode == 1
    assert result.stdout == ""  # stdout is the MCP wire: nothing but messages may go there
    assert "no API key" in result.stderr and "TRAPLINE_API_KEY" in result.stderr and "--api-key" in result.stderr


def test_trapline_mcp_refuses_a_project_that_is_no_number():
    result = run_mcp("--api-key", "phx_x", "--project-id", "shop")
    assert result.returncode == 2
    assert "the project id must be a number" in result.stderr


def test_trapline_mcp_help():
    result = run_mcp("--help")
    assert result.returncode == 0
    for flag in ("--url", "--api-key", "--project-id", "--skip-ssl-verification", "TRAPLINE_URL"):
        assert flag in result.stdout


def test_building_the_mcp_server_leaves_the_processs_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from trapline.mcp.server import build_server

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a process that has not configured logging
    monkeypatch.setattr(root, "level", logging.WARNING)
    before = (list(root.handlers), root.level)

    async def connect(ctx: Any) -> Any:
        raise AssertionError("not called")

    build_server(connect)
    assert (list(root.handlers), root.level) == before


def test_the_server_starts_without_the_mcp_sdk_and_loads_it_for_the_first_mcp_request(tmp_path):
    # A fresh interpreter: this one may have imported the SDK for other tests. An initialize
    # needs no key; the SDK's answer proves it was loaded and ran.
    script = f"""
import sys
from fastapi.testclient import TestClient
from trapline.app import create_app
from trapline.db import migrate
from trapline.db.engine import make_engine
from trapline.settings import load_settings

url = "sqlite:///{tmp_path}/t.db"
migrate.upgrade(make_engine(url))
app = create_app(load_settings(database_url=url, data_dir="{tmp_path}/data"))
with TestClient(app) as client:
    assert "mcp" not in sys.modules, "the SDK was imported at start"
    answer = client.post(
        "/mcp",
        json={{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {{"protocolVersion": "2025-06-18",
              "capabilities": {{}}, "clientInfo": {{"name": "t", "version": "1"}}}}}},
        headers={{"accept": "application/json, text/event-stream"}},
    )
    assert "mcp" in sys.modules
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["serverInfo"]["name"] == "trapline"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
