"""Minified JavaScript, end to end: built with esbuild, injected and uploaded with `trapline
sourcemap process`, run in headless Chromium (posthog-js) and in node (posthog-node), and the
stored events name the original files, functions and lines.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import AUTOCAPTURE_READY, CHROMIUM, CHROMIUM_ARGS, needs_chromium, wait_for
from tests.js import esbuild_binary, npm_packages
from tests.live.support import Project, bootstrap, sourcemap_process
from tests.server import TRAPLINE, Server, run_trapline, running_server, trapline_env

pytestmark = pytest.mark.slow

ORDERS = """\
export function validateQuantity(qty) {
  if (qty <= 0) {
    throw new RangeError("quantity must be positive: " + qty);
  }
  return qty;
}

export function placeOrder(order) {
  return validateQuantity(order.qty) * order.price;
}
"""
THROW_LINE = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    with running_server(data_dir) as live:
        yield live


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    return bootstrap(server.data_dir, "Shop")


def build(root: Path, entry: str, *flags: str) -> Path:
    """esbuild ``entry`` (minified, with a source map) into root/dist; returns dist."""
    node_modules = npm_packages()
    (root / "node_modules").symlink_to(node_modules, target_is_directory=True)
    dist = root / "dist"
    subprocess.run(
        [str(esbuild_binary()), entry, "--bundle", "--minify", "--sourcemap", f"--outdir={dist}", *flags],
        cwd=root,
        check=True,
        capture_output=True,
    )
    return dist


def api(server: Server, project: Project) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/projects/{project.id}/error_tracking",
        headers={"Authorization": f"Bearer {project.api_key}"},
        timeout=10,
    )


def events_of(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    issues = client.get("/issues/", params={"status": "all", "date_from": "all"}).json()["results"]
    events: list[dict[str, Any]] = []
    for issue in issues:
        if issue["name"] == name:
            events += client.get(f"/issues/{issue['id']}/events/").json()["results"]
    return events


def frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = event["properties"]["$exception_list"][0]["stacktrace"]["frames"]
    return found


def fingerprint_of(exception_type: str, stack: list[dict[str, Any]]) -> str:
    """cymbal's fingerprint, computed here from the stored frames: the type, then for each
    in-app frame (the resolved ones, when any is) its source, module and function name, or,
    without a name, its mangled name, line, column and language."""
    hasher = hashlib.sha512(exception_type.encode())
    in_app = [frame for frame in stack if frame["in_app"]]
    picked = [f for f in in_app if f["resolved"]] or in_app if in_app else stack[:1]
    for frame in picked:
        parts = [frame.get("source"), frame.get("module")]
        if "resolved_name" in frame:
            parts.append(frame["resolved_name"])
        else:
            parts += [frame["mangled_name"], frame.get("line"), frame.get("column"), frame["lang"]]
        hasher.update("".join(str(part) for part in parts if part is not None).encode())
    return hasher.hexdigest()


@needs_chromium
def test_a_minified_browser_error_resolves_to_the_original_source(
    server: Server, project: Project, tmp_path: Path, static_site: Callable[[Path], str]
):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "web"
    (root / "src").mkdir(parents=True)
    (root / "src" / "orders.js").write_text(ORDERS)
    (root / "src" / "app.js").write_text(
        f"""\
import posthog from "posthog-js";
import "posthog-js/dist/exception-autocapture";
import {{ placeOrder }} from "./orders.js";

posthog.init({json.dumps(project.token)}, {{
  api_host: {json.dumps(server.url)},
  capture_exceptions: true,
  autocapture: false,
  capture_pageview: false,
  disable_session_recording: true,
  request_batching: false,
  opt_out_useragent_filter: true, // headless Chromium looks like a bot to posthog-js
}});
window.posthog = posthog; // for the test to see when it is ready
document.getElementById("buy").addEventListener("click", () => placeOrder({{ qty: 0, price: 5 }}));
"""
    )
    dist = build(root, "src/app.js", "--format=iife")
    (dist / "index.html").write_text('<button id="buy">Buy</button><script src="app.js"></script>')
    sourcemap_process(server.url, project, dist, server.data_dir)
    assert "//# chunkId=" in (dist / "app.js").read_text()
    site = static_site(dist)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            seen: list[str] = []
            page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
            page.on("requestfinished", lambda request: seen.append(f"{request.method} {request.url}"))
            page.on("requestfailed", lambda request: seen.append(f"FAILED {request.method} {request.url}"))
            page.goto(f"{site}/index.html")
            page.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
            page.click("#buy")
            client = api(server, project)
            try:
                [event] = wait_for(lambda: events_of(client, "RangeError"), "the browser's exception")
            except AssertionError:
                raise AssertionError("no event; the page did:\n" + "\n".join(seen)) from None
        finally:
            browser.close()

    stack = frames(event)
    throw_site = stack[-1]  # posthog-js sends the throw site last
    assert throw_site["source"].endswith("src/orders.js")
    assert throw_site["resolved_name"] == "validateQuantity"
    assert throw_site["line"] == THROW_LINE
    assert throw_site["resolved"] is True and throw_site["in_app"] is True
    assert "placeOrder" in [f.get("resolved_name") for f in stack]
    assert event["properties"]["$exception_fingerprint"] == fingerprint_of("RangeError", stack)
    # The minified names the browser reported are kept as mangled names.
    assert throw_site["mangled_name"] != "validateQuantity"


NODE_APP = """\
import {{ PostHog }} from "posthog-node";
import {{ placeOrder }} from "./orders.js";

globalThis.build = {build}; // each test its own bundle, so its own chunk id
const client = new PostHog({token}, {{ host: {host}, flushAt: 1, flushInterval: 0 }});
try {{
  placeOrder({{ qty: 0, price: 5 }});
}} catch (error) {{
  client.captureException(error, "user-1");
}}
await client.shutdown();
"""


def node_bundle(root: Path, server: Server, project: Project) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "orders.js").write_text(ORDERS)
    (root / "src" / "server.js").write_text(
        NODE_APP.format(token=json.dumps(project.token), host=json.dumps(server.url), build=json.dumps(root.name))
    )
    return build(root, "src/server.js", "--platform=node", "--format=esm", "--out-extension:.js=.mjs")


def run_node(dist: Path) -> None:
    result = subprocess.run(["node", str(dist / "server.mjs")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_minified_node_error_resolves_by_chunk_id(server: Server, project: Project, tmp_path: Path):
    dist = node_bundle(tmp_path / "node", server, project)
    sourcemap_process(server.url, project, dist, server.data_dir)
    run_node(dist)
    client = api(server, project)
    event = wait_for(
        lambda: [e for e in events_of(client, "RangeError") if e["properties"].get("$lib") == "posthog-node"],
        "the node exception",
    )[0]
    stack = frames(event)
    throw_site = next(f for f in reversed(stack) if f.get("resolved_name") == "validateQuantity")
    assert throw_site["lang"] == "javascript"
    assert throw_site["source"].endswith("src/orders.js")
    assert throw_site["line"] == THROW_LINE
    assert event["properties"]["$exception_fingerprint"] == fingerprint_of("RangeError", stack)


def test_an_event_sent_before_the_upload_is_resolved_by_reprocess(server: Server, project: Project, tmp_path: Path):
    dist = node_bundle(tmp_path / "late", server, project)
    result = subprocess.run(
        [TRAPLINE, "sourcemap", "inject", "--directory", str(dist)],
        env={**trapline_env(server.data_dir), "POSTHOG_CLI_HOST": server.url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_node(dist)  # the error happens before anyone uploaded the map
    client = api(server, project)

    def minified() -> list[dict[str, Any]]:
        return [
            e
            for e in events_of(client, "RangeError")
            if any("No sourcemap uploaded" in f.get("resolve_failure", "") for f in frames(e))
        ]

    [before] = wait_for(minified, "the unresolved node exception")
    sourcemap_process(server.url, project, dist, server.data_dir)
    done = run_trapline("reprocess", "--project", str(project.id), env=trapline_env(server.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    after = next(e for e in events_of(client, "RangeError") if e["uuid"] == before["uuid"])
    names = [f.get("resolved_name") for f in frames(after)]
    assert "validateQuantity" in names and "placeOrder" in names
    assert after["properties"]["$exception_fingerprint"] != before["properties"]["$exception_fingerprint"]
