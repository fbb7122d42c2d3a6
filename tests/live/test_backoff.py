"""The real SDKs back off as docs/drafts/sdk-backoff.md says, when capture refuses.

Each SDK talks to a counting proxy in front of a live ``trapline serve`` (tests/live/proxy.py),
so what it did is counted where it arrives: which requests, when, and what they were answered.
Two refusals: a project whose rate limit is spent (429), and an installation whose queue is
backed up (503; the server runs no workers, so whatever is queued stays). The door learns of
either from state it reads at most once a second after a request, so tests that need it to
refuse from the SDK's first request on make sure of it first, with requests of their own sent
around the proxy.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import brotli
import httpx
import pytest
from posthog import Posthog
from sentry_sdk.envelope import Envelope

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium, static_sites
from tests.js import npm_packages
from tests.live.proxy import CountingProxy, Exchange, counting_proxy
from tests.live.support import (
    Api,
    Project,
    bootstrap,
    exception_event,
    poll,
    post_batch,
    sqlite_url,
    start_worker,
    stored_state,
    workers,
)
from tests.server import Server, running_server
from trapline.ingest.capture import CAPTURE_PATHS
from trapline.ingest.decode import Limits, decode_capture

pytestmark = pytest.mark.slow

# The project's budget in these tests: one event an hour, spent by the first event.
LIMIT = {"project_rate_limit_value": 1, "project_rate_limit_bucket_size_minutes": 60}
# The installation in trouble: no workers, and more than one waiting event is a backlog.
# What Trapline asks SDKs to wait when the queue is backed up: 30 s by default, less here so that
# the SDK's retry comes sooner (but after the 5 s the Sentry script runs for).
QUEUE_RETRY_AFTER = 8
BACKED_UP = {
    "TRAPLINE_WORKERS": "0",
    "TRAPLINE_QUEUE_MAX_EVENTS": "1",
    "TRAPLINE_QUEUE_RETRY_AFTER_SECONDS": str(QUEUE_RETRY_AFTER),
}
POSTHOG_MAX_BACKOFF = 30  # posthog-python's and posthog-js's cap on Retry-After
POSTHOG_JS_QUOTA_PAUSE = 60  # seconds posthog-js pauses a batch key named in quota_limited

SENTRY_SCRIPT = """\
import json
import sys
import time

import sentry_sdk

dsn, seconds = sys.argv[1], float(sys.argv[2])
sentry_sdk.init(dsn=dsn)
captured = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        raise RuntimeError(f"checkout failed #{captured}")
    except RuntimeError as error:
        sentry_sdk.capture_exception(error)
    captured += 1
    sentry_sdk.flush(2)
    time.sleep(0.2)
print(json.dumps({"captured": captured}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with its worker, which counts events against the projects' budgets."""
    with running_server(tmp_path_factory.mktemp("backoff") / "data") as live:
        yield live


@pytest.fixture
def js_server(tmp_path: Path) -> Iterator[Server]:
    """The same, serving posthog-js (``/static/array.js``) too."""
    with running_server(tmp_path / "data", {"TRAPLINE_POSTHOG_JS_DIST": str(npm_packages() / "posthog-js")}) as live:
        yield live


@pytest.fixture
def backed_up_server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "data", BACKED_UP) as live:
        yield live


# --- bringing the door to refuse ----------------------------------------------------------------


def limit_project(server: Server, project: Project) -> None:
    Api(server.url, project).update_settings(**LIMIT)


def clear_of_bucket_end(margin: float = 45) -> None:
    """Wait for the next hour if this one ends within ``margin`` seconds: the limit lifts then."""
    left = 3600 - time.time() % 3600
    if left < margin:
        time.sleep(left + 1)


def refused_directly(server: Server, project: Project, status: int, events: int = 1) -> httpx.Response:
    """Post ``$exception`` events straight to the server until it answers ``status``."""

    def post() -> httpx.Response:
        time.sleep(0.25)  # the door reads its state at most once a second
        return post_batch(server.url, project.token, [exception_event(n) for n in range(events)])

    return poll(post, lambda response: response.status_code == status, f"capture to answer {status}")


def spend_budget(server: Server, project: Project) -> None:
    """Limit the project to one event an hour and spend it; the door refuses once it returns."""
    clear_of_bucket_end()
    limit_project(server, project)
    refused_directly(server, project, 429)


def back_up(server: Server, project: Project) -> None:
    """Queue more events than the server takes (it has no workers) until capture answers 503."""
    refused_directly(server, project, 503, events=2)


# --- what the requests carried -----------------------------------------------------------------

LIMITS = Limits(max_body_bytes=20_000_000, max_decompressed_bytes=100_000_000, max_event_bytes=10_000_000)


def posthog_events(exchange: Exchange) -> list[str]:
    """The names of the events a PostHog capture request carried, however it was encoded."""
    if exchange.method != "POST" or urlsplit(exchange.path).path not in CAPTURE_PATHS:
        return []
    batch = decode_capture(
        exchange.body,
        content_type=exchange.headers.get("content-type"),
        content_encoding=exchange.headers.get("content-encoding"),
        query=dict(parse_qsl(urlsplit(exchange.path).query)),
        limits=LIMITS,
    )
    return [str(event.get("event")) for event in batch.events]


def envelope(exchange: Exchange) -> Envelope:
    """A Sentry envelope, decompressed as sentry-sdk compressed it."""
    body = exchange.body
    encoding = exchange.headers.get("content-encoding", "")
    if encoding == "br":
        body = brotli.decompress(body)
    elif encoding == "gzip":
        body = gzip.decompress(body)
    return Envelope.deserialize(body)


def envelope_items(exchange: Exchange) -> list[str]:
    return [str(item.headers.get("type")) for item in envelope(exchange).items]


def reported_drops(exchange: Exchange) -> list[tuple[str, str, int]]:
    """What the SDK's client reports in an envelope say it dropped: (reason, category, quantity)."""
    found = []
    for item in envelope(exchange).items:
        if item.headers.get("type") == "client_report":
            report = json.loads(item.get_bytes())
            found += [(d["reason"], d["category"], int(d["quantity"])) for d in report["discarded_events"]]
    return found


def sentry_dsn(project: Project, proxy: CountingProxy) -> str:
    key = urlsplit(project.sentry_dsn).username
    return f"http://{key}@{urlsplit(proxy.url).netloc}/{project.id}"


def run_sentry(tmp_path: Path, dsn: str, seconds: float) -> int:
    """Capture an exception every 0.2 s for ``seconds`` in a fresh process; how many it captured."""
    script = tmp_path / "flood.py"
    script.write_text(SENTRY_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), dsn, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    captured: int = json.loads(result.stdout.splitlines()[-1])["captured"]
    return captured


# --- sentry-sdk --------------------------------------------------------------------------------


def test_sentry_sdk_stops_sending_errors_once_the_project_limit_is_announced(server: Server, tmp_path: Path) -> None:
    project = bootstrap(server.data_dir, "sentry over budget")
    clear_of_bucket_end()
    limit_project(server, project)  # spent by the SDK's first event

    with counting_proxy(server.url) as proxy:
        captured = run_sentry(tmp_path, sentry_dsn(project, proxy), seconds=8)
    envelopes = proxy.exchanges(f"/api/{project.id}/envelope/")
    with_events = [e for e in envelopes if "event" in envelope_items(e)]
    statuses = [e.status for e in with_events]

    # Some events get in before the door learns that the first one spent the budget, then one
    # is refused, and the SDK sends no error again: the limit it was told lasts to the hour's end.
    assert statuses[0] == 200 and statuses[-1] == 429, proxy.log()
    assert statuses.count(429) == 1 and set(statuses) == {200, 429}, proxy.log()
    refused = with_events[-1]
    seconds, categories, scope, reason = (refused.rate_limits or "").split(":")
    assert (categories, scope, reason) == ("error", "project", "rate_limited_project"), refused.rate_limits
    assert int(seconds) > 10 and refused.retry_after == seconds  # outlasts the run
    assert refused.at - envelopes[0].at < 5, proxy.log()
    # The script went on capturing all along, and the SDK dropped those events itself. What it
    # sent instead are its reports of them: ``flush()`` sends the pending report at once, so
    # there is one per flush (the ``internal`` category is not limited). How many it captured
    # depends on how fast a loaded machine flushes, so the bound is on what it kept to itself.
    assert captured - len(with_events) >= 10 and captured > 2 * len(with_events), (captured, proxy.log())
    after = [e for e in envelopes if e.at > refused.done]
    assert all(envelope_items(e) == ["client_report"] for e in after), proxy.log()
    drops = [drop for e in after for drop in reported_drops(e)]
    assert {(reason, category) for reason, category, _ in drops} == {("ratelimit_backoff", "error")}
    # Every capture is accounted for: sent, or dropped for the limit (the refused one is neither:
    # the SDK takes a 429 as counted by the server).
    assert len(with_events) + sum(quantity for _, _, quantity in drops) == captured, proxy.log()


def test_sentry_sdk_sends_nothing_while_the_installation_is_backed_up(backed_up_server: Server, tmp_path: Path) -> None:
    project = bootstrap(backed_up_server.data_dir, "sentry backed up")
    back_up(backed_up_server, project)

    with counting_proxy(backed_up_server.url) as proxy:
        captured = run_sentry(tmp_path, sentry_dsn(project, proxy), seconds=5)

    # One envelope, refused for QUEUE_RETRY_AFTER s in every category (client reports too): nothing else.
    [refused] = proxy.exchanges()
    assert envelope_items(refused) == ["event"]
    assert refused.status == 503
    assert refused.rate_limits == f"{QUEUE_RETRY_AFTER}::organization:queue_backlog"
    assert refused.retry_after == str(QUEUE_RETRY_AFTER)
    assert captured >= 20


# --- posthog-python ----------------------------------------------------------------------------


@dataclass
class Errors:
    """What a posthog-python client reported through ``on_error`` (it calls it once a batch is dropped)."""

    seen: list[Exception]

    def __call__(self, error: Exception, batch: Any) -> None:
        self.seen.append(error)


def test_posthog_python_resends_after_retry_after_once_the_queue_drains(
    backed_up_server: Server, tmp_path: Path
) -> None:
    server = backed_up_server
    project = bootstrap(server.data_dir, "posthog backed up")
    back_up(server, project)

    errors = Errors([])
    with counting_proxy(server.url) as proxy, workers([]) as started, stored_state(sqlite_url(server.data_dir)) as db:
        # Sent at once (not 5 s later), with one retry: it is the one, Retry-After later, that must
        # get in (the default 3 would only add more of the same, and make a failure take minutes).
        client = Posthog(project.token, host=proxy.url, on_error=errors, max_retries=1, flush_at=1)
        try:
            try:
                raise LookupError("unknown sku while backed up")
            except LookupError as error:
                sent = client.capture_exception(error, distinct_id="buyer-1")
            assert sent is not None
            first = poll(lambda: proxy.exchanges("/batch"), bool, "the SDK's first request", timeout=10)[0]
            assert (first.status, first.retry_after) == (503, str(QUEUE_RETRY_AFTER)), proxy.log()
            assert json.loads(first.response_body)["code"] == "queue_backlog"

            # The server recovers: a worker drains the queue while the SDK waits.
            started.append(start_worker(server.data_dir, tmp_path / "worker.log", {}))
            poll(db.queue_length, lambda waiting: waiting == 0, "the queue to drain")

            retried = poll(lambda: proxy.exchanges("/batch"), lambda found: len(found) >= 2, "a retry", timeout=45)
            assert retried[1].status == 200, proxy.log()
            assert QUEUE_RETRY_AFTER - 0.5 <= retried[1].at - first.at <= QUEUE_RETRY_AFTER + 2, proxy.log()
            poll(db.stored_uuids, lambda stored: any(str(u) == sent for u in stored), "the event to be stored")
        finally:
            client.shutdown()
    assert errors.seen == [] and len(proxy.exchanges("/batch")) == 2, proxy.log()


def test_posthog_python_retries_a_429_after_retry_after_then_drops_the_batch(server: Server) -> None:
    project = bootstrap(server.data_dir, "posthog over budget")
    spend_budget(server, project)

    errors = Errors([])
    with counting_proxy(server.url) as proxy:
        client = Posthog(project.token, host=proxy.url, on_error=errors, max_retries=1, flush_at=1)
        try:
            try:
                raise LookupError("unknown sku over budget")
            except LookupError as error:
                client.capture_exception(error, distinct_id="buyer-1")
            poll(lambda: errors.seen, bool, "the batch to be dropped", timeout=45)
            time.sleep(1.5)  # room for a request that should not come
        finally:
            client.shutdown()
    first, retry = proxy.exchanges("/batch")  # one try, one retry, nothing more
    assert [first.status, retry.status] == [429, 429], proxy.log()
    assert first.retry_after is not None
    wait = min(int(first.retry_after), POSTHOG_MAX_BACKOFF)
    assert wait - 0.5 <= retry.at - first.at <= wait + 2, proxy.log()
    [dropped] = errors.seen
    assert getattr(dropped, "status", None) == 429


# --- posthog-js --------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><body>
<script src="{proxy}/static/array.js"></script>
<script>
posthog.init({token}, {{api_host: {proxy_json}, opt_out_useragent_filter: true,
                        request_queue_config: {{flush_interval_ms: 250}}}});
</script>
</body></html>
"""


def exceptions_sent(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if "$exception" in posthog_events(e)]


@needs_chromium
def test_posthog_js_pauses_exceptions_and_keeps_sending_other_events(js_server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = js_server
    project = bootstrap(server.data_dir, "posthog-js over budget")
    spend_budget(server, project)

    with counting_proxy(server.url) as proxy, static_sites() as serve, sync_playwright() as playwright:
        root = tmp_path / "site"
        root.mkdir()
        (root / "index.html").write_text(
            PAGE.format(proxy=proxy.url, proxy_json=json.dumps(proxy.url), token=json.dumps(project.token))
        )
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{serve(root)}/index.html")
            page.wait_for_function("() => Boolean(window.posthog && window.posthog.__loaded)", timeout=20_000)
            page.evaluate("() => posthog.captureException(new Error('over budget 0'))")
            [refused] = poll(
                lambda: exceptions_sent(proxy.exchanges()), bool, "the first exception to be sent", timeout=15
            )
            # Within the next seconds: more exceptions, and other events, twice.
            for round_ in (1, 2):
                page.evaluate(
                    f"""() => {{
                        posthog.captureException(new Error('over budget {round_}'));
                        posthog.captureException(new TypeError('still over budget {round_}'));
                        posthog.capture('checkout_started', {{round: {round_}}});
                        posthog.capture('$pageview');
                    }}"""
                )
                page.wait_for_timeout(4000)
            paused_for_ms = page.evaluate("() => posthog.rateLimiter.serverLimits.exceptionEvent - Date.now()")
        finally:
            browser.close()

    assert refused.status == 429, proxy.log()
    body = json.loads(refused.response_body)
    assert (body["code"], body["quota_limited"]) == ("rate_limited_project", ["exceptionEvent"])
    assert refused.retry_after is not None and int(refused.retry_after) > 10
    assert "retry-after" in refused.response_headers.get("access-control-expose-headers", "")
    after = [e for e in proxy.exchanges() if e.at > refused.done]
    assert exceptions_sent(after) == [], proxy.log()  # neither retried nor sent anew
    others = [name for e in after if e.status == 200 for name in posthog_events(e)]
    assert others.count("checkout_started") == 2 and "$pageview" in others, proxy.log()
    # The pause is posthog-js's own minute, whatever Retry-After said.
    assert (POSTHOG_JS_QUOTA_PAUSE - 15) * 1000 < paused_for_ms <= POSTHOG_JS_QUOTA_PAUSE * 1000
