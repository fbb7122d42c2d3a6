"""Injected esbuild bundles still map to their sources, token for token (read with symbolic).

Every token of the original map is looked up at its new place in the injected file; the test
finds that place itself (where the snippet landed) and checks that the same text is there, so
it does not trust the shifting code it tests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from symbolic.sourcemap import SourceMapView

from tests.sourcemap.conftest import Bundler
from trapline.sourcemap import maps
from trapline.sourcemap.inject import ReleaseMode, inject, snippet

CHUNK = "0192c2a0-1111-7000-8000-00000000abcd"
RELEASE = "0192c2a0-2222-7000-8000-00000000cafe"

ORDERS = """\
export class Cart {
  constructor() {
    this.items = [];
  }

  add(order) {
    validateQuantity(order);
    this.items.push(order);
    return this.items.length;
  }
}

export function validateQuantity(order) {
  if (order.quantity <= 0) {
    throw new TypeError("quantity must be positive: " + order.quantity);
  }
}

export function handleClick(cart, quantity) {
  return cart.add({ sku: "tea", quantity });
}
"""

# Non-ASCII text before code on the same line: columns count UTF-16 units, not bytes.
FORMAT = """\
export function price(amount) {
  const label = "Prix : € — ☕ 🎉 "; return label + amount.toFixed(2);
}
"""

INDEX = """\
import { Cart, handleClick } from "./orders.js";
import { price } from "./format.js";

const cart = new Cart();
console.log(price(handleClick(cart, 3)));
console.log(JSON.stringify({
  strict: (function () { return this === undefined; })(),
  chunks: Object.values(globalThis._posthogChunkIds || {}),
}));
"""

SOURCES = {"src/orders.js": ORDERS, "src/format.js": FORMAT, "src/index.js": INDEX}
MINIFIED = ("--bundle", "--minify", "--charset=utf8")


def view(document: dict[str, Any]) -> SourceMapView:
    return SourceMapView.from_json_bytes(json.dumps(document).encode())


def lines(source: bytes) -> list[bytes]:
    """Generated lines as UTF-16-LE, so that a column is two bytes."""
    return [line.encode("utf-16-le") for line in source.decode().split("\n")]


def text_at(lines_: list[bytes], line: int, column: int, width: int = 12) -> bytes:
    return lines_[line][2 * column : 2 * (column + width)]


def shift_for(injected: bytes, text: str):  # type: ignore[no-untyped-def]
    """How positions moved, worked out from where the snippet is in the injected file."""
    at = injected.index(text.encode())
    line = injected[:at].count(b"\n")
    column = len(injected[:at].decode().rsplit("\n", 1)[-1].encode("utf-16-le")) // 2
    own_line = column == 0 and injected[at + len(text) : at + len(text) + 1] == b"\n"

    def shift(old_line: int, old_column: int) -> tuple[int, int]:
        if own_line:
            return (old_line + 1, old_column) if old_line >= line else (old_line, old_column)
        if old_line == line and old_column >= column:
            return old_line, old_column + len(text)
        return old_line, old_column

    return shift, (line, column, own_line)


def assert_same_mapping(
    original: bytes, original_map: dict[str, Any], injected: bytes, injected_map: dict[str, Any], text: str
) -> tuple[int, int, bool]:
    shift, where = shift_for(injected, text)
    before, after = view(original_map), view(injected_map)
    old_lines, new_lines = lines(original), lines(injected)
    tokens = list(before)
    assert len(tokens) > 20
    for token in tokens:
        line, column = shift(token.dst_line, token.dst_col)
        assert text_at(new_lines, line, column) == text_at(old_lines, token.dst_line, token.dst_col)
        found = after.lookup(line, column)
        assert found is not None, (token.dst_line, token.dst_col)
        assert (found.src, found.src_line, found.src_col, found.name) == (
            token.src,
            token.src_line,
            token.src_col,
            token.name,
        ), (token.dst_line, token.dst_col)
    return where


def original_line_of(needle: str, source: str) -> int:
    return next(number for number, line in enumerate(source.split("\n")) if needle in line)


def test_minified_bundle_maps_the_same_after_injection(bundle: Bundler):
    original, original_map = bundle(SOURCES, "src/index.js", *MINIFIED, "--format=iife")
    result = inject(original, original_map, CHUNK)

    line, column, own_line = assert_same_mapping(
        original, original_map, result.source, result.source_map, snippet(CHUNK)
    )
    assert (line, column, own_line) == (0, 0, True)
    assert result.source_map["mappings"] == ";" + original_map["mappings"]
    # And an independent spot check: the thrown message maps to its line in orders.js.
    injected_lines = result.source.decode().split("\n")
    row = next(n for n, text in enumerate(injected_lines) if "quantity must be positive" in text)
    col = len(injected_lines[row].split('"quantity must be positive')[0].encode("utf-16-le")) // 2
    found = view(result.source_map).lookup(row, col)
    assert found is not None
    assert found.src == "../src/orders.js"
    assert found.src_line == original_line_of("quantity must be positive", ORDERS)


def test_unminified_bundle_maps_the_same_after_injection(bundle: Bundler):
    original, original_map = bundle(SOURCES, "src/index.js", "--bundle", "--charset=utf8", "--format=esm")
    assert original.count(b"\n") > 20
    result = inject(original, original_map, CHUNK, release_id=RELEASE)
    assert_same_mapping(original, original_map, result.source, result.source_map, snippet(CHUNK, RELEASE))


def test_shebang_stays_first_and_the_map_shifts_below_it(bundle: Bundler):
    files = {**SOURCES, "src/index.js": "#!/usr/bin/env node\n" + INDEX}
    original, original_map = bundle(files, "src/index.js", *MINIFIED, "--platform=node", "--format=cjs")
    assert original.startswith(b"#!/usr/bin/env node\n")
    result = inject(original, original_map, CHUNK)

    assert result.source.startswith(b"#!/usr/bin/env node\n" + snippet(CHUNK).encode() + b"\n")
    where = assert_same_mapping(original, original_map, result.source, result.source_map, snippet(CHUNK))
    assert where == (1, 0, True)


def test_use_strict_directive_shares_its_line_with_the_snippet(bundle: Bundler):
    # Without --bundle esbuild keeps the directive, on the same line as the code after it.
    code = '"use strict";\n' + ORDERS.replace("export ", "") + "\nconsole.log(new Cart().add({quantity: 2}));\n"
    original, original_map = bundle({"src/app.js": code}, "src/app.js", "--minify", "--charset=utf8")
    assert original.startswith(b'"use strict";') and not original.startswith(b'"use strict";\n')
    result = inject(original, original_map, CHUNK)

    assert result.source.startswith(b'"use strict";' + snippet(CHUNK).encode())
    where = assert_same_mapping(original, original_map, result.source, result.source_map, snippet(CHUNK))
    assert where == (0, len('"use strict";'), False)


def test_injected_cjs_bundle_still_runs_strict_and_registers_its_chunk(bundle: Bundler, tmp_path: Path):
    files = {**SOURCES, "src/index.js": '#!/usr/bin/env node\n"use strict";\n' + INDEX}
    original, original_map = bundle(files, "src/index.js", *MINIFIED, "--platform=node", "--format=cjs")
    assert original.startswith(b'#!/usr/bin/env node\n"use strict";')
    result = inject(original, original_map, CHUNK, release_id=RELEASE)
    script = tmp_path / "app.cjs"
    script.write_bytes(result.source)

    run = subprocess.run(["node", str(script)], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[0] == "Prix : € — ☕ 🎉 1.00"
    state = json.loads(run.stdout.splitlines()[-1])
    assert state == {"strict": True, "chunks": [CHUNK]}
    assert_same_mapping(original, original_map, result.source, result.source_map, snippet(CHUNK, RELEASE))


def test_index_map_is_flattened_and_still_maps_every_section(bundle: Bundler):
    first, first_map = bundle(SOURCES, "src/index.js", *MINIFIED, "--format=iife")
    second, second_map = bundle({"src/app.js": ORDERS}, "src/app.js", *MINIFIED, "--format=iife")
    first_code = first.decode().split("\n//# sourceMappingURL")[0].rstrip("\n")
    second_code = second.decode().split("\n//# sourceMappingURL")[0].rstrip("\n")
    assert "\n" not in first_code and "\n" not in second_code
    # Two sections on one line (a column offset), then the second one again on a line of its own.
    generated = first_code + second_code + "\n" + second_code + "\n"
    width = len(first_code.encode("utf-16-le")) // 2
    index_map = {
        "version": 3,
        "file": "bundle.js",
        "sections": [
            {"offset": {"line": 0, "column": 0}, "map": first_map},
            {"offset": {"line": 0, "column": width}, "map": second_map},
            {"offset": {"line": 1, "column": 0}, "map": second_map},
        ],
        "debugId": "8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70",
    }
    result = inject(generated.encode(), index_map, CHUNK)

    flat = result.source_map
    assert "sections" not in flat
    assert flat["file"] == "bundle.js" and flat["debugId"] == index_map["debugId"]
    assert flat["chunk_id"] == CHUNK
    assert sorted(flat["sources"]) == sorted(set(first_map["sources"]) | set(second_map["sources"]))
    assert len(flat["sourcesContent"]) == len(flat["sources"])
    # symbolic reads index maps too: the flattened, shifted map agrees with it everywhere.
    assert_same_mapping(generated.encode(), index_map, result.source, flat, snippet(CHUNK))
    after = view(flat)
    for offset, section_map in ((0, first_map), (width, second_map)):
        for token in view(section_map):
            found = after.lookup(token.dst_line + 1, token.dst_col + offset)
            assert found is not None
            assert (found.src, found.src_line, found.src_col) == (token.src, token.src_line, token.src_col)


@pytest.mark.parametrize("mode", list(ReleaseMode))
def test_map_keeps_its_other_keys(bundle: Bundler, mode: ReleaseMode):
    original, original_map = bundle(SOURCES, "src/index.js", *MINIFIED)
    original_map["debugId"] = "8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"
    original_map["x_custom"] = {"kept": True}
    result = inject(original, original_map, CHUNK, release_id=RELEASE, mode=mode)

    rewritten = maps.load(maps.dump(result.source_map))
    extra = {"chunk_id": CHUNK} | ({"release_id": RELEASE} if mode is ReleaseMode.SYMBOL_SET else {})
    assert list(rewritten) == [*original_map, *extra]
    assert {key: value for key, value in rewritten.items() if key != "mappings"} == {
        **{key: value for key, value in original_map.items() if key != "mappings"},
        **extra,
    }
