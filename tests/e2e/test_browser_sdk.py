"""posthog-js in headless Chromium, configured by Trapline alone.

The pages set nothing about exceptions: posthog-js learns from Trapline's remote config that
it should capture them, lazy-loads its exception autocapture from Trapline's ``/static/``,
drops what the project's client-safe suppression rules match, and sends the rest, from another
origin, to capture. Two ways of loading posthog-js are covered: the script tag (``array.js``,
served by Trapline too, which loads ``config.js``) and an npm bundle (which fetches
``/array/<token>/config``).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import AUTOCAPTURE_READY, CHROMIUM, CHROMIUM_ARGS, needs_chromium, wait_for
from tests.js import esbuild_binary, npm_packages
from tests.live.support import Project, bootstrap
from tests.server import Server, run_trapline, running_server, trapline_env

pytestmark = [pytest.mark.slow, needs_chromium]

# The only options: where Trapline is, and that headless Chromium (which posthog-js takes for
# a bot and would otherwise not capture for) is a real browser here.
OPTIONS = "{api_host: SERVER, opt_out_useragent_filter: true}"

SCRIPT_TAG_PAGE = """<!doctype html>
<html><body>
<script src="{server}/static/array.js"></script>
<script>
const SERVER = {server_json};
posthog.init({token_json}, {options});
</script>
</body></html>
"""

BUNDLE_ENTRY = """\
import posthog from "{module}";
{extra_import}

const SERVER = {server_json};
posthog.init({token_json}, {options});
window.posthog = posthog;
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    posthog_js = npm_packages() / "posthog-js"
    with running_server(data_dir, {"TRAPLINE_POSTHOG_JS_DIST": str(posthog_js)}) as live:
        yield live


@dataclass
class Browser:
    """What a page asked for, and what posthog-js said, for failure messages."""

    requests: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "\n".join(self.requests)


def api(server: Server, project: Project) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/projects/{project.id}",
        headers={"Authorization": f"Bearer {project.api_key}"},
        timeout=10,
    )


def issues_by_name(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/error_tracking/issues/", params={"status": "all", "date_from": "all"})
    assert response.status_code == 200, response.text
    return {issue["name"]: issue for issue in response.json()["results"]}


def with_issues(client: httpx.Client, *names: str) -> dict[str, dict[str, Any]] | None:
    """The issues by name once all of ``names`` exist."""
    found = issues_by_name(client)
    return found if set(names) <= found.keys() else None


def dropped(client: httpx.Client) -> dict[str, int]:
    response = client.get("/error_tracking/dropped_events/")
    assert response.status_code == 200, response.text
    return {row["reason"]: row["count"] for row in response.json()["results"]}


def script_tag_site(root: Path, server: Server, project: Project) -> Path:
    root.mkdir(parents=True)
    (root / "index.html").write_text(
        SCRIPT_TAG_PAGE.format(
            server=server.url,
            server_json=json.dumps(server.url),
            token_json=json.dumps(project.token),
            options=OPTIONS,
        )
    )
    return root


def bundle_site(root: Path, server: Server, project: Project, *, external: bool = True) -> Path:
    """An esbuild bundle of posthog-js; without ``external`` the build that loads no scripts,
    which then needs the exception autocapture imported (and reads the JSON config)."""
    (root / "src").mkdir(parents=True)
    (root / "node_modules").symlink_to(npm_packages(), target_is_directory=True)
    (root / "src" / "app.js").write_text(
        BUNDLE_ENTRY.format(
            module="posthog-js" if external else "posthog-js/dist/module.no-external",
            extra_import="" if external else 'import "posthog-js/dist/exception-autocapture";',
            server_json=json.dumps(server.url),
            token_json=json.dumps(project.token),
            options=OPTIONS,
        )
    )
    dist = root / "dist"
    subprocess.run(
        [str(esbuild_binary()), "src/app.js", "--bundle", "--format=iife", f"--outdir={dist}"],
        cwd=root,
        check=True,
        capture_output=True,
    )
    (dist / "index.html").write_text('<!doctype html><html><body><script src="app.js"></script></body></html>')
    return dist


# Ready to capture: remote config applied and the lazily loaded exception autocapture running.
CONFIG_LOADED = "token => Boolean(window.posthog && window.posthog.__loaded && window._POSTHOG_REMOTE_CONFIG?.[token])"


def in_browser(url: str, steps: Callable[[Any], None]) -> Browser:
    from playwright.sync_api import sync_playwright

    seen = Browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: seen.requests.append(f"console {message.type}: {message.text}"))
            page.on("requestfinished", lambda request: seen.requests.append(f"{request.method} {request.url}"))
            page.on("requestfailed", lambda request: seen.requests.append(f"FAILED {request.method} {request.url}"))
            page.goto(url)
            try:
                steps(page)
            except Exception as exc:
                raise AssertionError(f"{exc}\nthe page did:\n{seen.log()}") from exc
            # posthog-js sends in batches: give the last one time to leave before the page closes.
            page.wait_for_timeout(500)
            page.evaluate("() => window.posthog && window.posthog.capture('$pageleave')")
            page.wait_for_timeout(3500)
        finally:
            browser.close()
    return seen


def throw_both(page: Any, mark: str) -> None:
    page.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
    page.evaluate(f"() => setTimeout(() => {{ throw new RangeError('uncaught {mark}'); }})")
    page.evaluate(f"() => {{ Promise.reject(new TypeError('rejected {mark}')); }}")


SITES: dict[str, Callable[[Path, Server, Project], Path]] = {
    "script tag": script_tag_site,
    "npm bundle": bundle_site,
    "npm bundle without external scripts": lambda root, server, project: bundle_site(
        root, server, project, external=False
    ),
}


@pytest.mark.parametrize("loaded_by", list(SITES))
def test_uncaught_errors_and_rejections_become_issues(
    server: Server, tmp_path: Path, static_site: Callable[[Path], str], loaded_by: str
):
    project = bootstrap(server.data_dir, f"Shop {loaded_by}")
    site = static_site(SITES[loaded_by](tmp_path / "site", server, project))
    mark = uuid.uuid4().hex[:8]
    client = api(server, project)

    seen = in_browser(f"{site}/index.html", lambda page: throw_both(page, mark))

    try:
        found = wait_for(lambda: with_issues(client, "RangeError", "TypeError"), "both issues")
    except AssertionError:
        raise AssertionError("no issues; the page did:\n" + seen.log()) from None
    assert found["RangeError"]["description"] == f"uncaught {mark}"
    assert found["TypeError"]["description"] == f"rejected {mark}"
    events = client.get(f"/error_tracking/issues/{found['TypeError']['id']}/events/").json()["results"]
    [event] = events
    [entry] = event["properties"]["$exception_list"]
    assert entry["mechanism"]["handled"] is False
    assert event["properties"]["$lib"] == "web"
    # posthog-js got everything from Trapline, across origins: the config, the extension.
    requested = [line.split("?")[0] for line in seen.requests]
    config = f"GET {server.url}/array/{project.token}/config"
    extension = re.compile(rf"GET {re.escape(server.url)}/static/(1\.449\.2/)?exception-autocapture\.js")
    if loaded_by.endswith("without external scripts"):
        assert config in requested, seen.log()
        assert not any(extension.match(line) for line in requested), seen.log()
    else:
        assert f"{config}.js" in requested, seen.log()
        assert any(extension.match(line) for line in requested), seen.log()
    assert not any(line.startswith("FAILED") for line in seen.requests), seen.log()


def test_with_autocapture_off_for_the_project_nothing_arrives(
    server: Server, tmp_path: Path, static_site: Callable[[Path], str]
):
    project = bootstrap(server.data_dir, "Quiet shop")
    turned_off = run_trapline(
        "project", "--project", str(project.id), "--autocapture-exceptions", "off", env=trapline_env(server.data_dir)
    )
    assert turned_off.returncode == 0, turned_off.stderr
    site = static_site(script_tag_site(tmp_path / "site", server, project))
    mark = uuid.uuid4().hex[:8]

    def steps(page: Any) -> None:
        page.wait_for_function(CONFIG_LOADED, arg=project.token, timeout=20_000)
        page.wait_for_timeout(1000)  # what autocapture would need to start, had it been on
        page.evaluate(f"() => setTimeout(() => {{ throw new RangeError('uncaught {mark}'); }})")
        page.evaluate(f"() => {{ Promise.reject(new TypeError('rejected {mark}')); }}")
        page.wait_for_timeout(500)
        # A manual capture still works: it arrives after the others would have.
        page.evaluate(f"() => window.posthog.captureException(new SyntaxError('sentinel {mark}'))")

    seen = in_browser(f"{site}/index.html", steps)
    client = api(server, project)
    try:
        found = wait_for(lambda: with_issues(client, "SyntaxError"), "the sentinel")
    except AssertionError:
        raise AssertionError("no sentinel; the page did:\n" + seen.log()) from None
    assert set(found) == {"SyntaxError"}
    assert not any("exception-autocapture.js" in line for line in seen.requests), seen.log()


def test_suppression_rules_apply_in_the_browser_and_on_the_server(
    server: Server, tmp_path: Path, static_site: Callable[[Path], str]
):
    project = bootstrap(server.data_dir, "Rules shop")
    client = api(server, project)
    browser_rule = {
        "type": "OR",
        "values": [{"type": "event", "key": "$exception_types", "operator": "exact", "value": ["IgnoredInBrowser"]}],
    }
    server_rule = {  # a regex: posthog-js cannot evaluate it, so it stays on the server
        "type": "OR",
        "values": [{"type": "event", "key": "$exception_values", "operator": "regex", "value": "^server-only"}],
    }
    for rule in (browser_rule, server_rule):
        response = client.post("/error_tracking/suppression_rules/", json={"filters": rule})
        assert response.status_code == 201, response.text
    config = httpx.get(f"{server.url}/array/{project.token}/config").json()
    assert config["errorTracking"]["suppressionRules"] == [browser_rule]
    site = static_site(script_tag_site(tmp_path / "site", server, project))
    mark = uuid.uuid4().hex[:8]

    def steps(page: Any) -> None:
        page.wait_for_function(AUTOCAPTURE_READY, timeout=20_000)
        page.evaluate(
            f"""() => {{
              setTimeout(() => {{ const e = new Error('browser {mark}'); e.name = 'IgnoredInBrowser'; throw e; }});
              setTimeout(() => {{ throw new EvalError('server-only {mark}'); }});
              setTimeout(() => {{ throw new RangeError('kept {mark}'); }});
            }}"""
        )

    seen = in_browser(f"{site}/index.html", steps)
    try:
        wait_for(lambda: dropped(client).get("suppressed_by_rule"), "the server-side suppression")
        found = wait_for(lambda: with_issues(client, "RangeError"), "the kept error")
    except AssertionError:
        raise AssertionError("not processed; the page did:\n" + seen.log()) from None
    assert set(found) == {"RangeError"}
    # Only the server-only rule's event reached the server (it would count every match).
    assert dropped(client) == {"suppressed_by_rule": 1}


def test_autocapture_controls_drop_real_posthog_js_exceptions(
    server: Server, tmp_path: Path, static_site: Callable[[Path], str]
):
    project = bootstrap(server.data_dir, "Controlled shop")
    client = api(server, project)
    response = client.post(
        "/error_tracking/autocapture_controls/",
        json={"url_blocklist": [{"url": "/index\\.html$", "matching": "regex"}]},
    )
    assert response.status_code == 201, response.text
    site = static_site(script_tag_site(tmp_path / "site", server, project))
    mark = uuid.uuid4().hex[:8]

    def steps(page: Any) -> None:
        throw_both(page, mark)
        page.evaluate(f"() => window.posthog.captureException(new SyntaxError('manual {mark}'))")

    seen = in_browser(f"{site}/index.html", steps)
    try:
        found = wait_for(lambda: with_issues(client, "SyntaxError"), "the manual capture")
        wait_for(lambda: dropped(client).get("autocapture_url_blocked") == 2, "the blocked exceptions")
    except AssertionError:
        raise AssertionError(f"not processed ({dropped(client)}); the page did:\n" + seen.log()) from None
    assert set(found) == {"SyntaxError"}
