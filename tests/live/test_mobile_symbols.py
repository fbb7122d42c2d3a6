"""React Native (Hermes), Android (ProGuard) and native (ELF) stacks against a live ``trapline serve``.

What a mobile team does, from the outside: build artefacts with the real tools
(``tests/mobile/artefacts.py``: hermesc, ProGuard, clang), upload them with trapline's own CLI
commands (the ones named after posthog-cli's), send crashes over ``/batch/`` in the shapes the
SDKs send, and read the issue back through the REST API and the issue page a signed-in user
sees. Then the order a team gets wrong: a native crash that arrives before its debug file,
fixed with an upload and ``trapline reprocess``. And the refusals of the upload API: a symbol
set over the server's size limit, and a container whose header is fine but whose payload is
garbage.

The ground truth (functions, files, lines) comes from the artefacts' ``expected``, i.e. from
the toolchains, never typed in here.
"""

from __future__ import annotations

import copy
import hashlib
import html
import re
import shutil
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.live.support import Api, Project, bootstrap, post_batch
from tests.mobile.artefacts import hermes_build, native_build, proguard_build
from tests.server import TRAPLINE, Server, running_server, trapline_env

pytestmark = pytest.mark.slow

# The server's limit on one symbol set, lowered from 100 MiB so "too large" costs 256 KiB;
# every real artefact here fits (the largest, the ELF debug file with its sources, packs to ~80 KiB).
MAX_SYMBOL_SET = 256 * 1024
PASSWORD = "password123"  # what support.bootstrap signs the live user up with
EMAIL = "live@example.com"
# The chunk id the React Native build gave the bundle (posthog-react-native puts it on frames).
CHUNK_ID = "0199c0de-7a1b-7c2d-8e3f-4a5b6c7d8e9f"


# --- the server, on each backend --------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    server: Server
    env: dict[str, str]  # for every trapline process that shares the server's database

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir


@pytest.fixture(scope="module", params=["sqlite"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server per module; each test bootstraps its own project on it.

    SQLite only: the same resolution runs on both backends in tests/mobile and tests/symbols
    (in process, through the worker), and the upload API on both in tests/api; a second live
    server here cost a CI minute and covered nothing more. Pass ``postgresql`` in ``params``
    to run it there (a fresh database when TRAPLINE_TEST_DATABASE_URL is set).
    """
    env = {"TRAPLINE_OBJECT_UPLOAD_MAX_SIZE": str(MAX_SYMBOL_SET)}
    database_url = None
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("TRAPLINE_TEST_DATABASE_URL is not set")
        database_url = create_postgres_database(POSTGRES_URL)
        env["TRAPLINE_DATABASE_URL"] = database_url
    try:
        with running_server(tmp_path_factory.mktemp("mobile") / "data", env) as server:
            yield Live(server, env)
    finally:
        if database_url is not None:
            drop_postgres_database(POSTGRES_URL, database_url)


@pytest.fixture
def project(live: Live, request: pytest.FixtureRequest) -> Project:
    return bootstrap(live.data_dir, request.node.name, live.env)


@pytest.fixture
def api(live: Live, project: Project) -> Api:
    return Api(live.url, project)


# --- the user's side: the CLI, the SDKs, the browser ------------------------------------------


def cli(live: Live, project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """A trapline command as a build script runs it, pointed at the server by posthog-cli's variables."""
    env = {
        **trapline_env(live.data_dir, live.env),
        "POSTHOG_CLI_HOST": live.url,
        "POSTHOG_CLI_API_KEY": project.api_key,
        "POSTHOG_CLI_PROJECT_ID": str(project.id),
    }
    return subprocess.run([TRAPLINE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def uploaded(live: Live, project: Project, *args: str) -> str:
    result = cli(live, project, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def symbol_sets(live: Live, project: Project, ref: str) -> list[dict[str, Any]]:
    """The project's symbol sets with this ref, through the REST API."""
    response = httpx.get(
        f"{live.url}/api/environments/{project.id}/error_tracking/symbol_sets",
        params={"ref": ref},
        headers={"Authorization": f"Bearer {project.api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def sdk_event(lib: str, exceptions: list[dict[str, Any]], **properties: Any) -> dict[str, Any]:
    """A ``$exception`` event as the mobile SDKs batch it to ``/batch/``."""
    return {
        "event": "$exception",
        "distinct_id": "shopper-1",
        "uuid": str(uuid.uuid4()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "properties": {
            "$exception_list": exceptions,
            "$exception_level": "fatal",
            "$lib": lib,
            "$lib_version": "1.0.0",
            **properties,
        },
    }


def hermes_event() -> dict[str, Any]:
    """posthog-react-native's uncaught error: Hermes frames, bottom-up, each with the bundle's chunk id."""
    frames = [{**frame, "chunk_id": CHUNK_ID} for frame in hermes_build().frames]
    exception = {
        "type": "TypeError",
        "value": "discount code expired",
        "mechanism": {"type": "onuncaughtexception", "handled": False},
        "stacktrace": {"type": "raw", "frames": frames},
    }
    return sdk_event("posthog-react-native", [exception])


def android_event() -> dict[str, Any]:
    """posthog-android's crash: the exception list the obfuscated program printed, outermost first."""
    return sdk_event("posthog-android", copy.deepcopy(list(proguard_build().exception_list)))


def native_event() -> dict[str, Any]:
    """A native crash: raw addresses, and the loaded image in ``$debug_images`` to find them in."""
    build = native_build()
    exception = {
        "type": "SIGABRT",
        "value": "order total overflow",
        "mechanism": {"type": "signalhandler", "handled": False},
        "stacktrace": {"type": "raw", "frames": [dict(frame) for frame in build.frames]},
    }
    # No native SDK is tested here; $lib only labels the event, cymbal reads the frames and images.
    return sdk_event("posthog-native", [exception], **{"$debug_images": [dict(build.debug_image)]})


def send(live: Live, project: Project, event: dict[str, Any]) -> None:
    response = post_batch(live.url, project.token, [event])
    assert response.status_code == 200, response.text


def the_issue(api: Api) -> dict[str, Any]:
    """The project's one issue, once its one event has been processed."""
    [issue] = api.wait_for_occurrences(1)
    return issue


def frames_of(event: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = event["properties"]["$exception_list"][index]["stacktrace"]["frames"]
    return frames


def issue_page(live: Live, project: Project, issue_id: str, **params: str) -> str:
    """The issue page as a signed-in user's browser gets it (all frames shown)."""
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        signed_in = browser.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token[1]})
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get(f"/project/{project.id}/error_tracking/{issue_id}", params={"frames": "all", **params})
        assert page.status_code == 200, page.text
        return page.text


def text(fragment: str) -> str:
    """What a reader sees of some HTML: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def page_frames(page: str) -> list[str]:
    """The HTML of each frame shown, in page order."""
    return re.findall(r'<li class="frame [^"]*" data-frame="\d+">(.*?)</li>', page, re.S)


def page_frame(page: str, function: str) -> str:
    for body in page_frames(page):
        if re.search(rf'<span class="fn">{re.escape(function)}</span>', body):
            return body
    raise AssertionError(f"no frame {function!r} on the page: {[text(b)[:80] for b in page_frames(page)]}")


def context_lines(frame_html: str) -> dict[int, str]:
    return {
        int(n): html.unescape(src)
        for n, src in re.findall(r'<td class="ln">(\d+)</td><td class="src">(.*?)</td>', frame_html, re.S)
    }


# --- uploads with the CLI, then crashes that resolve ------------------------------------------


def test_react_native_hermes_stack_resolves(live: Live, project: Project, api: Api, tmp_path: Path):
    build = hermes_build()
    # The build output as a React Native release leaves it: the bundle and its composed map.
    dist = tmp_path / "android"
    dist.mkdir()
    shutil.copy(build.bundle_path, dist)
    the_map = Path(shutil.copy(build.map_path, dist))
    uploaded(live, project, "hermes", "upload", "--file", str(the_map), "--chunk-id", CHUNK_ID)
    assert [s["has_uploaded_file"] for s in symbol_sets(live, project, CHUNK_ID)] == [True]

    send(live, project, hermes_event())
    issue = the_issue(api)
    # PostHog's environment-scoped path serves the same issue as the project one.
    retrieved = httpx.get(
        f"{live.url}/api/environments/{project.id}/error_tracking/issues/{issue['id']}",
        headers=api.headers,
        timeout=10,
    )
    assert retrieved.status_code == 200, retrieved.text
    assert (retrieved.json()["name"], retrieved.json()["description"]) == ("TypeError", "discount code expired")
    assert retrieved.json()["library"] == "posthog-react-native"
    [event] = api.events(issue["id"])
    frames = frames_of(event)
    assert [(f["mangled_name"], f["source"], f["line"], f["column"]) for f in frames] == [
        (e.function, e.file, e.line, e.column) for e in build.expected
    ]
    assert all(f["resolved"] and "resolve_failure" not in f for f in frames)

    crash = build.expected[-1]
    assert crash.function == "applyDiscount" and crash.file == "app.js"
    page = issue_page(live, project, issue["id"])
    assert f"{crash.file}:{crash.line}" in text(page_frame(page, crash.function))
    assert "Not resolved" not in text(page)


def test_android_proguard_stack_is_deobfuscated(live: Live, project: Project, api: Api, tmp_path: Path):
    build = proguard_build()
    mapping = Path(shutil.copy(build.mapping_path, tmp_path / "mapping.txt"))
    uploaded(live, project, "proguard", "upload", "--path", str(mapping), "--map-id", build.map_id)
    assert [s["has_uploaded_file"] for s in symbol_sets(live, project, build.map_id)] == [True]

    send(live, project, android_event())
    issue = the_issue(api)
    [event] = api.events(issue["id"])
    exceptions = event["properties"]["$exception_list"]
    truth = build.crash_site
    assert truth.class_name == "com.example.shop.CheckoutException"
    crash_site = exceptions[-1]
    assert f"{crash_site['module']}.{crash_site['type']}" == truth.class_name  # sent as com.example.shop.b
    unit_price = truth.frames[-1]
    assert unit_price.method == "unitPrice"
    # Two frames were sent: Main.main, and a.a, where ProGuard inlined unitPrice into total into
    # checkout. As cymbal does, that inline chain stays innermost first inside the bottom-up stack.
    main, *inlined = [(f.class_name, f.method, f.line) for f in truth.frames]
    resolved = [(f["module"], f["resolved_name"], f["line"]) for f in frames_of(event, len(exceptions) - 1)]
    assert resolved == [main, *reversed(inlined)]

    page = issue_page(live, project, issue["id"])
    outer, cause = re.findall(r'<article class="exception" id="exception-\d+">(.*?)</article>', page, re.S)
    assert "CheckoutException" in text(cause) and "IllegalStateException" in text(outer)
    frame = page_frame(cause, unit_price.method)
    # -renamesourcefileattribute leaves Java frames no file name: the class and the line say where.
    assert unit_price.class_name in text(frame) and f":{unit_price.line}" in text(frame), text(frame)


def test_native_stack_resolves_with_its_source(live: Live, project: Project, api: Api, tmp_path: Path):
    build = native_build()
    # What a native build leaves for the upload step: the split debug file, named as built.
    symbols = tmp_path / "symbols"
    symbols.mkdir()
    shutil.copy(build.debug_file_path, symbols)
    out = uploaded(live, project, "symbol-sets", "upload", "--directory", str(symbols), "--include-source")
    assert build.debug_id in out, out  # the CLI names the debug id it uploaded under
    assert [s["has_uploaded_file"] for s in symbol_sets(live, project, build.debug_id)] == [True]

    send(live, project, native_event())
    issue = the_issue(api)
    [event] = api.events(issue["id"])
    # Each physical frame becomes its inline chain, outermost first (llvm-symbolizer lists innermost first).
    expected = [layer for chain in build.expected for layer in reversed(chain)]
    got = [(f["resolved_name"], f.get("source"), f.get("line")) for f in frames_of(event)]
    assert got == [(e.function, e.file, e.line or None) for e in expected]

    [crash] = build.expected[-1]
    assert crash.function == "crash_here" and crash.file == "crash.c"
    page = issue_page(live, project, issue["id"])
    frame = page_frame(page, crash.function)
    assert f"{crash.file}:{crash.line}" in text(frame)
    # --include-source sent crash.c along: the page shows the crashing line itself.
    source_line = (build.binary_path.parent / "crash.c").read_text().splitlines()[crash.line - 1]
    assert context_lines(frame).get(crash.line) == source_line, frame


# --- a crash before its symbols: upload, then reprocess ---------------------------------------


def test_native_crash_before_its_debug_file_resolves_after_upload_and_reprocess(
    live: Live, project: Project, api: Api, tmp_path: Path
):
    build = native_build()
    send(live, project, native_event())
    issue = the_issue(api)
    [event] = api.events(issue["id"])
    failure = f"No debug symbols uploaded for debug_id: {build.debug_id}"
    assert {f.get("resolve_failure") for f in frames_of(event)} == {failure}
    assert f"Not resolved: {failure}" in text(issue_page(live, project, issue["id"]))

    symbols = tmp_path / "symbols"
    symbols.mkdir()
    shutil.copy(build.debug_file_path, symbols)
    uploaded(live, project, "symbol-sets", "upload", "--directory", str(symbols))
    result = subprocess.run(
        [TRAPLINE, "reprocess", "--project", str(project.id)],
        env=trapline_env(live.data_dir, live.env), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    [crash] = build.expected[-1]
    # Resolved, the event has a new fingerprint: reprocess moves it to that fingerprint's issue.
    moved = [found for found in api.issues() if found["aggregations"]["occurrences"] == 1]
    assert [found["id"] for found in moved] != [issue["id"]], "the event kept its unresolved grouping"
    [issue] = moved
    [event] = api.events(issue["id"])
    frames = frames_of(event)
    assert all(f["resolved"] for f in frames), frames
    assert (frames[-1]["resolved_name"], frames[-1]["source"], frames[-1]["line"]) == (
        crash.function,
        crash.file,
        crash.line,
    )
    page = issue_page(live, project, issue["id"])
    assert f"{crash.file}:{crash.line}" in text(page_frame(page, crash.function))
    assert "Not resolved" not in text(page)


# --- refusals of the upload API ---------------------------------------------------------------


class Uploads:
    """The symbol set upload protocol, driven by hand (as posthog-cli drives it)."""

    def __init__(self, live: Live, project: Project) -> None:
        self.live = live
        self.base = f"{live.url}/api/environments/{project.id}/error_tracking/symbol_sets"
        self.headers = {"Authorization": f"Bearer {project.api_key}"}

    def start(self, chunk_id: str, data: bytes, *, length: int | None) -> httpx.Response:
        entry: dict[str, Any] = {"chunk_id": chunk_id, "release_id": None, "content_hash": digest(data)}
        if length is not None:
            entry["content_length"] = length
        body = {"symbol_sets": [entry], "force": False, "skip_on_conflict": False}
        return httpx.post(f"{self.base}/bulk_start_upload", json=body, headers=self.headers, timeout=10)

    def post_file(self, started: httpx.Response, chunk_id: str, data: bytes) -> tuple[str, httpx.Response]:
        assert started.status_code == 201, started.text
        entry = started.json()["id_map"][chunk_id]
        form = entry["presigned_url"]
        url = form["url"] if form["url"].startswith("http") else f"{self.live.url}{form['url']}"
        response = httpx.post(
            url, data=form["fields"], files={"file": ("file", data, "application/octet-stream")}, timeout=10
        )
        return str(entry["symbol_set_id"]), response

    def finish(self, set_id: str, data: bytes) -> httpx.Response:
        body = {"content_hashes": {set_id: digest(data)}}
        return httpx.post(f"{self.base}/bulk_finish_upload", json=body, headers=self.headers, timeout=10)


def digest(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert all(word in response.text for word in words), response.text


def test_a_symbol_set_over_the_size_limit_is_refused(live: Live, project: Project, tmp_path: Path):
    too_big = MAX_SYMBOL_SET + 1
    # The CLI says how large the set is: bulk_start_upload refuses it before a byte is sent,
    # and the CLI fails saying why.
    mapping = tmp_path / "mapping.txt"
    # Random names, so that the container's zstd cannot shrink the mapping back under the limit.
    padding = "".join(f"com.example.P{uuid.uuid4().hex} -> {uuid.uuid4().hex}:\n" for _ in range(too_big // 20))
    mapping.write_text(proguard_build().mapping_path.read_text() + padding)
    result = cli(live, project, "proguard", "upload", "--path", str(mapping), "--map-id", "big-map")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"over the {MAX_SYMBOL_SET}-byte limit" in result.stderr, result.stdout + result.stderr

    uploads = Uploads(live, project)
    data = b"posthog_error_tracking" + bytes(too_big)
    assert_refused(uploads.start("big-1", data, length=len(data)), "file_too_large", f"{MAX_SYMBOL_SET}-byte limit")

    # An older client that sends no length gets an upload form, whose policy refuses the file;
    # confirming it afterwards is refused too, as nothing was stored.
    set_id, response = uploads.post_file(uploads.start("big-2", data, length=None), "big-2", data)
    assert_refused(response, "payload_too_large")
    assert_refused(uploads.finish(set_id, data), "file_not_found")
    assert [s["ref"] for s in symbol_sets(live, project, "big-map")] == []


def corrupt_container() -> bytes:
    """A version 2 ProGuard container, zstd-compressed by its header, whose payload is garbage."""
    return b"posthog_error_tracking" + struct.pack("<II", 2, 4) + b"\x01" + b"not zstd at all " * 64


def test_a_corrupt_container_is_refused_when_the_upload_finishes(live: Live, project: Project, api: Api):
    build = proguard_build()
    uploads = Uploads(live, project)
    data = corrupt_container()
    set_id, response = uploads.post_file(uploads.start(build.map_id, data, length=len(data)), build.map_id, data)
    assert response.status_code == 204, response.text  # the upload form stores bytes; the finish judges them
    finished = uploads.finish(set_id, data)
    assert_refused(finished, "invalid_file")
    # Refused and removed: the crash that needs the mapping says it was never uploaded,
    # rather than failing on a set nobody can read.
    assert symbol_sets(live, project, build.map_id) == []
    send(live, project, android_event())
    [event] = api.events(the_issue(api)["id"])
    assert {f.get("resolve_failure") for f in frames_of(event, -1)} == {
        f"No proguard map uploaded for id: {build.map_id}"
    }
