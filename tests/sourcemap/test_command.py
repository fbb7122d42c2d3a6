"""``trapline sourcemap``: files on disk in, requests to a fake PostHog out, progress and exit codes."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import uuid
from pathlib import Path

import pytest

from tests.sourcemap.fake_posthog import API_KEY, HOST, PROJECT, FakePostHog
from trapline.cli import main as trapline_main
from trapline.sourcemap.command import add_arguments, run
from trapline.sourcemap.container import source_and_map
from trapline.sourcemap.inject import content_chunk_id, snippet

ENV = {"POSTHOG_CLI_HOST": HOST, "POSTHOG_CLI_API_KEY": API_KEY, "POSTHOG_CLI_PROJECT_ID": PROJECT}
APP = b"function a(){throw new Error('x')}a();\n//# sourceMappingURL=app.js.map\n"
APP_MAP = {
    "version": 3,
    "sources": ["../src/app.ts"],
    "sourcesContent": ["..."],
    "names": ["a"],
    "mappings": "AAAA,SAASA",
}
VENDOR = b"export const v=1;"
VENDOR_MAP = {"version": 3, "sources": ["lib.js"], "names": [], "mappings": "AAAA"}


@pytest.fixture
def server() -> FakePostHog:
    return FakePostHog()


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return build(tmp_path / "dist")


def build(dist: Path) -> Path:
    (dist / "assets").mkdir(parents=True)
    (dist / "assets/app.js").write_bytes(APP)
    (dist / "assets/app.js.map").write_text(json.dumps(APP_MAP))
    (dist / "vendor.mjs").write_bytes(VENDOR)  # no comment: found as vendor.mjs.map
    (dist / "vendor.mjs.map").write_text(json.dumps(VENDOR_MAP))
    (dist / "no-map.js").write_bytes(b"x()")
    return dist


def sourcemap(server: FakePostHog, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    code = run(
        parser.parse_args(argv),
        env=ENV if env is None else env,
        transport=server.transport(),
        out=out,
        err=err,
        sleep=lambda seconds: None,
    )
    return code, out.getvalue(), err.getvalue()


def test_process_injects_and_uploads_and_a_second_run_has_nothing_to_do(server: FakePostHog, dist: Path):
    code, out, err = sourcemap(server, "process", "--directory", str(dist))

    app_id, vendor_id = content_chunk_id(APP), content_chunk_id(VENDOR)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Found 3 JavaScript file(s) in {dist}, 2 with a source map",
        f"Skipped {dist}/no-map.js: no source map",
        f"Injected {dist}/assets/app.js (chunk {app_id})",
        f"Injected {dist}/vendor.mjs (chunk {vendor_id})",
        "Injected 2, already injected 0, failed 0",
        f"Found 3 JavaScript file(s) in {dist}, 2 injected with a source map",
        f"Skipped {dist}/no-map.js: no source map",
        "Checking 2 symbol set(s) with the server",
        "Batch 1/1: 2 symbol set(s)",
        f"Uploaded 1/2 {dist}/assets/app.js",
        f"Uploaded 2/2 {dist}/vendor.mjs",
        "Uploaded 2, already on the server 0, failed 0",
    ]
    app = (dist / "assets/app.js").read_bytes()
    assert app == snippet(app_id).encode() + b"\n" + APP + b"\n//# chunkId=" + app_id.encode()
    app_map = json.loads((dist / "assets/app.js.map").read_bytes())
    assert app_map == {**APP_MAP, "mappings": ";" + APP_MAP["mappings"], "chunk_id": app_id}
    # What the server holds is the container of the files as they are now on disk.
    for chunk_id, path in ((app_id, dist / "assets/app.js"), (vendor_id, dist / "vendor.mjs")):
        map_path = path.with_name(path.name + ".map")
        assert server.sets[chunk_id].data == source_and_map(path.read_bytes(), map_path.read_bytes())
        assert server.sets[chunk_id].release_id is None

    before = len(server.requests)
    code, out, _ = sourcemap(server, "process", "--directory", str(dist))
    assert code == 0
    assert f"Already injected {dist}/assets/app.js (chunk {app_id})" in out
    assert "Injected 0, already injected 2, failed 0" in out
    assert out.splitlines()[-1] == "Uploaded 0, already on the server 2, failed 0"
    assert [request.action for request in server.requests[before:]] == ["symbol_sets/bulk_check_upload"]


def test_inject_alone_needs_no_credentials(server: FakePostHog, dist: Path):
    code, out, _ = sourcemap(server, "inject", "--directory", str(dist), env={})
    assert code == 0 and "Injected 2" in out
    assert not server.requests


def test_process_without_a_key_changes_no_file(server: FakePostHog, dist: Path):
    code, out, err = sourcemap(server, "process", "--directory", str(dist), env={"POSTHOG_CLI_PROJECT_ID": "1"})
    assert (code, out) == (1, "")
    assert err == "trapline sourcemap: error: no personal API key: pass --api-key or set POSTHOG_CLI_API_KEY\n"
    assert (dist / "assets/app.js").read_bytes() == APP


def test_an_invalid_key_is_reported(server: FakePostHog, dist: Path):
    server.forced["symbol_sets/bulk_check_upload"] = 401
    code, _, err = sourcemap(server, "process", "--directory", str(dist))
    assert code == 1
    assert err == "trapline sourcemap: error: the API key is invalid (Invalid personal API key.)\n"


def test_an_unreachable_host_is_reported(server: FakePostHog, dist: Path):
    server.network_failures["symbol_sets/bulk_check_upload"] = 10
    code, _, err = sourcemap(server, "process", "--directory", str(dist))
    assert code == 1
    assert err == f"trapline sourcemap: error: cannot reach {HOST}: connection refused\n"


def test_nothing_to_upload_is_an_error(server: FakePostHog, dist: Path):
    code, _, err = sourcemap(server, "upload", "--directory", str(dist))
    assert code == 1
    assert "nothing to upload: no injected JavaScript file with a source map" in err
    assert not server.requests


def test_nothing_to_inject_is_an_error(server: FakePostHog, tmp_path: Path):
    code, _, err = sourcemap(server, "inject", "--directory", str(tmp_path))
    assert code == 1 and "no JavaScript file with a source map" in err
    code, _, err = sourcemap(server, "inject", "--directory", str(tmp_path / "missing"))
    assert code == 1 and "is not a directory" in err


def test_delete_after_removes_the_uploaded_maps(server: FakePostHog, dist: Path):
    code, out, _ = sourcemap(server, "process", "--directory", str(dist), "--delete-after")
    assert code == 0 and out.splitlines()[-1] == "Deleted 2 source map(s)"
    assert sorted(path.name for path in dist.rglob("*")) == ["app.js", "assets", "no-map.js", "vendor.mjs"]


def test_event_mode_release_goes_into_the_code_and_the_sets_stay_release_less(server: FakePostHog, tmp_path: Path):
    first = build(tmp_path / "v1")
    code, out, _ = sourcemap(
        server, "process", "--directory", str(first), "--release-name", "web", "--release-version", "1"
    )
    release = next(iter(server.releases.values()))
    assert code == 0
    assert f"Release web@1: {release['id']} (created)" in out
    app_id = content_chunk_id(APP)
    assert (first / "assets/app.js").read_bytes().startswith(snippet(app_id, release["id"]).encode() + b"\n")
    assert "release_id" not in json.loads((first / "assets/app.js.map").read_bytes())
    assert server.sets[app_id].release_id is None
    assert [request.action for request in server.api()][:2] == [f"releases/hash/{release['hash_id']}", "releases"]

    # The next release ships the same chunk: same chunk id, other release id in the code, and
    # yet the server sees the same content and nothing is uploaded again.
    second = build(tmp_path / "v2")
    code, out, _ = sourcemap(
        server, "process", "--directory", str(second), "--release-name", "web", "--release-version", "2"
    )
    assert code == 0
    assert (second / "assets/app.js").read_bytes() != (first / "assets/app.js").read_bytes()
    assert out.splitlines()[-1] == "Uploaded 0, already on the server 2, failed 0"
    assert len(server.releases) == 2


def test_symbol_set_mode_release_goes_into_the_map_and_binds_the_sets(server: FakePostHog, dist: Path):
    args = ("--directory", str(dist), "--release-name", "web", "--release-version", "1", "--release-mode", "symbol-set")
    code, _, _ = sourcemap(server, "process", *args)
    release_id = next(iter(server.releases.values()))["id"]
    app_map = json.loads((dist / "assets/app.js.map").read_bytes())
    assert code == 0
    assert app_map["release_id"] == release_id
    assert uuid.UUID(app_map["chunk_id"]).version == 7
    assert not (dist / "assets/app.js").read_bytes().count(b"_posthogReleaseId")
    assert server.sets[app_map["chunk_id"]].release_id == release_id


def test_upload_binds_release_less_files_to_the_release_it_is_given(server: FakePostHog, dist: Path):
    assert sourcemap(server, "inject", "--directory", str(dist))[0] == 0
    code, _, _ = sourcemap(
        server, "upload", "--directory", str(dist), "--release-name", "web", "--release-version", "1"
    )
    release_id = next(iter(server.releases.values()))["id"]
    assert code == 0
    assert {stored.release_id for stored in server.sets.values()} == {release_id}


def test_a_broken_map_fails_that_file_only(server: FakePostHog, dist: Path):
    (dist / "vendor.mjs.map").write_text("{not json")
    code, out, _ = sourcemap(server, "inject", "--directory", str(dist))
    assert code == 1
    assert f"Failed {dist}/vendor.mjs: not JSON" in out
    assert "Injected 1, already injected 0, failed 1" in out


def test_a_map_injected_without_its_file_is_not_shifted_twice(server: FakePostHog, dist: Path):
    (dist / "vendor.mjs.map").write_text(json.dumps({**VENDOR_MAP, "chunk_id": "x"}))
    code, out, _ = sourcemap(server, "inject", "--directory", str(dist))
    assert code == 1
    assert "already has a chunk_id but the file has no chunkId comment: rebuild" in out


def test_identical_files_are_uploaded_once(server: FakePostHog, dist: Path):
    shutil.copy(dist / "vendor.mjs", dist / "copy.mjs")
    shutil.copy(dist / "vendor.mjs.map", dist / "copy.mjs.map")
    sourcemap(server, "inject", "--directory", str(dist))
    code, out, _ = sourcemap(server, "upload", "--directory", str(dist))
    assert code == 0
    assert f"Skipped {dist}/vendor.mjs: same chunk as {dist}/copy.mjs" in out
    assert len(server.uploads()) == 2


def test_flags_override_the_environment_and_aliases_are_read(server: FakePostHog, dist: Path):
    env = {"POSTHOG_CLI_HOST": "https://elsewhere.example", "POSTHOG_CLI_TOKEN": API_KEY, "POSTHOG_CLI_ENV_ID": "7"}
    code, _, _ = sourcemap(
        server, "process", "--directory", str(dist), "--host", HOST, "--project-id", PROJECT, env=env
    )
    assert code == 0
    assert {request.url.host for request in server.api()} == {"posthog.example"}
    assert all(request.headers["authorization"] == f"Bearer {API_KEY}" for request in server.api())


def test_trapline_sourcemap_is_wired_into_the_trapline_command(
    dist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(tmp_path / "data"))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert trapline_main(["sourcemap", "inject", "--directory", str(dist)]) == 0
    assert "Injected 2, already injected 0, failed 0" in capsys.readouterr().out
    assert trapline_main(["sourcemap", "upload", "--directory", str(dist), "--host", "http://127.0.0.1:9"]) == 1
    assert "no personal API key" in capsys.readouterr().err
