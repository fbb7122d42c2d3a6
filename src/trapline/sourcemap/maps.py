"""Source map documents: validation, flattening index maps, serialising.

An *index map* (``"sections"``) places several regular maps at offsets of one generated file.
``inject`` flattens it into one regular map before shifting it, as PostHog's CLI does: every
resolver reads a regular map, while some (PostHog's included) refuse index maps.
"""

from __future__ import annotations

import json
from typing import Any

from trapline.sourcemap.mappings import MappingsError, Segment, decode, encode

__all__ = ["SourceMapError", "dump", "flatten", "is_index_map", "load"]

_IGNORE_LISTS = ("ignoreList", "x_google_ignoreList")


class SourceMapError(ValueError):
    """The document is not a source map this tool can rewrite."""


def load(data: bytes) -> dict[str, Any]:
    """Parse and check a source map (regular or index)."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceMapError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise SourceMapError("not a JSON object")
    if is_index_map(document):
        if not isinstance(document["sections"], list):
            raise SourceMapError('"sections" is not a list')
    elif not isinstance(document.get("mappings"), str):
        raise SourceMapError('no "mappings" string')
    return document


def dump(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in their original order."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def is_index_map(document: dict[str, Any]) -> bool:
    return "sections" in document


def flatten(document: dict[str, Any]) -> dict[str, Any]:
    """The regular map equivalent to an index map; other top-level keys are kept in place."""
    merged = _Merged()
    sections = document["sections"]
    offsets = [_offset(section) for section in sections]
    for index, section in enumerate(sections):
        if not isinstance(section, dict) or "map" not in section:
            raise SourceMapError('a section without an embedded "map" (sections with "url" are not supported)')
        inner = section["map"]
        if not isinstance(inner, dict):
            raise SourceMapError('a section\'s "map" is not an object')
        if is_index_map(inner):  # nested index maps were allowed by older revisions of the spec
            inner = flatten(inner)
        end = offsets[index + 1] if index + 1 < len(offsets) else None
        merged.add(inner, offsets[index], end)

    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key == "sections":
            flat.update(merged.fields())
        elif key not in flat:
            flat[key] = value
    flat.setdefault("version", 3)
    return flat


def _offset(section: Any) -> tuple[int, int]:
    offset = section.get("offset") if isinstance(section, dict) else None
    if not isinstance(offset, dict):
        raise SourceMapError('a section without an "offset"')
    line, column = offset.get("line"), offset.get("column")
    if not isinstance(line, int) or not isinstance(column, int) or line < 0 or column < 0:
        raise SourceMapError("a section offset is not a pair of non-negative integers")
    return line, column


class _Merged:
    """Sources, names and segments of the sections seen so far, in one index space."""

    def __init__(self) -> None:
        self.sources: list[str | None] = []
        self.contents: list[str | None] = []
        self.names: list[str] = []
        self.ignored: list[int] = []
        self.lines: list[list[Segment]] = []
        self._source_ids: dict[tuple[str, str | None], int] = {}
        self._name_ids: dict[str, int] = {}

    def add(self, inner: dict[str, Any], start: tuple[int, int], end: tuple[int, int] | None) -> None:
        mappings = inner.get("mappings")
        if not isinstance(mappings, str):
            raise SourceMapError('a section\'s map has no "mappings" string')
        source_ids = self._add_sources(inner)
        name_ids = [self._name(name) for name in _list(inner, "names")]
        try:
            lines = decode(mappings)
        except MappingsError as exc:
            raise SourceMapError(str(exc)) from exc

        # Without a cut, the previous section's last segment would cover the start of this one.
        cut = any(self.lines)
        for line_number, segments in enumerate(lines):
            line = start[0] + line_number
            for segment in segments:
                column = segment[0] + (start[1] if line_number == 0 else 0)
                if end is not None and (line, column) >= end:  # sections must not overlap
                    return
                if cut and (line, column) != start:
                    self._append(start[0], (start[1],))
                cut = False
                if len(segment) == 1:
                    self._append(line, (column,))
                    continue
                try:
                    moved: Segment = (column, source_ids[segment[1]], segment[2], segment[3])
                    if len(segment) == 5:
                        moved += (name_ids[segment[4]],)
                except IndexError:
                    raise SourceMapError("a segment refers to a source or name that does not exist") from None
                self._append(line, moved)
        if cut:
            self._append(start[0], (start[1],))

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"sources": self.sources}
        if any(content is not None for content in self.contents):
            fields["sourcesContent"] = self.contents
        fields["names"] = self.names
        fields["mappings"] = encode(self.lines)
        if self.ignored:
            fields["ignoreList"] = sorted(set(self.ignored))
        return fields

    def _add_sources(self, inner: dict[str, Any]) -> list[int]:
        root = inner.get("sourceRoot") or ""
        if root and not root.endswith("/"):
            root += "/"
        contents = _list(inner, "sourcesContent")
        ignored = {index for key in _IGNORE_LISTS for index in _list(inner, key) if isinstance(index, int)}
        ids: list[int] = []
        for index, name in enumerate(_list(inner, "sources")):
            content = contents[index] if index < len(contents) and isinstance(contents[index], str) else None
            full = f"{root}{name}" if isinstance(name, str) else None
            ids.append(self._source(full, content))
            if index in ignored:
                self.ignored.append(ids[-1])
        return ids

    def _source(self, name: str | None, content: str | None) -> int:
        # The same file in two sections becomes one source; a nameless one never merges.
        key = (name, content) if name is not None else None
        if key is not None and key in self._source_ids:
            return self._source_ids[key]
        self.sources.append(name)
        self.contents.append(content)
        if key is not None:
            self._source_ids[key] = len(self.sources) - 1
        return len(self.sources) - 1

    def _name(self, name: Any) -> int:
        text = str(name)
        if text not in self._name_ids:
            self._name_ids[text] = len(self.names)
            self.names.append(text)
        return self._name_ids[text]

    def _append(self, line: int, segment: Segment) -> None:
        while len(self.lines) <= line:
            self.lines.append([])
        self.lines[line].append(segment)


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    return value if isinstance(value, list) else []
