"""``trapline hermes | proguard | dsym | symbol-sets``: files on disk in, containers at a fake
PostHog out (read back with the server's own reader), progress lines and exit codes.

Debug files are built here with clang, ld64.lld, dsymutil and llvm-lipo when installed; the
tests that need one skip, saying which, when it is missing.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from symbolic.debuginfo import Archive

from tests.sourcemap.fake_posthog import API_KEY, HOST, PROJECT, FakePostHog
from trapline.cli import main as trapline_main
from trapline.sourcemap import mobile
from trapline.sourcemap.release import release_hash_id
from trapline.symbols.container import Container, Kind, unpack

ENV = {"POSTHOG_CLI_HOST": HOST, "POSTHOG_CLI_API_KEY": API_KEY, "POSTHOG_CLI_PROJECT_ID": PROJECT}
C_SOURCE = "int add(int a, int b) { return a + b + N; }\nint main(void) { return add(1, 2); }\n"
CHUNK = "0195ab1c-2d3e-7f40-8a5b-6c7d8e9f0a1b"
OTHER_CHUNK = "0195ab1c-2d3e-7f40-8a5b-000000000002"
MAPPING = (
    "# compiler: R8\n"
    "com.example.app.MainActivity -> com.example.app.MainActivity:\n"
    "    1:1:void onCreate(android.os.Bundle):12:12 -> onCreate\n"
    "com.example.app.Checkout -> a.b:\n"
    "    void pay() -> a\n"
)


@pytest.fixture
def server() -> FakePostHog:
    return FakePostHog()


def tool(server: FakePostHog, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run one command as `trapline …` parses it, against the fake server."""
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(required=True)
    mobile.add_hermes_arguments(commands.add_parser("hermes"))
    mobile.add_proguard_arguments(commands.add_parser("proguard"))
    mobile.add_dsym_arguments(commands.add_parser("dsym"))
    mobile.add_symbol_sets_arguments(commands.add_parser("symbol-sets"))
    out, err = io.StringIO(), io.StringIO()
    code = mobile.run(
        parser.parse_args(argv),
        env=ENV if env is None else env,
        transport=server.transport(),
        out=out,
        err=err,
        sleep=lambda seconds: None,
    )
    return code, out.getvalue(), err.getvalue()


def stored(server: FakePostHog) -> dict[str, Container]:
    """Every uploaded set by ref, unpacked as the server unpacks it."""
    return {chunk_id: unpack(item.data) for chunk_id, item in server.sets.items() if item.data is not None}


def batches(server: FakePostHog) -> list[int]:
    starts = [request for request in server.api() if request.action == "symbol_sets/bulk_start_upload"]
    return [len(request.json()["symbol_sets"]) for request in starts]


def start_entries(server: FakePostHog) -> list[dict[str, Any]]:
    starts = [request for request in server.api() if request.action == "symbol_sets/bulk_start_upload"]
    return [entry for request in starts for entry in request.json()["symbol_sets"]]


def hermes_map(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 3,
        "sources": ["App.tsx"],
        "names": [],
        "mappings": "AAAA",
        "x_hermes_function_offsets": {"0": [0, 12]},
    }
    document.update(extra)
    return document


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def need(*names: str) -> list[str]:
    """The paths of the tools, each given as alternatives `a|b`; skips naming the first missing."""
    found = []
    for name in names:
        path = next((shutil.which(option) for option in name.split("|") if shutil.which(option)), None)
        if path is None:
            pytest.skip(f"{name.split('|')[0]} is not installed")
        found.append(path)
    return found


def compile_c(folder: Path, name: str, *flags: str, n: int = 0, target: str | None = None) -> Path:
    (clang,) = need("clang")
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}.c"
    source.write_text(C_SOURCE.replace("N", str(n)))
    output = folder / name
    command = [clang, *flags, f"-DN={n}", str(source), "-o", str(output)]
    if target:
        command[1:1] = ["-target", target]
    subprocess.run(command, check=True, capture_output=True)
    return output


def debug_id(path: Path | bytes) -> str:
    archive = Archive.from_bytes(path) if isinstance(path, bytes) else Archive.open(str(path))
    return str(next(archive.iter_objects()).debug_id)


def zip_of(container: Container) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(container.payload))


# --- hermes --------------------------------------------------------------------------------------


def test_hermes_upload_sends_composed_maps_by_the_chunk_id_inside_them(server: FakePostHog, tmp_path: Path):
    build = tmp_path / "build"
    composed = write_json(build / "index.android.bundle.hbc.composed.map", hermes_map(chunk_id=CHUNK))
    (build / "index.android.bundle").write_bytes(b"bytecode")
    # Metro's own map next to the bundle, after `hermes clone`: same chunk, no Hermes offsets.
    write_json(build / "index.android.bundle.map", {"version": 3, "mappings": "AAAA", "chunk_id": CHUNK})
    # A map next to a .jsbundle that Hermes wrote, with its id under debugId.
    (build / "ios/main.jsbundle").parent.mkdir(parents=True)
    (build / "ios/main.jsbundle").write_bytes(b"bytecode")
    ios = write_json(build / "ios/main.jsbundle.map", hermes_map(debugId=OTHER_CHUNK))

    code, out, err = tool(server, "hermes", "upload", "--directory", str(build))

    assert (code, err) == (0, "")
    sent = stored(server)
    assert sent == {
        CHUNK: Container(Kind.HERMES_MAP, composed.read_bytes()),
        OTHER_CHUNK: Container(Kind.HERMES_MAP, ios.read_bytes()),
    }
    assert f"Skipped {build}/index.android.bundle.map: not a Hermes map (no x_hermes_function_offsets)" in out
    assert out.splitlines()[-1] == "Uploaded 2, already on the server 0, failed 0"
    assert [entry["release_id"] for entry in start_entries(server)] == [None, None]

    # Run again: nothing new to send, still a success.
    code, out, _ = tool(server, "hermes", "upload", "--directory", str(build))
    assert code == 0
    assert out.splitlines()[-1] == "Uploaded 0, already on the server 2, failed 0"


def test_hermes_upload_refuses_maps_without_offsets_and_skips_maps_without_chunk_id(
    server: FakePostHog, tmp_path: Path
):
    build = tmp_path / "build"
    write_json(build / "a.bundle.hbc.composed.map", hermes_map(chunkId=CHUNK))
    plain = write_json(build / "b.bundle.hbc.composed.map", {"version": 3, "mappings": "", "chunk_id": OTHER_CHUNK})
    unnamed = write_json(build / "c.bundle.hbc.composed.map", hermes_map())

    code, out, _ = tool(server, "hermes", "upload", "--directory", str(build))

    assert code == 1  # the rest is uploaded, but the run failed
    assert list(stored(server)) == [CHUNK]
    assert f"Failed {plain}: no x_hermes_function_offsets, so it is not a Hermes composed map" in out
    assert f"Skipped {unnamed}: no chunk id (chunk_id, chunkId, debugId); give it one first" in out
    assert out.splitlines()[-1] == "Uploaded 1, already on the server 0, failed 1"


def test_hermes_upload_with_no_chunk_ids_uploads_nothing_and_says_what_to_run(server: FakePostHog, tmp_path: Path):
    write_json(tmp_path / "a.bundle.hbc.composed.map", hermes_map())

    code, out, err = tool(server, "hermes", "upload", "--directory", str(tmp_path))

    assert code == 1
    assert "trapline hermes clone" in out
    assert err == "trapline hermes: error: nothing to upload\n"
    assert server.requests == []


def test_hermes_upload_sends_100_maps_per_batch(server: FakePostHog, tmp_path: Path):
    for number in range(101):
        write_json(tmp_path / f"b{number}.bundle.hbc.composed.map", hermes_map(chunk_id=f"chunk-{number:03}"))

    code, _, _ = tool(server, "hermes", "upload", "--directory", str(tmp_path))

    assert code == 0
    assert batches(server) == [100, 1]


def test_hermes_upload_of_one_file_with_a_given_chunk_id(server: FakePostHog, tmp_path: Path):
    path = write_json(tmp_path / "out.map", hermes_map())

    code, _, _ = tool(server, "hermes", "upload", "--file", str(path), "--chunk-id", "given-id")
    assert code == 0
    assert stored(server) == {"given-id": Container(Kind.HERMES_MAP, path.read_bytes())}

    plain = write_json(tmp_path / "plain.map", {"version": 3, "mappings": ""})
    code, _, err = tool(server, "hermes", "upload", "--file", str(plain), "--chunk-id", "x")
    assert code == 1
    assert f"{plain} has no x_hermes_function_offsets" in err
    with pytest.raises(SystemExit) as usage:
        tool(server, "hermes", "upload", "--file", str(path), "--directory", str(tmp_path))
    assert usage.value.code == 2


def test_hermes_upload_stamps_the_release_given_by_flags_as_version_plus_build(server: FakePostHog, tmp_path: Path):
    write_json(tmp_path / "a.bundle.hbc.composed.map", hermes_map(chunk_id=CHUNK))
    write_json(tmp_path / "b.bundle.hbc.composed.map", hermes_map(chunk_id=OTHER_CHUNK, release_id="from-the-map"))

    argv = ["--release-name", "com.example.app", "--release-version", "1.4.0", "--build", "42"]
    code, out, _ = tool(server, "hermes", "upload", "--directory", str(tmp_path), *argv)

    assert code == 0
    release = server.releases[release_hash_id("com.example.app", "1.4.0+42")]
    assert release["version"] == "1.4.0+42"
    assert f"Release com.example.app@1.4.0+42: {release['id']} (created)" in out
    by_chunk = {entry["chunk_id"]: entry["release_id"] for entry in start_entries(server)}
    assert by_chunk == {CHUNK: release["id"], OTHER_CHUNK: "from-the-map"}

    code, _, err = tool(server, "hermes", "upload", "--directory", str(tmp_path), "--build", "42")
    assert (code, err) == (
        1,
        "trapline hermes: error: --build needs --release-version (the release is sent as VERSION+BUILD)\n",
    )


def test_hermes_clone_copies_the_chunk_and_release_ids_into_the_composed_map(server: FakePostHog, tmp_path: Path):
    write_json(tmp_path / "index.android.bundle.map", {"mappings": "AAAA", "chunk_id": CHUNK, "release_id": "r1"})
    composed = write_json(tmp_path / "index.android.bundle.hbc.composed.map", hermes_map())
    write_json(tmp_path / "lonely.bundle.hbc.composed.map", hermes_map())
    write_json(tmp_path / "anon.bundle.map", {"mappings": ""})
    anon = write_json(tmp_path / "anon.bundle.hbc.composed.map", hermes_map())

    code, out, _ = tool(server, "hermes", "clone", "--directory", str(tmp_path))

    assert code == 1
    document = json.loads(composed.read_bytes())
    assert (document["chunk_id"], document["release_id"]) == (CHUNK, "r1")
    assert document["x_hermes_function_offsets"] == {"0": [0, 12]}
    assert f"Cloned {composed} (chunk {CHUNK})" in out
    assert f"Failed {tmp_path}/lonely.bundle.hbc.composed.map: no lonely.bundle.map next to it" in out
    assert f"Failed {anon}: anon.bundle.map has no chunk id" in out
    assert server.requests == []  # clone works offline

    code, out, _ = tool(server, "hermes", "clone", "--directory", str(tmp_path))
    assert f"Already cloned {composed} (chunk {CHUNK})" in out


# --- proguard ------------------------------------------------------------------------------------


def test_proguard_upload_sends_the_mapping_under_the_map_id_verbatim(server: FakePostHog, tmp_path: Path):
    path = tmp_path / "mapping.txt"
    path.write_text(MAPPING)

    code, out, err = tool(server, "proguard", "upload", "--path", str(path), "--map-id", "Build-7f3A")

    assert (code, err) == (0, "")
    assert stored(server) == {"Build-7f3A": Container(Kind.PROGUARD_MAPPING, MAPPING.encode())}
    assert batches(server) == [1]
    assert out.splitlines()[-1] == "Uploaded 1, already on the server 0, failed 0"


def test_proguard_upload_refuses_a_file_that_is_not_a_mapping(server: FakePostHog, tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes -> not a mapping\n    indented -> line:\n")

    code, _, err = tool(server, "proguard", "upload", "--path", str(path), "--map-id", "x")

    assert code == 1
    assert err.startswith(f"trapline proguard: error: {path} is not a ProGuard/R8 mapping")
    assert server.requests == []
    with pytest.raises(SystemExit) as usage:
        tool(server, "proguard", "upload", "--path", str(path))
    assert usage.value.code == 2


def test_the_trapline_command_runs_them_without_server_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name in ("POSTHOG_CLI_API_KEY", "POSTHOG_CLI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(tmp_path / "no-such-dir" / "x"))
    path = tmp_path / "mapping.txt"
    path.write_text(MAPPING)

    code = trapline_main(["proguard", "upload", "--path", str(path), "--map-id", "m1", "--project-id", "1"])

    assert code == 1
    assert "trapline proguard: error: no personal API key" in capsys.readouterr().err


# --- symbol-sets (ELF) ---------------------------------------------------------------------------


def test_symbol_sets_upload_sends_each_elf_by_its_lowercase_debug_id(server: FakePostHog, tmp_path: Path):
    binary = compile_c(tmp_path / "out", "app", "-g", "-Wl,--build-id")
    expected = debug_id(binary)

    code, out, err = tool(server, "symbol-sets", "upload", "--directory", str(tmp_path / "out"))

    assert (code, err) == (0, "")
    assert expected == expected.lower()
    sent = stored(server)
    assert list(sent) == [expected]
    assert sent[expected].kind is Kind.ELF_DEBUG_INFO
    archive = zip_of(sent[expected])
    assert archive.namelist() == ["dwarf"]
    assert archive.read("dwarf") == binary.read_bytes()
    assert out.splitlines()[-1] == "Uploaded 1, already on the server 0, failed 0"


@pytest.mark.parametrize("dwarf", ["-gdwarf-4", "-gdwarf-5"])  # 4 names the compile directory elsewhere
def test_symbol_sets_upload_includes_the_sources_the_dwarf_names(server: FakePostHog, tmp_path: Path, dwarf: str):
    need("llvm-dwarfdump")
    binary = compile_c(tmp_path / "out", "app", dwarf, "-Wl,--build-id")
    source = tmp_path / "out" / "app.c"

    code, _, _ = tool(server, "symbol-sets", "upload", "--directory", str(tmp_path / "out"), "--include-source")

    assert code == 0
    archive = zip_of(stored(server)[debug_id(binary)])
    manifest = json.loads(archive.read("__source/manifest.json"))
    assert manifest["version"] == 1
    assert list(manifest["files"]) == [str(source)]
    assert archive.read(manifest["files"][str(source)]) == source.read_bytes()


def test_symbol_sets_upload_refuses_elf_without_build_id_or_debug_info(server: FakePostHog, tmp_path: Path):
    folder = tmp_path / "out"
    good = compile_c(folder, "good", "-g", "-Wl,--build-id")
    no_id = compile_c(folder, "no-id", "-g", "-Wl,--build-id=none", n=1)
    stripped = compile_c(folder, "no-debug", "-Wl,--build-id", n=2)

    code, out, _ = tool(server, "symbol-sets", "upload", "--directory", str(folder))

    assert code == 1
    assert list(stored(server)) == [debug_id(good)]
    assert f"Failed {no_id}: has no GNU build id, so the SDK could not reproduce its debug id" in out
    assert f"Failed {stripped}: has no debug information" in out
    assert out.splitlines()[-1] == "Uploaded 1, already on the server 0, failed 2"


def test_symbol_sets_upload_sends_10_debug_files_per_batch(server: FakePostHog, tmp_path: Path):
    for number in range(11):
        compile_c(tmp_path / "out", f"lib{number}", "-g", "-Wl,--build-id", n=number)

    code, _, _ = tool(server, "symbol-sets", "upload", "--directory", str(tmp_path / "out"))

    assert code == 0
    assert batches(server) == [10, 1]
    assert len(stored(server)) == 11


def test_a_set_over_the_size_limit_is_refused_before_upload(
    server: FakePostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    binary = compile_c(tmp_path / "out", "app", "-g", "-Wl,--build-id")
    monkeypatch.setattr(mobile, "MAX_SIZE", 100)

    code, out, err = tool(server, "symbol-sets", "upload", "--directory", str(tmp_path / "out"))

    assert code == 1
    assert f"Failed {binary} (x86_64, {debug_id(binary)}): " in out
    assert "bytes packed, over the 100 bytes a symbol set may have" in out
    assert err == "trapline symbol-sets: error: nothing to upload (see the failures above)\n"
    assert server.requests == []


# --- dsym ----------------------------------------------------------------------------------------


def make_dsym(folder: Path, name: str, target: str) -> Path:
    """A real dSYM bundle, linked with ld64.lld and split off with dsymutil."""
    ld64, dsymutil = need("ld64.lld|ld64.lld-14", "dsymutil|dsymutil-14")
    obj = compile_c(folder, f"{name}.o", "-g", "-c", target=target)
    binary = folder / name
    arch = target.split("-")[0]
    subprocess.run(
        [ld64, "-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-e", "_main", "-o", str(binary), str(obj)],
        check=True,
        capture_output=True,
    )
    bundle = folder / f"{name}.dSYM"
    subprocess.run([dsymutil, str(binary), "-o", str(bundle)], check=True, capture_output=True)
    return bundle


def test_dsym_upload_sends_one_set_per_architecture_by_uppercase_uuid(server: FakePostHog, tmp_path: Path):
    (lipo,) = need("llvm-lipo|llvm-lipo-14")
    work = tmp_path / "work"
    arm = make_dsym(work, "App", "arm64-apple-macos11") / "Contents/Resources/DWARF/App"
    intel = make_dsym(work / "x86", "App", "x86_64-apple-macos11") / "Contents/Resources/DWARF/App"
    # A universal dSYM, as Xcode makes for an app built for both architectures.
    products = tmp_path / "products"
    fat = products / "App.app.dSYM/Contents/Resources/DWARF/App"
    fat.parent.mkdir(parents=True)
    subprocess.run([lipo, "-create", str(arm), str(intel), "-output", str(fat)], check=True, capture_output=True)

    code, out, err = tool(server, "dsym", "upload", "--directory", str(products))

    assert (code, err) == (0, "")
    ids = {debug_id(arm).upper(): arm, debug_id(intel).upper(): intel}
    sent = stored(server)
    assert set(sent) == set(ids)
    for ref, thin in ids.items():
        assert sent[ref].kind is Kind.APPLE_DSYM
        dwarf = zip_of(sent[ref]).read("dwarf")
        assert debug_id(dwarf).upper() == ref  # the single architecture, not the fat file
        assert dwarf == thin.read_bytes()
    assert out.splitlines()[-1] == "Uploaded 2, already on the server 0, failed 0"


def test_dsym_upload_with_nothing_to_upload_fails(server: FakePostHog, tmp_path: Path):
    code, out, err = tool(server, "dsym", "upload", "--directory", str(tmp_path))

    assert code == 1
    assert out == f"Found 0 debug file(s) in .dSYM bundles in {tmp_path}\n"
    assert err == "trapline dsym: error: nothing to upload\n"
