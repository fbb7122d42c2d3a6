"""The real posthog-python SDK against a live ``trapline serve``.

Each test captures exceptions with the SDK, waits for the worker to process them, and checks
through the REST API that they were grouped into the issues, with the fingerprints, that
cymbal-v1 prescribes for the frames the SDK sent. The expected fingerprints are computed here
from what posthog-python is known to send for a python frame: ``filename`` (the path relative
to the root of the frame's top-level package, or the file's basename for a top-level module),
``module`` (the frame's ``__name__``) and ``function``, for every frame of the traceback, oldest
call first; for chained exceptions the outermost exception comes first.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from posthog import Posthog
from posthog.version import VERSION as POSTHOG_VERSION

from tests.live.support import Api, Project, PyFrame, bootstrap, python_fingerprint
from tests.server import Server, running_server

pytestmark = pytest.mark.slow

# posthog-python names a frame's file relative to the directory holding its top-level package:
# this module is tests.live.test_posthog_python, so its filename is tests/live/test_posthog_python.py.
SOURCE = Path(__file__).relative_to(Path(__file__).parents[2]).as_posix()
MODULE = __name__


def here(function: str) -> PyFrame:
    return PyFrame(SOURCE, MODULE, function)


class OrderRejected(Exception):
    pass


def _fail_quantity(quantity: int) -> None:
    raise ValueError(f"bad quantity: {quantity}")


def _fail_lookup(sku: str) -> None:
    raise LookupError(f"unknown sku: {sku}")


def _fail_order(quantity: int) -> None:
    try:
        _fail_quantity(quantity)
    except ValueError as cause:
        raise OrderRejected(f"order rejected: {quantity}") from cause


def _capture(client: Posthog, fail: Callable[..., None], *args: Any) -> str:
    """Call ``fail`` and capture what it raises; returns the event's uuid."""
    try:
        fail(*args)
    except Exception as exc:
        event_uuid = client.capture_exception(exc, distinct_id="buyer-1")
        assert isinstance(event_uuid, str)
        return event_uuid
    raise AssertionError("nothing was raised")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("posthog") / "data") as live:
        yield live


@pytest.fixture
def project(server: Server, request: pytest.FixtureRequest) -> Project:
    return bootstrap(server.data_dir, request.node.name)


@pytest.fixture
def api(server: Server, project: Project) -> Api:
    return Api(server.url, project)


@contextmanager
def posthog(server: Server, project: Project, **options: Any) -> Iterator[tuple[Posthog, list[Exception]]]:
    """A client of the live server, and the upload errors it reported; shut down (flushed) at the end."""
    errors: list[Exception] = []
    client = Posthog(
        project.token, host=server.url, on_error=lambda error, batch: errors.append(error), max_retries=0, **options
    )
    try:
        yield client, errors
    finally:
        client.shutdown()


def by_name(issues: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    named = {issue["name"]: issue for issue in issues}
    assert len(named) == len(issues), issues
    return named


def assert_grouped(api: Api, issue: dict[str, Any], fingerprint: str, uuids: set[str]) -> list[dict[str, Any]]:
    """The issue has exactly this fingerprint, and exactly these events, each carrying it."""
    assert api.fingerprints(issue["id"]) == [fingerprint]
    events = api.events(issue["id"])
    assert {event["uuid"] for event in events} == uuids
    for event in events:
        assert event["properties"]["$exception_fingerprint"] == fingerprint
        assert event["properties"]["$exception_issue_id"] == issue["id"]
    return events


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_capture_exception_groups_by_type_and_frames(server: Server, project: Project, api: Api, gzip: bool):
    with posthog(server, project, gzip=gzip) as (client, errors):
        quantity = {_capture(client, _fail_quantity, 0) for _ in range(2)}
        lookup = {_capture(client, _fail_lookup, "sku-1")}
        client.flush()
    assert errors == []

    issues = by_name(api.wait_for_occurrences(3))
    assert set(issues) == {"ValueError", "LookupError"}
    assert issues["ValueError"]["description"] == "bad quantity: 0"
    assert issues["ValueError"]["aggregations"]["occurrences"] == 2
    assert issues["LookupError"]["description"] == "unknown sku: sku-1"
    assert issues["LookupError"]["aggregations"]["occurrences"] == 1
    assert all(issue["status"] == "active" and issue["library"] == "posthog-python" for issue in issues.values())

    value_error = python_fingerprint([("ValueError", [here("_capture"), here("_fail_quantity")])])
    events = assert_grouped(api, issues["ValueError"], value_error, quantity)
    lookup_error = python_fingerprint([("LookupError", [here("_capture"), here("_fail_lookup")])])
    assert_grouped(api, issues["LookupError"], lookup_error, lookup)

    # What the fingerprint was built from, as stored: the frames as the SDK sent them, resolved.
    [exception] = events[0]["properties"]["$exception_list"]
    assert exception["stacktrace"]["type"] == "resolved"
    frames = [(f["source"], f["module"], f["resolved_name"], f["in_app"]) for f in exception["stacktrace"]["frames"]]
    assert frames == [(SOURCE, MODULE, "_capture", True), (SOURCE, MODULE, "_fail_quantity", True)]


def test_chained_exception_fingerprint_covers_both_entries(server: Server, project: Project, api: Api):
    with posthog(server, project) as (client, errors):
        sent = {_capture(client, _fail_order, 0) for _ in range(2)}
        client.flush()
    assert errors == []

    [issue] = api.wait_for_occurrences(2)
    assert (issue["name"], issue["description"]) == ("OrderRejected", "order rejected: 0")
    # The outermost exception first (raised in _fail_order, caught in _capture), then its cause
    # (raised in _fail_quantity, caught in _fail_order).
    expected = python_fingerprint(
        [
            ("OrderRejected", [here("_capture"), here("_fail_order")]),
            ("ValueError", [here("_fail_order"), here("_fail_quantity")]),
        ]
    )
    events = assert_grouped(api, issue, expected, sent)
    exception_list = events[0]["properties"]["$exception_list"]
    assert [(e["type"], e["value"]) for e in exception_list] == [
        ("OrderRejected", "order rejected: 0"),
        ("ValueError", "bad quantity: 0"),
    ]
    assert exception_list[1]["mechanism"]["source"] == "cause"


AUTOCAPTURE_SCRIPT = """
import json
import sys
import threading

from posthog import Posthog

frames = []


def remember(args):
    # posthog-python's hook chains to the one it replaced: this sees the traceback it sent.
    tb = args.exc_traceback
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append([code.co_filename, tb.tb_frame.f_globals["__name__"], code.co_name])
        tb = tb.tb_next


threading.excepthook = remember
errors = []
client = Posthog(
    sys.argv[2], host=sys.argv[1], enable_exception_autocapture=True, max_retries=0,
    on_error=lambda error, batch: errors.append(repr(error)),
)


def parse_line(line):
    raise ValueError(f"cannot parse {line!r}")


def work():
    parse_line("qty=")


thread = threading.Thread(target=work)
thread.start()
thread.join()
client.flush()
client.shutdown()
print(json.dumps({"frames": frames, "errors": errors}))
"""


def sdk_filename(abs_path: str, module: str) -> str:
    """posthog-python's ``filename`` for a frame of a top-level module: the file's basename."""
    assert "." not in module, f"{module} is in a package; its filename would keep the package path"
    return Path(abs_path).name


def test_uncaught_thread_exception_is_autocaptured(server: Server, project: Project, api: Api, tmp_path: Path):
    script = tmp_path / "autocapture_app.py"
    script.write_text(AUTOCAPTURE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), server.url, project.token],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == []
    # threading's own frames (in_app left out by the SDK, so in-app to cymbal), then the script's.
    traceback = [PyFrame(sdk_filename(path, module), module, function) for path, module, function in report["frames"]]
    assert [frame.module for frame in traceback[:2]] == ["threading", "threading"]
    assert traceback[-2:] == [
        PyFrame("autocapture_app.py", "__main__", "work"),
        PyFrame("autocapture_app.py", "__main__", "parse_line"),
    ]

    [issue] = api.wait_for_occurrences(1)
    assert (issue["name"], issue["description"]) == ("ValueError", "cannot parse 'qty='")
    [event] = api.events(issue["id"])
    assert api.fingerprints(issue["id"]) == [python_fingerprint([("ValueError", traceback)])]
    properties = event["properties"]
    assert properties["$exception_fingerprint"] == python_fingerprint([("ValueError", traceback)])
    assert properties["$exception_level"] == "error"
    assert properties["$exception_source"] == "python.threading_excepthook"
    assert properties["$exception_handled"] is False
    assert properties["$exception_list"][0]["mechanism"]["type"] == "onuncaughtexception"


@pytest.mark.parametrize("compression", ["none", "gzip", "deflate", "zstd"])
def test_v1_protocol_is_accepted(
    server: Server, project: Project, api: Api, compression: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="posthog")
    with posthog(server, project, capture_mode="v1", capture_compression=compression) as (client, errors):
        sent = {_capture(client, _fail_quantity, 7) for _ in range(2)}
        client.flush()
    assert errors == []
    assert [record.getMessage() for record in caplog.records if record.name.startswith("posthog")] == []

    [issue] = api.wait_for_occurrences(2)
    assert (issue["name"], issue["description"]) == ("ValueError", "bad quantity: 7")
    expected = python_fingerprint([("ValueError", [here("_capture"), here("_fail_quantity")])])
    assert_grouped(api, issue, expected, sent)


def test_v1_events_get_lib_from_sdk_info_header(server: Server, project: Project, api: Api):
    # posthog-python's v1 events carry no $lib/$lib_version: the server is to take them from the
    # PostHog-Sdk-Info header ("posthog-python/7.91.1"), so the issue shows its library as with v0.
    with posthog(server, project, capture_mode="v1") as (client, errors):
        _capture(client, _fail_quantity, 3)
        client.flush()
    assert errors == []
    [issue] = api.wait_for_occurrences(1)
    [event] = api.events(issue["id"])
    properties = event["properties"]
    assert (properties.get("$lib"), properties.get("$lib_version")) == ("posthog-python", POSTHOG_VERSION)
    assert issue["library"] == "posthog-python"
