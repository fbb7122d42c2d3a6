"""The web UI in headless Chromium, on errors a real SDK sent: sign in, read a resolved stack,
resolve, suppress with a rule, merge two issues and split one back out; and the same
pages read and act without JavaScript.

The shop page is a minified esbuild bundle of posthog-js and our code, its source maps
uploaded with `trapline sourcemap process`, so the issue page shows the original files and
function names. Screenshots of the main pages are written to ``screenshots/`` at the top of
the checkout (the README names it), each time the test runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import AUTOCAPTURE_READY, CHROMIUM, CHROMIUM_ARGS, needs_chromium, wait_for
from tests.e2e.test_sourcemaps import ORDERS, build
from tests.live.support import Project, bootstrap, sourcemap_process
from tests.server import Server, running_server

pytestmark = [pytest.mark.slow, needs_chromium]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
EMAIL, PASSWORD = "live@example.com", "password123"  # what tests.live.support.bootstrap creates

CART = """\
export function emptyCart(cart) {
  if (!cart.items.length) {
    throw new TypeError("the cart is empty");
  }
}

export function applyCoupon(code) {
  throw new Error("coupon " + code + " has expired");
}

export function shipOrder() {
  throw new SyntaxError("bad shipping address");
}
"""

APP = """\
import posthog from "posthog-js";
import "posthog-js/dist/exception-autocapture";
import {{ placeOrder }} from "./orders.js";
import {{ emptyCart, applyCoupon, shipOrder }} from "./cart.js";

posthog.init({token}, {{
  api_host: {host},
  autocapture: false,
  capture_pageview: false,
  disable_session_recording: true,
  request_batching: false,
  opt_out_useragent_filter: true, // headless Chromium looks like a bot to posthog-js
}});
window.posthog = posthog; // for the test to see when it is ready
const on = (id, handler) => document.getElementById(id).addEventListener("click", handler);
on("buy", () => placeOrder({{ qty: 0, price: 5 }}));
on("empty", () => emptyCart({{ items: [] }}));
on("coupon", () => applyCoupon("WINTER"));
on("ship", () => shipOrder());
"""
PAGE = """\
<button id="buy">Buy</button> <button id="empty">Check out</button>
<button id="coupon">Apply coupon</button> <button id="ship">Ship</button>
<script src="app.js"></script>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("ui") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    return bootstrap(server.data_dir, "Shop")


def shop(root: Path, server: Server, project: Project) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "orders.js").write_text(ORDERS)
    (root / "src" / "cart.js").write_text(CART)
    (root / "src" / "app.js").write_text(APP.format(token=json.dumps(project.token), host=json.dumps(server.url)))
    dist = build(root, "src/app.js", "--format=iife")
    (dist / "index.html").write_text(PAGE)
    sourcemap_process(server.url, project, dist, server.data_dir)
    return dist


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_triage_in_the_browser(server: Server, project: Project, tmp_path: Path, static_site: Callable[[Path], str]):
    from playwright.sync_api import expect, sync_playwright

    site = static_site(shop(tmp_path / "shop", server, project))
    inbox_url = f"{server.url}/project/{project.id}/error_tracking"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            app = browser.new_page()
            app.goto(f"{site}/index.html")
            app.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
            for button in ("#buy", "#empty"):
                app.click(button)

            ui = browser.new_page(viewport={"width": 1360, "height": 900})
            complaints: list[str] = []
            ui.on("console", lambda message: message.type == "error" and complaints.append(message.text))
            ui.on("pageerror", lambda error: complaints.append(str(error)))
            # Signing in: a page asked for before signing in is where the form leads back to.
            ui.goto(inbox_url)
            expect(ui).to_have_url(re.compile(r"/login\?next="))
            shot(ui, "login")
            ui.fill("#email", EMAIL)
            ui.fill("#password", PASSWORD)
            ui.click("button[type=submit]")
            expect(ui).to_have_url(inbox_url)

            def listed(name: str) -> bool:
                ui.goto(inbox_url)
                return ui.get_by_role("link", name=name, exact=True).count() > 0

            wait_for(lambda: listed("RangeError") and listed("TypeError"), "both issues in the inbox")
            ui.on("dialog", lambda dialog: dialog.accept())  # the confirmations of destructive actions
            shot(ui, "inbox")

            # The issue page reads the stack as the source map tells it, not as the browser ran it.
            ui.get_by_role("link", name="RangeError", exact=True).click()
            expect(ui.locator("h1")).to_contain_text("RangeError")
            stack = ui.locator("article.exception").first
            expect(stack).to_contain_text("validateQuantity")
            expect(stack).to_contain_text("src/orders.js")
            expect(stack).to_contain_text("placeOrder")
            expect(ui.get_by_text("quantity must be positive: 0").first).to_be_visible()
            shot(ui, "issue")
            ui.get_by_role("button", name="Resolve").click()
            expect(ui.locator(".notice")).to_be_visible()
            expect(ui.locator(".badge.resolved").first).to_be_visible()
            ui.goto(f"{inbox_url}?status=resolved")
            expect(ui.get_by_role("link", name="RangeError", exact=True)).to_be_visible()

            # A suppression rule made in the form drops the next coupon error; other errors still arrive.
            ui.goto(f"{server.url}/project/{project.id}/settings/suppression-rules")
            ui.fill("#key-1", "$exception_values")
            ui.select_option("#operator-1", "icontains")
            ui.fill("#value-1", "coupon")
            ui.locator("#rule-form button[type=submit].primary").click()
            expect(ui.locator(".notice")).to_be_visible()
            expect(ui.locator("main")).to_contain_text("coupon")
            shot(ui, "suppression-rules")
            app.reload()
            app.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
            app.click("#coupon")
            app.click("#ship")
            wait_for(lambda: listed("SyntaxError"), "the error sent after the coupon one")
            ui.goto(f"{inbox_url}?status=all")
            assert ui.get_by_role("link", name="Error", exact=True).count() == 0, "the coupon error was suppressed"

            # Merge TypeError into SyntaxError, then split TypeError's fingerprint back out.
            ui.goto(inbox_url)
            for name in ("SyntaxError", "TypeError"):
                ui.get_by_role("checkbox", name=f"Select {name}").check()
            ui.get_by_role("radio", name="Keep SyntaxError when merging").check()
            ui.get_by_role("button", name="Merge").click()
            expect(ui.locator(".notice")).to_contain_text("erged")
            expect(ui.get_by_role("link", name="TypeError", exact=True)).to_have_count(0)
            ui.get_by_role("link", name="SyntaxError", exact=True).click()
            splits = ui.get_by_role("button", name="Split out")
            expect(splits).to_have_count(2)
            shot(ui, "issue-fingerprints")
            # The fingerprint that came with TypeError is the one whose record names its type.
            row = ui.locator("form[action$='/split']").filter(has=ui.locator("button:not([disabled])"))
            typed = [
                i
                for i in range(row.count())
                if "TypeError"
                in row.nth(i).locator("xpath=ancestor::*[self::tr or self::li or self::section][1]").inner_text()
            ]
            assert typed, "a fingerprint of the merged issue is TypeError's"
            row.nth(typed[0]).get_by_role("button", name="Split out").click()
            expect(ui.locator(".notice")).to_be_visible()
            ui.goto(inbox_url)
            expect(ui.get_by_role("link", name="TypeError", exact=True)).to_be_visible()
            expect(ui.get_by_role("link", name="SyntaxError", exact=True)).to_be_visible()

            for name, path in (
                ("grouping-rules", "settings/grouping-rules"),
                ("autocapture", "settings/autocapture"),
                ("symbol-sets", "settings/symbol-sets"),
                ("releases", "settings/releases"),
                ("sdk-setup", "settings/sdk"),
                ("usage", "settings/usage"),
                ("members", "settings/members"),
            ):
                ui.goto(f"{server.url}/project/{project.id}/{path}")
                expect(ui.locator("h1")).to_be_visible()
                shot(ui, name)
            ui.goto(f"{server.url}/account")
            shot(ui, "api-keys")
            # Our own script runs under the pages' content security policy, without errors.
            assert complaints == []

            # Without JavaScript the pages still read, and their forms still work.
            plain = browser.new_context(java_script_enabled=False, viewport={"width": 1360, "height": 900})
            plain.add_cookies(ui.context.cookies())
            page = plain.new_page()
            page.goto(f"{inbox_url}?status=resolved")
            page.get_by_role("link", name="RangeError", exact=True).click()
            expect(page.locator("article.exception").first).to_contain_text("validateQuantity")
            page.get_by_role("button", name="Reopen").click()
            expect(page.locator(".notice")).to_be_visible()
            expect(page.locator(".badge.active").first).to_be_visible()
            plain.close()
        finally:
            browser.close()
