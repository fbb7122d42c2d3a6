"""A live Trapline holding real issues from real SDKs, for the MCP server's tests.

``live_trapline`` (session-scoped; registered by tests/mcp/conftest.py) starts ``trapline serve``
with its worker, as the other live tests do, and seeds it from the outside only:

- project "Shop" (organization "Live"): two issues captured by the real posthog-python with
  code variables on (one raised in a function with locals, one chained with ``raise … from``),
  and, when Chromium is installed, one uncaught error thrown by a minified esbuild bundle in
  headless Chromium with the real posthog-js, its source maps injected and uploaded with
  ``trapline sourcemap process``;
- project "Warehouse" in another organization, of another user, with one posthog-python issue;
- three personal API keys: the main organization's full-scope key (``trapline bootstrap``),
  a read-only one (``error_tracking:read``) made on the web UI's account page as a person
  would, and the other organization's key.

The expected crash frames are the ground truth the tests compare against: for python they
come from the traceback the interpreter raised, for JavaScript from the original source text;
neither from anything Trapline computed.

SQLite only, unlike tests/live's ``backend`` fixture that runs each test on PostgreSQL too:
the MCP tools reach Trapline only through its REST API (see trapline.mcp.api), whose
behaviour on each backend the API and live tests already cover, and doubling a ~15 s
setup for each test process would buy nothing the MCP tests check.
``seed_live_trapline`` takes ``extra_env`` so a test that does care can pass
``TRAPLINE_DATABASE_URL``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import httpx
import pytest
from posthog import Posthog

from tests.e2e.browser import AUTOCAPTURE_READY, CHROMIUM, CHROMIUM_ARGS, static_sites
from tests.e2e.test_sourcemaps import build
from tests.live.support import Api, Project, bootstrap, poll, sourcemap_process
from tests.server import Server, run_trapline, running_server, trapline_env

__all__ = ["Keys", "LiveTrapline", "SeededIssue", "auth", "live_trapline", "seed_live_trapline"]

# tests.live.support.bootstrap always signs up this user in organization "Live"; the web UI
# sign-in (for the read-only key) needs the same credentials.
EMAIL = "live@example.com"
PASSWORD = "password123"
OTHER_EMAIL = "other@example.com"
OTHER_ORGANIZATION = "Elsewhere"

# posthog-python names a frame's file relative to the folder holding its top-level package.
PY_SOURCE = Path(__file__).relative_to(Path(__file__).parents[2]).as_posix()  # tests/mcp/live.py


@dataclass(frozen=True)
class SeededIssue:
    """One issue the fixture made, and what its crash frame (the throw site) must show."""

    issue_id: str
    project_id: int
    exception_type: str  # the issue's name
    message: str  # the issue's description
    function: str  # original function of the crash frame
    file: str  # original file: python's as posthog-python names it, JS's as the source map lists it
    line: int  # 1-based line of the throw in the original file
    source_line: str | None = None  # JS: the original line's text (source context)
    cause_type: str | None = None  # chained: the cause's type (second $exception_list entry)
    # python: the crash frame's locals as the interpreter held them, which posthog-python sends as
    # code variables (read-only view; empty for JS, which sends none)
    code_variables: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Keys:
    full: str  # main org, scopes ["*"]
    read_only: str  # main org, scopes ["error_tracking:read"]
    other_org: str  # the other org's own key (["*"]); its user is not a member of the main org


@dataclass(frozen=True)
class LiveTrapline:
    url: str
    data_dir: Path
    project_id: int  # "Shop", organization "Live"
    project_token: str
    other_project_id: int  # "Warehouse", organization "Elsewhere"
    other_project_token: str
    keys: Keys
    email: str  # the main org's user, for web UI sign-in
    password: str
    python_locals: SeededIssue  # ValueError in reserve_stock, with code variables
    python_chained: SeededIssue  # PaymentDeclined from ConnectionError, in pay_order
    other_org_issue: SeededIssue  # TimeoutError in sync_inventory, in the other project
    js_minified: SeededIssue | None  # RangeError in applyCoupon (src/checkout.js); None without Chromium
    js_skipped: str | None  # why the JS issue is missing, else None

    @property
    def issues(self) -> tuple[SeededIssue, ...]:
        """The main project's seeded issues."""
        found = (self.python_locals, self.python_chained, self.js_minified)
        return tuple(issue for issue in found if issue is not None)

    def require_js(self) -> SeededIssue:
        """The JS issue, or skip the calling test saying why there is none."""
        if self.js_minified is None:
            pytest.skip(f"no minified posthog-js issue: {self.js_skipped}")
        return self.js_minified


# --- the python code whose exceptions posthog-python captures -----------------------------------
# Real functions of this module, so the frames posthog-python sends are ordinary in-app frames
# (source tests/mcp/live.py, module tests.mcp.live) with their locals.


class PaymentDeclined(Exception):
    pass


def reserve_stock(sku: str, quantity: int) -> None:
    warehouse = "eu-west"
    available = 3
    if quantity > available:
        raise ValueError(f"only {available} of {sku} left in {warehouse}")


def charge_card(amount_cents: int) -> None:
    raise ConnectionError(f"card processor unreachable charging {amount_cents}")


def pay_order(order_id: str, amount_cents: int) -> None:
    try:
        charge_card(amount_cents)
    except ConnectionError as cause:
        raise PaymentDeclined(f"order {order_id} was not paid") from cause


def sync_inventory(feed: str) -> None:
    raise TimeoutError(f"inventory feed {feed} timed out")


@dataclass(frozen=True)
class _Raised:
    exception: BaseException
    function: str
    line: int
    local_values: Mapping[str, object]


def _raise(fail: Any, *args: Any) -> _Raised:
    """Call ``fail``; what it raised and where (the traceback's last frame: the throw site)."""
    try:
        fail(*args)
    except Exception as exc:
        tb: TracebackType | None = exc.__traceback__
        assert tb is not None
        while tb.tb_next is not None:
            tb = tb.tb_next
        # Only plain values: posthog-python sends those as they are (others as their repr).
        plain = {k: v for k, v in tb.tb_frame.f_locals.items() if isinstance(v, (str, int, float, bool))}
        return _Raised(exc, tb.tb_frame.f_code.co_name, tb.tb_lineno, MappingProxyType(plain))
    raise AssertionError(f"{fail.__name__} raised nothing")


def _capture_python(url: str, token: str, raised: list[_Raised]) -> None:
    """Send ``raised`` with the real SDK, code variables on; fail on any upload error."""
    errors: list[Exception] = []
    client = Posthog(
        token, host=url, max_retries=0, capture_exception_code_variables=True,
        on_error=lambda error, batch: errors.append(error),
    )  # fmt: skip
    try:
        for one in raised:
            assert client.capture_exception(one.exception, distinct_id="buyer-1")
        client.flush()
    finally:
        client.shutdown()
    assert errors == [], errors


# --- the minified posthog-js app ---------------------------------------------------------------

CHECKOUT_JS = """\
const COUPONS = { SPRING10: { rate: 0.1, expired: true } };

export function applyCoupon(cart, code) {
  const coupon = COUPONS[code];
  if (!coupon || coupon.expired) {
    throw new RangeError("coupon " + code + " has expired");
  }
  return cart.total * (1 - coupon.rate);
}

export function checkout(cart) {
  return applyCoupon(cart, cart.coupon);
}
"""
JS_THROW_LINE = next(n for n, text in enumerate(CHECKOUT_JS.splitlines(), 1) if "throw new" in text)
JS_MESSAGE = "coupon SPRING10 has expired"

APP_JS = """\
import posthog from "posthog-js";
import "posthog-js/dist/exception-autocapture";
import {{ checkout }} from "./checkout.js";

posthog.init({token}, {{
  api_host: {host},
  capture_exceptions: true,
  autocapture: false,
  capture_pageview: false,
  disable_session_recording: true,
  request_batching: false,
  opt_out_useragent_filter: true, // headless Chromium looks like a bot to posthog-js
}});
window.posthog = posthog; // for the fixture to see when it is ready
document.getElementById("pay").addEventListener("click", () => checkout({{ total: 40, coupon: "SPRING10" }}));
"""


def _js_unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (make test installs Debian's chromium)"
    return None


def _throw_in_browser(server: Server, project: Project, root: Path) -> str:
    """Build, inject and upload the app, then click the button that throws, in Chromium;
    returns the original file's name as the source map lists it."""
    from playwright.sync_api import sync_playwright

    (root / "src").mkdir(parents=True)
    (root / "src" / "checkout.js").write_text(CHECKOUT_JS)
    (root / "src" / "app.js").write_text(APP_JS.format(token=json.dumps(project.token), host=json.dumps(server.url)))
    dist = build(root, "src/app.js", "--format=iife")
    (dist / "index.html").write_text('<button id="pay">Pay</button><script src="app.js"></script>')
    sourcemap_process(server.url, project, dist, server.data_dir)
    # The file as the frame will name it: esbuild lists sources relative to the map (../src/…).
    sources: list[str] = json.loads((dist / "app.js.map").read_text())["sources"]
    [source] = [name for name in sources if name.endswith("/checkout.js")]
    api = Api(server.url, project)
    seen: list[str] = []
    with static_sites() as serve, sync_playwright() as playwright:
        site = serve(dist)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
            page.on("requestfailed", lambda request: seen.append(f"FAILED {request.method} {request.url}"))
            page.goto(f"{site}/index.html")
            page.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
            page.click("#pay")
            # The page stays open until the event is processed: closing it could drop the send.
            try:
                poll(api.issues, lambda found: any(i["name"] == "RangeError" for i in found), "the browser's error")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nthe page did:\n" + "\n".join(seen)) from None
        finally:
            browser.close()
    return source


# --- keys and the other organization -----------------------------------------------------------


def _bootstrap_other(server: Server) -> Project:
    """tests.live.support.bootstrap with another user and organization (it fixes both)."""
    result = run_trapline(
        "bootstrap", "--email", OTHER_EMAIL, "--password", PASSWORD,
        "--organization", OTHER_ORGANIZATION, "--project", "Warehouse", "--json",
        env=trapline_env(server.data_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    creds = json.loads(result.stdout)
    return Project(int(creds["project_id"]), creds["project_api_token"], creds["personal_api_key"])


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


def _read_only_key(server: Server) -> str:
    """A key with error_tracking:read only, made as a person makes one: signed in to the web UI,
    on the account page (there is no CLI for chosen scopes; bootstrap always grants "*")."""
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/login")
        signed_in = browser.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": _csrf(form.text)})
        assert signed_in.status_code == 303, signed_in.text
        account = browser.get("/account")
        assert account.status_code == 200, account.text
        # The user belongs to organization "Live" only, so the select has one option.
        [org_id] = re.findall(r'<option value="([^"]+)">Live</option>', account.text)
        made = browser.post(
            "/account/keys",
            data={
                "label": "MCP read-only",
                "organization_id": org_id,
                "scopes": ["error_tracking:read"],
                "csrf_token": _csrf(account.text),
            },
        )
        assert made.status_code == 200, made.text
        key = re.search(r'value="(phx_[A-Za-z0-9]+)"', made.text)
        assert key, made.text
        return key[1]


# --- seeding -----------------------------------------------------------------------------------


def _issue_ids(url: str, project: Project, names: set[str]) -> dict[str, str]:
    """Issue id by name, once every one of ``names`` has been processed into an issue."""
    api = Api(url, project)
    found = poll(api.issues, lambda issues: names <= {i["name"] for i in issues}, f"issues {sorted(names)}")
    by_name = {issue["name"]: issue["id"] for issue in found}
    assert len(by_name) == len(found), found  # one issue per name: the ground truth is unambiguous
    return by_name


def _python_issue(issue_id: str, project_id: int, raised: _Raised, **extra: Any) -> SeededIssue:
    return SeededIssue(
        issue_id=issue_id,
        project_id=project_id,
        exception_type=type(raised.exception).__name__,
        message=str(raised.exception),
        function=raised.function,
        file=PY_SOURCE,
        line=raised.line,
        code_variables=raised.local_values,
        **extra,
    )


def seed_live_trapline(server: Server, work: Path) -> LiveTrapline:
    """Seed a running server (projects, keys, issues); returns what was made."""
    main = bootstrap(server.data_dir, "Shop")
    other = _bootstrap_other(server)
    read_only = _read_only_key(server)

    stock = _raise(reserve_stock, "sku-42", 5)
    payment = _raise(pay_order, "order-7", 4200)
    inventory = _raise(sync_inventory, "nightly")
    _capture_python(server.url, main.token, [stock, payment])
    _capture_python(server.url, other.token, [inventory])

    js_skipped = _js_unavailable()
    js_file = ""
    if js_skipped is None:
        try:
            js_file = _throw_in_browser(server, main, work / "web")
        except pytest.skip.Exception as skipped:  # tests.js skips when npm is missing
            js_skipped = str(skipped)

    expected = {"ValueError", "PaymentDeclined"} | ({"RangeError"} if js_skipped is None else set())
    ids = _issue_ids(server.url, main, expected)
    [other_id] = _issue_ids(server.url, other, {"TimeoutError"}).values()

    js = None
    if js_skipped is None:
        js = SeededIssue(
            issue_id=ids["RangeError"],
            project_id=main.id,
            exception_type="RangeError",
            message=JS_MESSAGE,
            function="applyCoupon",
            file=js_file,
            line=JS_THROW_LINE,
            source_line=CHECKOUT_JS.splitlines()[JS_THROW_LINE - 1],
        )
    return LiveTrapline(
        url=server.url,
        data_dir=server.data_dir,
        project_id=main.id,
        project_token=main.token,
        other_project_id=other.id,
        other_project_token=other.token,
        keys=Keys(full=main.api_key, read_only=read_only, other_org=other.api_key),
        email=EMAIL,
        password=PASSWORD,
        python_locals=_python_issue(ids["ValueError"], main.id, stock),
        python_chained=_python_issue(ids["PaymentDeclined"], main.id, payment, cause_type="ConnectionError"),
        other_org_issue=_python_issue(other_id, other.id, inventory),
        js_minified=js,
        js_skipped=js_skipped,
    )


@pytest.fixture(scope="session")
def live_trapline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTrapline]:
    """A running ``trapline serve`` (with its worker) seeded as this module describes.

    One per test process, shared by every MCP test module (tests put back what they change):
    seeding takes ~15 s, a third of what the MCP tests cost in CI."""
    root = tmp_path_factory.mktemp("mcp-live")
    started = time.monotonic()
    with running_server(root / "data") as server:
        live = seed_live_trapline(server, root)
        # Shown with -rA or on failure: how long the seeding took, and what was left out.
        print(f"live_trapline seeded in {time.monotonic() - started:.1f}s; js skipped: {live.js_skipped}")
        yield live


def auth(key: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {key}"}
