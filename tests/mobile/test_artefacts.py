"""The artefact builders make what they claim: symbolic (the library the server symbolicates
with) reads each artefact and takes each crash frame to the ground truth that the toolchain
itself gave (the compiler's dump, the un-obfuscated run, llvm-symbolizer)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from symbolic.debuginfo import Archive
from symbolic.proguard import ProguardMapper
from symbolic.sourcemap import SourceMapView

from tests.mobile.artefacts import (
    HERMES_BUNDLE_NAME,
    JavaFrame,
    SourceFrame,
    dsym_build,
    hermes_build,
    native_build,
    proguard_build,
)

# Hermes bytecode files start with this 64-bit magic, stored little-endian.
HBC_MAGIC = (0x1F1903C103BC1FC6).to_bytes(8, "little")


def _source_line(path: Path, line: int) -> str:
    return path.read_text().splitlines()[line - 1]


# --- Hermes -------------------------------------------------------------------------------


def test_hermes_bundle_is_bytecode_with_a_hermes_source_map() -> None:
    build = hermes_build()
    assert build.bundle_path.read_bytes()[:8] == HBC_MAGIC
    source_map = json.loads(build.map_path.read_text())
    assert source_map["version"] == 3
    assert source_map["sources"] == ["app.js"]
    assert build.source_path.name == "app.js" and build.source_path.parent == build.map_path.parent
    # hermesc's map names no functions: no "names", no Metro x_facebook_sources; it has the
    # functions' virtual offsets, which are what the frames' columns were built from.
    assert not source_map.get("names")
    assert "x_facebook_sources" not in source_map
    assert tuple(source_map["x_hermes_function_offsets"]["0"]) == build.function_offsets


def test_hermes_frames_are_what_react_native_sends() -> None:
    build = hermes_build()
    assert [frame["function"] for frame in build.frames] == ["global", "main", "checkout", "applyDiscount"]
    for frame in build.frames:
        assert frame["platform"] == "hermes" and frame["filename"] == HERMES_BUNDLE_NAME
        assert frame["lineno"] == 1 and frame["in_app"] is True
        assert 0 < frame["colno"] < build.bundle_path.stat().st_size
    # The ground truth is the source the program was written as: the crash is the throw's
    # `new TypeError(...)`, each caller's frame its call (Hermes places a call or a `new` at
    # its argument list's opening parenthesis).
    crash, checkout = build.expected[-1], build.expected[2]
    assert crash.column is not None and checkout.column is not None
    assert "throw new TypeError" in _source_line(build.source_path, crash.line)
    assert _source_line(build.source_path, crash.line)[crash.column - 1 :].startswith("('unknown discount code")
    assert _source_line(build.source_path, checkout.line)[checkout.column - 1 :].startswith("(cart, cart.code)")


def test_symbolic_resolves_hermes_frames_through_the_map() -> None:
    build = hermes_build()
    view = SourceMapView.from_json_bytes(build.map_path.read_bytes())
    for frame, expected in zip(build.frames, build.expected, strict=True):
        # symbolic's lookup is 0-based in both; Hermes maps are one line whose column is the
        # bytecode offset, and the stack trace's column is that offset as it is.
        token = view.lookup(frame["lineno"] - 1, frame["colno"])
        assert token is not None, frame
        assert (token.src, token.src_line + 1, token.src_col + 1) == (expected.file, expected.line, expected.column)


# --- ProGuard -----------------------------------------------------------------------------

# An inlined range: "a:b:type Class.method(args):x:y -> name", the caller's line after it.
INLINE_ENTRY = re.compile(r"^\s+\d+:\d+:\S+ [\w.$]+\.(\w+)\([^)]*\):\d+:\d+ -> \w+$", re.M)


def test_proguard_mapping_has_inlined_ranges() -> None:
    mapping = proguard_build().mapping_path.read_text()
    assert "com.example.shop.CheckoutException -> " in mapping
    assert {"total", "unitPrice"} <= set(INLINE_ENTRY.findall(mapping))


def test_proguard_exception_list_is_what_posthog_android_sends() -> None:
    build = proguard_build()
    outer, cause = build.exception_list
    assert (outer["module"], outer["type"]) == ("java.lang", "IllegalStateException")
    assert cause["module"] == "com.example.shop" and cause["type"] != "CheckoutException"
    for exception in build.exception_list:
        assert exception["mechanism"] == {"handled": False, "synthetic": False, "type": "generic"}
        assert isinstance(exception["thread_id"], int) and exception["value"]
        assert exception["stacktrace"]["type"] == "raw"
        frames = exception["stacktrace"]["frames"]
        assert frames[0]["function"] == "main"  # bottom-up: the entry point first
        for frame in frames:
            assert frame["platform"] == "java" and frame["in_app"] is True
            assert frame["map_id"] == build.map_id
            assert frame["filename"] == "SourceFile"  # -renamesourcefileattribute
    assert [e.value for e in build.expected] == [e["value"] for e in build.exception_list]


def test_symbolic_remaps_proguard_frames_to_the_plain_run() -> None:
    build = proguard_build()
    mapper = ProguardMapper.open(str(build.mapping_path))
    assert mapper.has_line_info
    assert build.crash_site.class_name == "com.example.shop.CheckoutException"
    for sent, expected in zip(build.exception_list, build.expected, strict=True):
        assert mapper.remap_class(f"{sent['module']}.{sent['type']}") in (expected.class_name, None)
        remapped: list[JavaFrame] = []
        for frame in sent["stacktrace"]["frames"]:
            # remap_frame answers innermost first; an inlined frame expands to several.
            found = mapper.remap_frame(frame["module"], frame["function"], frame["lineno"]) or []
            for original in reversed(found):
                remapped.append(JavaFrame(original.class_name, original.method, None, original.line))
        # The mapping keeps no file names (ProGuard 6 writes none): compare without them.
        assert remapped == [JavaFrame(f.class_name, f.method, None, f.line) for f in expected.frames]
    # The crash site is inside unitPrice, inlined twice over into Cart.checkout.
    crash_frame = build.exception_list[-1]["stacktrace"]["frames"][-1]
    assert len(mapper.remap_frame(crash_frame["module"], crash_frame["function"], crash_frame["lineno"])) == 3
    assert mapper.remap_class(f"{build.exception_list[-1]['module']}.{build.exception_list[-1]['type']}") == (
        "com.example.shop.CheckoutException"
    )


# --- native (ELF) -------------------------------------------------------------------------


def test_native_debug_file_and_stripped_binary_match() -> None:
    build = native_build()
    binary = Archive.open(str(build.binary_path)).get_object(debug_id=build.debug_id)
    debug = Archive.open(str(build.debug_file_path)).get_object(debug_id=build.debug_id)
    assert binary is not None and debug is not None
    assert binary.code_id == debug.code_id == build.code_id
    assert "debug" in debug.features and "debug" not in binary.features
    assert b".gnu_debuglink" in build.binary_path.read_bytes()
    assert build.debug_image["debug_id"] == build.debug_id and build.debug_image["code_file"] == str(build.binary_path)


def test_native_frames_are_inside_the_image() -> None:
    build = native_build()
    image_addr = int(build.debug_image["image_addr"], 16)
    assert len(build.frames) == len(build.expected) == len(build.lookup_addresses) >= 4
    for frame, lookup in zip(build.frames, build.lookup_addresses, strict=True):
        assert frame["platform"] == "native" and frame["module"] == "crash" and frame["in_app"] is True
        assert frame["image_addr"] == build.debug_image["image_addr"]
        assert int(frame["instruction_addr"], 16) - image_addr - 1 == lookup
        assert 0 < lookup < build.debug_image["image_size"]
    # Bottom-up: ... main, process_order with apply_fee inlined into it, the crash site.
    assert [chain[0].function for chain in build.expected[-3:]] == ["main", "apply_fee", "crash_here"]
    assert [f.function for f in build.expected[-2]] == ["apply_fee", "process_order"]


def test_symbolic_symcache_gives_the_symbolizer_answer() -> None:
    build = native_build()
    obj = Archive.open(str(build.debug_file_path)).get_object(debug_id=build.debug_id)
    symcache: Any = obj.make_symcache()
    for lookup, expected in zip(build.lookup_addresses, build.expected, strict=True):
        found = tuple(
            SourceFrame(info.symbol, Path(info.full_path).name if info.full_path else None, info.line)
            for info in symcache.lookup(lookup)
        )
        assert found == tuple(SourceFrame(f.function, f.file, f.line) for f in expected), hex(lookup)


# --- dSYM (Apple) -------------------------------------------------------------------------


def test_dsym_is_a_macho_debug_companion() -> None:
    build = dsym_build()
    assert (build.dsym_path / "Contents" / "Info.plist").exists()
    dwarf = Archive.open(str(build.dwarf_path)).get_object(debug_id=build.debug_id.lower())
    binary = Archive.open(str(build.binary_path)).get_object(debug_id=build.debug_id.lower())
    assert dwarf is not None and binary is not None
    assert dwarf.arch == build.arch == "arm64" and dwarf.file_format == "macho"
    assert "debug" in dwarf.features
    assert build.debug_id == build.debug_id.upper()


def test_symbolic_symcache_resolves_the_dsym_crash() -> None:
    build = dsym_build()
    assert build.image_addr == 0x1_0000_0000
    assert [(f.function, f.file, f.line) for f in build.expected] == [
        ("apply_fee", "app.c", 8),
        ("process_order", "app.c", 13),
    ]
    obj = Archive.open(str(build.dwarf_path)).get_object(debug_id=build.debug_id.lower())
    symcache: Any = obj.make_symcache()
    found = [
        (info.symbol, Path(info.full_path).name, info.line)
        for info in symcache.lookup(build.crash_addr - build.image_addr)
    ]
    assert found == [(f.function, f.file, f.line) for f in build.expected]
