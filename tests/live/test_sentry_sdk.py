"""The real sentry-sdk against a live ``trapline serve``, configured with nothing but the DSN.

Each scenario runs in its own Python process (a fresh SDK, and uncaught exceptions need one):
``capture_exception`` of a chained exception, an uncaught exception, ``capture_message``, a
logged error, a custom fingerprint; and the same exception sent by posthog-python and by
sentry-sdk lands in the same issue with the same fingerprint. sentry-sdk compresses with
brotli here (the package is installed), so that path is covered too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.live.support import Api, Project, PyFrame, bootstrap, poll, python_fingerprint
from tests.server import Server, running_server

pytestmark = pytest.mark.slow

SHOP = """\
import sys

import sentry_sdk


class OrderRejected(Exception):
    pass


def parse_order(raw):
    return 100 // int(raw["qty"])


def handle(raw):
    try:
        return parse_order(raw)
    except ZeroDivisionError as cause:
        raise OrderRejected("order rejected: qty " + raw["qty"]) from cause


mode, target = sys.argv[1], sys.argv[2]
if mode == "posthog":
    from posthog import Posthog

    client = Posthog(sys.argv[3], host=target, sync_mode=True)
    try:
        handle({"qty": "0"})
    except Exception as error:
        client.capture_exception(error, distinct_id="buyer-1")
    client.shutdown()
    sys.exit(0)

sentry_sdk.init(dsn=target, release="shop@1.2.3", environment="test")
sentry_sdk.set_user({"id": "buyer-1", "email": "buyer@example.com"})
sentry_sdk.set_tag("region", "eu")
if mode == "capture":
    try:
        handle({"qty": "0"})
    except Exception as error:
        print(sentry_sdk.capture_exception(error))
elif mode == "message":
    print(sentry_sdk.capture_message("stock is running low", level="warning"))
elif mode == "logging":
    import logging

    logging.getLogger("shop.payments").error("card declined for order %s", 7)
elif mode == "fingerprint":
    for error in (KeyError("sku"), LookupError("no such sku")):
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = ["checkout-lookup"]
            try:
                raise error
            except Exception as caught:
                print(sentry_sdk.capture_exception(caught))
elif mode == "uncaught":
    sentry_sdk.flush()
    handle({"qty": "0"})  # sys.excepthook reports it, atexit flushes it
sentry_sdk.flush(5)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("sentry") / "data") as live:
        yield live


@pytest.fixture
def project(server: Server, request: pytest.FixtureRequest) -> Project:
    made = bootstrap(server.data_dir, request.node.name)
    # bootstrap names the default public URL; this server listens on a port of its own.
    key = urlsplit(made.sentry_dsn).username
    return replace(made, sentry_dsn=f"http://{key}@{urlsplit(server.url).netloc}/{made.id}")


@pytest.fixture
def api(server: Server, project: Project) -> Api:
    return Api(server.url, project)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    script = tmp_path / "shop.py"
    script.write_text(SHOP)
    return script


def run(shop: Path, *args: str, fails: bool = False) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(shop), *args], capture_output=True, text=True, timeout=60, check=False, cwd=shop.parent
    )
    assert (result.returncode != 0) == fails, result.stdout + result.stderr
    return result.stdout.split()


def issues_by_name(api: Api, count: int) -> dict[str, dict[str, Any]]:
    found = poll(api.issues, lambda issues: len(issues) >= count, f"{count} issues")
    assert len(found) == count, found
    return {issue["name"]: issue for issue in found}


# The script's frames, oldest first, as both SDKs describe them: (filename, module, function).
HANDLE = [PyFrame("shop.py", "__main__", "<module>"), PyFrame("shop.py", "__main__", "handle")]
CAUSE = [PyFrame("shop.py", "__main__", "handle"), PyFrame("shop.py", "__main__", "parse_order")]
EXPECTED = python_fingerprint([("OrderRejected", HANDLE), ("ZeroDivisionError", CAUSE)])


def test_capture_exception_of_a_chained_exception(server: Server, project: Project, api: Api, shop: Path):
    [event_id] = run(shop, "capture", project.sentry_dsn)
    [issue] = issues_by_name(api, 1).values()
    assert (issue["name"], issue["description"]) == ("OrderRejected", "order rejected: qty 0")
    [event] = api.events(issue["id"])
    assert event["uuid"].replace("-", "") == event_id
    props = event["properties"]
    assert props["$exception_types"] == ["OrderRejected", "ZeroDivisionError"]
    assert props["$exception_fingerprint"] == EXPECTED
    assert props["$exception_handled"] is True
    assert props["$lib"].startswith("sentry.python")  # ".flask" and the like when a framework is installed
    assert props["$app_version"] == "shop@1.2.3" and props["$environment"] == "test"
    assert event["distinct_id"] == "buyer-1" and props["email"] == "buyer@example.com"
    assert props["region"] == "eu"
    frame = props["$exception_list"][0]["stacktrace"]["frames"][-1]
    assert (frame["source"], frame["resolved_name"], frame["line"]) == ("shop.py", "handle", 18)


def test_an_uncaught_exception_is_reported_unhandled(server: Server, project: Project, api: Api, shop: Path):
    run(shop, "uncaught", project.sentry_dsn, fails=True)
    [issue] = issues_by_name(api, 1).values()
    assert issue["name"] == "OrderRejected"
    [event] = api.events(issue["id"])
    assert event["properties"]["$exception_handled"] is False
    assert event["properties"]["$exception_list"][0]["mechanism"]["type"] == "excepthook"
    assert event["properties"]["$exception_fingerprint"] == EXPECTED


def test_capture_message_and_a_logged_error_become_issues(server: Server, project: Project, api: Api, shop: Path):
    run(shop, "message", project.sentry_dsn)
    run(shop, "logging", project.sentry_dsn)
    found = issues_by_name(api, 2)
    assert found["Warning"]["description"] == "stock is running low"
    assert found["shop.payments"]["description"] == "card declined for order 7"
    [warning] = api.events(found["Warning"]["id"])
    assert warning["properties"]["$exception_level"] == "warning"
    [logged] = api.events(found["shop.payments"]["id"])
    assert logged["properties"]["$exception_level"] == "error"


def test_a_custom_fingerprint_groups_different_exceptions(server: Server, project: Project, api: Api, shop: Path):
    ids = run(shop, "fingerprint", project.sentry_dsn)
    assert len(ids) == 2
    issue = poll(api.issues, lambda found: bool(found) and found[0]["aggregations"]["occurrences"] == 2, "2 events")
    [only] = issue
    assert api.fingerprints(only["id"]) == ["checkout-lookup"]
    assert {e["properties"]["$exception_types"][0] for e in api.events(only["id"])} == {"KeyError", "LookupError"}


def test_posthog_python_and_sentry_sdk_give_the_same_fingerprint(
    server: Server, project: Project, api: Api, shop: Path
):
    run(shop, "posthog", server.url, project.token)
    run(shop, "capture", project.sentry_dsn)
    issues = poll(
        api.issues, lambda found: sum(int(i["aggregations"]["occurrences"]) for i in found) >= 2, "both events"
    )
    [issue] = issues  # one issue: the same fingerprint
    events = api.events(issue["id"])
    assert sorted(e["properties"]["$lib"].split(".flask")[0] for e in events) == ["posthog-python", "sentry.python"]
    assert {e["properties"]["$exception_fingerprint"] for e in events} == {EXPECTED}
    assert api.fingerprints(issue["id"]) == [EXPECTED]
