"""Hermes source maps: React Native bytecode offsets back to source file, line and function.

A Hermes stack line reads ``at fn (address at index.android.bundle:1:1234)``: the "line" is
always 1 and the "column" is the offset into the bytecode. The composed source map that
React Native builds (Metro's map composed with hermesc's) has a single generated line whose
columns are bytecode offsets, so a frame is looked up at (line 0, column = offset), as cymbal
does.

Function names come from Metro's function map, ``x_facebook_sources``: per source, a list of
names and a VLQ string of (column, name index, line) deltas marking where each function's
scope starts. The name of a position is the last scope starting at or before it. A map made
without Metro (hermesc alone) has none: cymbal calls that a "location-only" map, and the
frame keeps the name the runtime reported (Hermes keeps function names in bytecode).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import orjson
from symbolic.sourcemap import SourceMapView

from trapline.pipeline.frames import FrameContext
from trapline.pipeline.frames.base import context_around

__all__ = ["HermesMap", "HermesPosition", "decode_vlq_segment"]

CONTEXT_LINES = 15
_BASE64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


@dataclass(frozen=True)
class HermesPosition:
    source: str | None
    line: int  # 1-based
    column: int  # 1-based
    function: str | None  # None for a location-only map
    context: FrameContext | None


@dataclass(frozen=True)
class _FunctionMap:
    starts: list[tuple[int, int]]  # (1-based line, 0-based column) of each scope, sorted
    names: list[str]  # the name of each scope, in the order of starts


class HermesMap:
    def __init__(self, view: SourceMapView, functions: dict[int, _FunctionMap], size: int) -> None:
        self._view = view
        self._functions = functions
        self.size = size

    @classmethod
    def from_payload(cls, data: bytes) -> HermesMap | str:
        """Parse a composed Hermes map, or say why it is unusable (the reason is stored)."""
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return f"Invalid map: not JSON ({exc})"
        if not isinstance(document, dict) or "mappings" not in document:
            return "Invalid map: not a source map (no mappings)"
        try:
            view = SourceMapView.from_json_bytes(data)
        except Exception as exc:  # symbolic raises its own exception tree for bad maps
            return f"Invalid map: {exc or type(exc).__name__}"
        try:
            functions = _function_maps(document.get("x_facebook_sources"))
        except ValueError as exc:
            return f"Invalid map: x_facebook_sources: {exc}"
        return cls(view, functions, len(data))

    def lookup(self, offset: int) -> HermesPosition | None:
        """Where bytecode ``offset`` comes from, or None if the map has no token for it."""
        token = self._view.lookup(0, offset)
        if token is None:
            return None
        line = token.src_line + 1
        function = None
        if token.src_id is not None and token.src_id in self._functions:
            function = _scope_name(self._functions[token.src_id], line, token.src_col)
        return HermesPosition(token.src, line, token.src_col + 1, function, self._context(token.src_id, line))

    def _context(self, source_id: int | None, line: int) -> FrameContext | None:
        view = self._view.get_sourceview(source_id) if source_id is not None else None
        if view is None:
            return None
        return context_around(list(view), line, CONTEXT_LINES)


def _scope_name(functions: _FunctionMap, line: int, column: int) -> str | None:
    index = bisect.bisect_right(functions.starts, (line, column)) - 1
    if index < 0:
        return None
    return functions.names[index]


def _function_maps(sources: Any) -> dict[int, _FunctionMap]:
    """Metro's function maps by source index (sources without one are left out)."""
    if sources is None:
        return {}
    if not isinstance(sources, list):
        raise ValueError("not a list")
    found: dict[int, _FunctionMap] = {}
    for index, entry in enumerate(sources):
        # Each source has a list of metadata objects; the function map is the first one.
        if not isinstance(entry, list) or not entry or not isinstance(entry[0], dict):
            continue
        names, mappings = entry[0].get("names"), entry[0].get("mappings")
        if not isinstance(names, list) or not isinstance(mappings, str):
            continue
        found[index] = _decode_function_map([str(name) for name in names], mappings)
    return found


def _decode_function_map(names: list[str], mappings: str) -> _FunctionMap:
    # Segments are grouped by source line (";" starts a new group, whose columns restart at
    # 0); each segment adds to column, name index and line, which carry over between groups.
    scopes: list[tuple[int, int, int]] = []
    line, name_index = 1, 0
    for group in mappings.split(";"):
        column = 0
        for segment in group.split(","):
            if not segment:
                continue
            values = decode_vlq_segment(segment)
            column += values[0]
            if len(values) > 1:
                name_index += values[1]
            if len(values) > 2:
                line += values[2]
            if not 0 <= name_index < len(names):
                raise ValueError(f"name index {name_index} out of range")
            scopes.append((line, column, name_index))
    scopes.sort()
    return _FunctionMap([(line, column) for line, column, _ in scopes], [names[i] for _, _, i in scopes])


def decode_vlq_segment(segment: str) -> list[int]:
    """The numbers of one base64 VLQ segment, as source maps encode them."""
    values: list[int] = []
    value = shift = 0
    for char in segment:
        digit = _BASE64.get(char)
        if digit is None:
            raise ValueError(f"invalid base64 VLQ character {char!r}")
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    if shift:
        raise ValueError("VLQ segment ends mid-number")
    return values
