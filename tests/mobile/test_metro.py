"""A React Native release build's composed map (Metro's bundle map composed with hermesc's)
resolves Hermes frames as React Native's own symbolicator, metro-symbolicate, resolves them:
same source, line and function name, the name taken from Metro's function map.

The frames name their functions as Hermes does after the minifier (one letter, or
"anonymous"), so only the function map can give the names back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mobile.artefacts import HERMES_BUNDLE_NAME, metro_hermes_build
from trapline.symbols.hermes import HermesMap

# Hermes bytecode files start with this 64-bit magic, stored little-endian.
HBC_MAGIC = (0x1F1903C103BC1FC6).to_bytes(8, "little")


def test_composed_map_keeps_function_maps_and_function_offsets() -> None:
    build = metro_hermes_build()
    assert build.bundle_path.read_bytes()[:8] == HBC_MAGIC
    packager = json.loads(build.packager_map_path.read_text())
    compiler = json.loads(build.compiler_map_path.read_text())
    composed = json.loads(build.composed_map_path.read_text())
    # Each map carries its own half: Metro's the function maps, hermesc's the offsets.
    assert "x_facebook_sources" in packager and "x_hermes_function_offsets" not in packager
    assert "x_facebook_sources" not in compiler and "x_hermes_function_offsets" in compiler
    assert composed["x_hermes_function_offsets"] == compiler["x_hermes_function_offsets"]
    # Composition drops sources without mappings (Metro's __prelude__), so the function
    # maps are laid out again by source: they must still line up with "sources".
    assert len(composed["x_facebook_sources"]) == len(composed["sources"])
    for name in ("index.js", "cart.js"):
        source = str(build.source_dir / name)
        function_map = composed["x_facebook_sources"][composed["sources"].index(source)]
        assert function_map == packager["x_facebook_sources"][packager["sources"].index(source)]
        assert function_map[0]["names"] and function_map[0]["mappings"]


def test_frames_are_the_crash_path_named_as_hermes_names_it() -> None:
    build = metro_hermes_build()
    size = build.bundle_path.stat().st_size
    for frame in build.frames:
        assert frame["platform"] == "hermes" and frame["filename"] == HERMES_BUNDLE_NAME
        assert frame["lineno"] == 1 and frame["in_app"] is True and 0 < frame["colno"] < size
    # The crash path of sources/metro/app as Metro names its functions (metro-symbolicate's
    # answer, pinned here so that a builder taking the wrong instructions shows).
    assert [e.function for e in build.expected] == [
        "<global>",
        "startCheckout",
        "Cart#total",
        "priceWith",
        "priceWith$argument_1",
        "applyDiscount",
    ]
    assert [Path(e.file or "").name for e in build.expected] == ["index.js"] * 2 + ["cart.js"] * 4
    # None of those names survives in the bytecode: the runtime alone cannot name a frame.
    assert not {f["function"] for f in build.frames} & {e.function for e in build.expected}
    crash = build.expected[-1]
    assert crash.file is not None and crash.column is not None
    line = Path(crash.file).read_text().splitlines()[crash.line - 1]
    assert "throw new TypeError" in line and line[crash.column - 1 :].startswith("TypeError(")


def test_trapline_resolves_frames_as_metro_symbolicate_does() -> None:
    build = metro_hermes_build()
    hermes_map = HermesMap.from_payload(build.composed_map_path.read_bytes())
    assert isinstance(hermes_map, HermesMap), hermes_map
    for frame, expected in zip(build.frames, build.expected, strict=True):
        position = hermes_map.lookup(frame["colno"])
        assert position is not None, frame
        got = (position.source, position.line, position.column, position.function)
        assert got == (expected.file, expected.line, expected.column, expected.function), frame
