"""Hermes, ProGuard and native frames resolved through the whole pipeline (capture, worker,
stored event), with symbol sets made by the real tools (``artefacts.py``), uploaded as the
containers posthog-cli writes, and events shaped as the mobile SDKs send them."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from symbolic.debuginfo import Archive

from tests.capture import exception_event, post_batch
from tests.factories import Tenant
from tests.mobile.artefacts import dsym_build, hermes_build, native_build, proguard_build
from tests.symbols.test_resolver import Blobs, stored
from tests.symbols.test_resolver import upload as upload_set
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.pipeline.reprocess import reprocess
from trapline.settings import Settings
from trapline.symbols.container import Kind, pack
from trapline.symbols.models import SymbolSet
from trapline.symbols.resolver import SymbolResolver

CHUNK = "0199c0de-7a1b-7c2d-8e3f-4a5b6c7d8e9f"


def upload(database: Database, blobs: Blobs, project_id: int, ref: str, data: bytes) -> uuid.UUID:
    """A finished upload of ``data`` for ``ref``, as bulk_finish_upload leaves it."""
    return upload_set(database, blobs, project_id, ref=ref, data=data)


def frames_of(event: ExceptionEvent, index: int = 0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = event.properties["$exception_list"][index]["stacktrace"]["frames"]
    return frames


def dwarf_zip(debug_file: bytes, sources: dict[str, str] | None = None) -> bytes:
    """The ZIP posthog-cli puts in a debug-file container: the object as ``dwarf``, sources
    under ``__source/`` with their manifest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dwarf", debug_file)
        if sources:
            files = {path: f"__source/{n}" for n, path in enumerate(sources)}
            archive.writestr("__source/manifest.json", json.dumps({"version": 1, "files": files}))
            for path, name in files.items():
                archive.writestr(name, sources[path])
    return buffer.getvalue()


# --- React Native (Hermes) ----------------------------------------------------------------------


def hermes_event() -> dict[str, Any]:
    frames = [{**frame, "chunk_id": CHUNK} for frame in hermes_build().frames]
    exception = {
        "type": "TypeError",
        "value": "discount code expired",
        "mechanism": {"type": "onuncaughtexception", "handled": False},
        "stacktrace": {"type": "raw", "frames": frames},
    }
    return exception_event(exception, **{"$lib": "posthog-react-native", "$exception_level": "fatal"})


def test_hermes_frames_resolve_to_their_source_lines(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    build = hermes_build()
    upload(database, blobs, tenant.project_id, CHUNK, pack(Kind.HERMES_MAP, build.map_path.read_bytes()))
    post_batch(client, tenant.project_token, hermes_event())
    process()
    [event] = stored(database)
    frames = frames_of(event)
    got = [(f["source"], f["line"], f["column"], f["mangled_name"]) for f in frames]
    assert got == [(e.file, e.line, e.column, e.function) for e in build.expected]
    assert all(f["resolved"] and f["lang"] == "javascript" and "resolve_failure" not in f for f in frames)
    # hermesc alone writes no function map: a "location-only" map, so no resolved_name.
    assert all("resolved_name" not in f for f in frames)
    assert event.properties["$exception_sources"] == ["app.js"]
    assert not event.unresolved_frames


def test_hermes_frames_without_their_map_fail_and_resolve_after_upload_and_reprocess(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any, settings: Settings
):
    post_batch(client, tenant.project_token, hermes_event())
    process()
    [event] = stored(database)
    crash = frames_of(event)[-1]
    assert crash["resolved"] is False and crash["line"] == 1
    assert crash["resolve_failure"] == f"No sourcemap uploaded for chunk id: {CHUNK}"
    before = event.fingerprint

    upload(database, blobs, tenant.project_id, CHUNK, pack(Kind.HERMES_MAP, hermes_build().map_path.read_bytes()))
    reprocess(database, SymbolResolver(database, blobs), project_id=tenant.project_id)
    [event] = stored(database)
    crash = frames_of(event)[-1]
    expected = hermes_build().expected[-1]
    assert (crash["source"], crash["line"], crash["resolved"]) == (expected.file, expected.line, True)
    assert event.fingerprint != before  # now grouped on the source, not the bytecode offsets


def test_a_proguard_mapping_is_not_a_hermes_map(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    set_id = upload(database, blobs, tenant.project_id, CHUNK, pack(Kind.PROGUARD_MAPPING, b"a.B -> c:\n"))
    post_batch(client, tenant.project_token, hermes_event())
    process()
    failure = frames_of(stored(database)[0])[-1]["resolve_failure"]
    assert failure == "Invalid map: the symbol set is a ProGuard mapping, not a Hermes map"
    with database.session(write=False) as session:
        assert session.get_one(SymbolSet, set_id).failure_reason == failure


# --- Android (ProGuard / R8) --------------------------------------------------------------------


def android_event() -> dict[str, Any]:
    return exception_event(*proguard_build().exception_list, **{"$lib": "posthog-android"})


def test_obfuscated_java_frames_and_exception_types_are_deobfuscated(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    build = proguard_build()
    upload(
        database, blobs, tenant.project_id, build.map_id, pack(Kind.PROGUARD_MAPPING, build.mapping_path.read_bytes())
    )
    post_batch(client, tenant.project_token, android_event())
    process()
    [event] = stored(database)
    exceptions = event.properties["$exception_list"]
    for index, truth in enumerate(build.expected):
        sent = build.exception_list[index]
        got = exceptions[index]
        module, _, name = truth.class_name.rpartition(".")
        assert (got["module"], got["type"]) == (module, name), f"exception {index} ({sent['type']})"
        resolved = [(f["module"], f["resolved_name"], f["line"]) for f in frames_of(event, index) if f["resolved"]]
        # The program's own frames come back as the un-obfuscated run printed them (inlined
        # methods expanded: more frames than were sent); JDK frames are not in the mapping.
        own = [(f.class_name, f.method, f.line) for f in truth.frames if f.class_name.startswith("com.example.")]
        assert sorted(resolved) == sorted(own)
    # cymbal keeps an inline chain in the mapping's order, innermost first, even in a stack
    # sent bottom-up: the crash site's physical frame (a.a:1023) expands to the inlined
    # unitPrice, then total, then checkout, the method they were inlined into.
    crash = frames_of(event, len(exceptions) - 1)
    assert [(f["resolved_name"], f["line"]) for f in crash] == [
        ("main", 13),
        ("unitPrice", 23),
        ("total", 14),
        ("checkout", 13),
    ]
    assert [f["raw_id"].rsplit("/", 1)[1] for f in crash] == ["0", "0", "1", "2"]
    assert crash[1]["mangled_name"] == "a" and crash[1]["lang"] == "java"


def test_java_frames_without_their_mapping_say_so(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    post_batch(client, tenant.project_token, android_event())
    process()
    frames = frames_of(stored(database)[0], len(proguard_build().exception_list) - 1)
    assert {f["resolve_failure"] for f in frames} == {f"No proguard map uploaded for id: {proguard_build().map_id}"}


# --- native (ELF) -------------------------------------------------------------------------------


def native_event(**extra: Any) -> dict[str, Any]:
    build = native_build()
    exception = {
        "type": "SIGABRT",
        "value": "order total overflow",
        "mechanism": {"type": "signalhandler", "handled": False},
        "stacktrace": {"type": "raw", "frames": list(build.frames)},
    }
    return exception_event(exception, **{"$debug_images": [build.debug_image], **extra})


def test_native_addresses_resolve_to_functions_files_and_lines_with_inlined_calls(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    build = native_build()
    source = (build.binary_path.parent / "crash.c").read_text()
    sources = {str(build.binary_path.parent / "crash.c"): source}
    container = pack(Kind.ELF_DEBUG_INFO, dwarf_zip(build.debug_file_path.read_bytes(), sources))
    upload(database, blobs, tenant.project_id, build.debug_id, container)
    post_batch(client, tenant.project_token, native_event())
    process()
    [event] = stored(database)
    frames = frames_of(event)
    # Each physical frame becomes its inline chain, outermost first (llvm-symbolizer lists
    # innermost first).
    expected = [layer for chain in build.expected for layer in reversed(chain)]
    got = [(f["resolved_name"], f.get("source"), f.get("line")) for f in frames]
    assert got == [(e.function, e.file, e.line or None) for e in expected]
    assert all(f["resolved"] for f in frames)
    assert any(len(chain) > 1 for chain in build.expected), "the artefact has no inlined call"


def test_native_frames_without_debug_files_fail_and_resolve_after_upload_and_reprocess(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    build = native_build()
    post_batch(client, tenant.project_token, native_event())
    process()
    [event] = stored(database)
    assert {f["resolve_failure"] for f in frames_of(event)} == {
        f"No debug symbols uploaded for debug_id: {build.debug_id}"
    }
    upload(
        database,
        blobs,
        tenant.project_id,
        build.debug_id,
        pack(Kind.ELF_DEBUG_INFO, dwarf_zip(build.debug_file_path.read_bytes())),
    )
    reprocess(database, SymbolResolver(database, blobs), project_id=tenant.project_id)
    crash = frames_of(stored(database)[0])[-1]
    assert (crash["resolved_name"], crash["line"]) == (build.expected[-1][0].function, build.expected[-1][0].line)


def test_the_same_crash_in_another_launch_is_the_same_frame(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    # Address-space randomisation moves the image between launches: the frames' ids (and
    # so the issue) must not move with it.
    build = native_build()
    slide = 0x7000_0000
    moved = [
        {
            **f,
            "instruction_addr": hex(int(f["instruction_addr"], 16) + slide),
            "image_addr": hex(int(f["image_addr"], 16) + slide),
        }
        for f in build.frames
    ]
    image = {**build.debug_image, "image_addr": hex(int(build.debug_image["image_addr"], 16) + slide)}
    second = exception_event(
        {"type": "SIGABRT", "value": "order total overflow", "stacktrace": {"type": "raw", "frames": moved}},
        **{"$debug_images": [image]},
    )
    post_batch(client, tenant.project_token, native_event())
    post_batch(client, tenant.project_token, second)
    process()
    first, again = stored(database)
    assert [f["raw_id"] for f in frames_of(first)] == [f["raw_id"] for f in frames_of(again)]
    assert first.fingerprint == again.fingerprint


def test_a_frame_outside_every_image_says_so(client: TestClient, tenant: Tenant, database: Database, process: Any):
    build = native_build()
    event = native_event()
    event["properties"]["$debug_images"] = [{**build.debug_image, "image_addr": "0x10", "image_size": 16}]
    event["properties"]["$exception_list"][0]["stacktrace"]["frames"] = [
        {k: v for k, v in f.items() if k != "image_addr"} for f in build.frames
    ]
    post_batch(client, tenant.project_token, event)
    process()
    assert {f["resolve_failure"] for f in frames_of(stored(database)[0])} == {"No matching debug image found for frame"}


# --- iOS / macOS (dSYM) -------------------------------------------------------------------------


def test_apple_frames_resolve_with_a_dsym_under_the_uppercase_uuid_ios_sends(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    build = dsym_build()
    slide = 0x4A8000  # where this launch's ASLR put the image
    load = build.image_addr + slide
    # The trap instruction is the crash site; posthog-ios reports it like the return addresses
    # of the frames below it, so the resolver looks one byte back, into the same instruction.
    frame = {
        "platform": "apple",
        "instruction_addr": hex(build.crash_addr + slide + 1),
        "image_addr": hex(load),
        "symbol_addr": hex(load),
        "module": "App",
        "package": "/private/var/containers/Bundle/Application/App.app/App",
        "function": "process_order",
        "in_app": True,
    }
    system = {**frame, "instruction_addr": "0x1a2b3c4d5", "image_addr": "0x1a0000000", "module": "UIKitCore"}
    image = {
        "type": "macho",
        "code_file": frame["package"],
        "debug_id": build.debug_id,
        "image_addr": hex(load),
        "image_vmaddr": hex(build.image_addr),
        "image_size": 0x8000,
    }
    exception = {
        "type": "EXC_BREAKPOINT",
        "value": "trap in apply_fee",
        "mechanism": {"type": "generic", "handled": False, "synthetic": False},
        "stacktrace": {"type": "raw", "frames": [system, frame]},
    }
    assert build.debug_id == build.debug_id.upper()
    upload(
        database,
        blobs,
        tenant.project_id,
        build.debug_id,
        pack(Kind.APPLE_DSYM, dwarf_zip(build.dwarf_path.read_bytes())),
    )
    post_batch(
        client, tenant.project_token, exception_event(exception, **{"$debug_images": [image], "$lib": "posthog-ios"})
    )
    process()
    system_frame, *resolved = frames_of(stored(database)[0])
    # One frame per inline layer, outermost first: process_order, then apply_fee inlined in it.
    expected = list(reversed(build.expected))
    assert [(f["resolved_name"], f["source"], f["line"]) for f in resolved] == [
        (e.function, e.file, e.line) for e in expected
    ]
    assert all(f["resolved"] and f["lang"] == "c" and f["module"] == "App" and f["in_app"] for f in resolved)
    # Apple's own frameworks have no dSYM here and are never the app's code.
    assert system_frame["resolve_failure"] == "No matching debug image found for frame"
    assert system_frame["in_app"] is False and system_frame["source"] == "UIKitCore +0x1a0000000"


def test_cpp_functions_are_named_as_written(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any, tmp_path: Path
):
    clang = shutil.which("clang++")
    if clang is None:
        pytest.skip("clang++ is not installed")
    source = tmp_path / "cart.cpp"
    source.write_text(
        "namespace shop { struct Cart { int total(int n); };\n"
        "__attribute__((noinline)) int Cart::total(int n) { if (n > 3) __builtin_trap(); return n; } }\n"
        "int main(int c, char **) { shop::Cart k; return k.total(c); }\n"
    )
    binary = tmp_path / "cart"
    subprocess.run([clang, "-g", "-O1", "-Wl,--build-id", "-o", str(binary), str(source)], check=True)
    obj = next(Archive.open(str(binary)).iter_objects())
    symbols = subprocess.run(["llvm-nm", str(binary)], capture_output=True, text=True, check=True).stdout
    address = int(next(line.split()[0] for line in symbols.splitlines() if line.endswith("_ZN4shop4Cart5totalEi")), 16)
    load = 0x5600_0000_0000
    frame = {"platform": "native", "instruction_addr": hex(load + address + 4), "image_addr": hex(load), "in_app": True}
    image = {"type": "elf", "debug_id": obj.debug_id, "image_addr": hex(load), "image_size": 1 << 20}
    upload(database, blobs, tenant.project_id, obj.debug_id, pack(Kind.ELF_DEBUG_INFO, dwarf_zip(binary.read_bytes())))
    exception = {"type": "SIGTRAP", "value": "trap", "stacktrace": {"type": "raw", "frames": [frame]}}
    post_batch(client, tenant.project_token, exception_event(exception, **{"$debug_images": [image]}))
    process()
    [resolved] = frames_of(stored(database)[0])
    assert (resolved["mangled_name"], resolved["resolved_name"]) == ("shop::Cart::total(int)", "shop::Cart::total")
    assert (resolved["source"], resolved["line"], resolved["lang"]) == ("cart.cpp", 2, "cpp")


def test_an_inline_chain_the_sdk_expanded_is_replaced_by_the_servers_or_kept_when_that_fails(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    # posthog-rs expands inline chains itself: the physical frame, then one frame per inlined
    # call, marked inline and repeating its address.
    build = native_build()
    crash = build.frames[-1]
    members = [
        {**crash, "function": "apply_fee_guess", "inline": True, "filename": "crash.c", "lineno": 1},
        {**crash, "function": "another_guess", "inline": True},
    ]
    frames = [*build.frames, *members]
    exception = {"type": "SIGABRT", "value": "overflow", "stacktrace": {"type": "raw", "frames": frames}}
    event = exception_event(exception, **{"$debug_images": [build.debug_image]})

    post_batch(client, tenant.project_token, event)
    process()
    kept = frames_of(stored(database)[0])
    assert [f["mangled_name"] for f in kept[-2:]] == ["apply_fee_guess", "another_guess"]
    assert kept[-3]["resolve_failure"].startswith("No debug symbols uploaded")

    container = pack(Kind.ELF_DEBUG_INFO, dwarf_zip(build.debug_file_path.read_bytes()))
    upload(database, blobs, tenant.project_id, build.debug_id, container)
    post_batch(client, tenant.project_token, {**event, "uuid": str(uuid.uuid4())})
    process()
    replaced = frames_of(stored(database)[1])
    chain = [layer.function for layer in reversed(build.expected[-1])]
    assert [f["resolved_name"] for f in replaced[-len(chain) :]] == chain
    assert "apply_fee_guess" not in {f["mangled_name"] for f in replaced}
