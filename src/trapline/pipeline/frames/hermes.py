"""React Native (Hermes) frames: ``platform: "hermes"``, as posthog-react-native sends them.

Hermes reports line 1 and the bytecode offset as the column, so a frame is found in its
chunk's Hermes map by offset alone (``lineno`` is ignored, as cymbal ignores it). Without a
chunk id there is nothing to look up; without a column the frame passes through by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from trapline.pipeline._wire import get_str, get_u32
from trapline.pipeline.frames.base import (
    Frame,
    FrameContext,
    Meta,
    ResolvedFrame,
    SymbolLookup,
    build_frame,
    read_meta,
    sha512_hex,
    utf8,
)
from trapline.pipeline.frames.javascript import read_chunk_id

__all__ = ["HermesFrame", "hermes_failure", "hermes_missing", "hermes_no_token", "parse_hermes_frame"]

_NO_CHUNK_ID = "No chunk id sent with frame"


def hermes_missing(chunk_id: str) -> str:
    return f"No sourcemap uploaded for chunk id: {chunk_id}"


def hermes_no_token(column: int, chunk_id: str) -> str:
    return f"No token for column {column} on chunk {chunk_id}"


def hermes_failure(detail: str) -> str:
    """A symbol set that is not a usable Hermes map (the detail starts with "Invalid map")."""
    return detail if detail.startswith("Invalid map") else f"Invalid map: {detail}"


@dataclass(frozen=True)
class HermesFrame:
    function: str
    filename: str
    colno: int | None
    chunk_id: str | None
    meta: Meta

    def raw_hash(self) -> str:
        parts = [utf8(self.function), utf8(self.filename)]
        if self.colno is not None:
            parts.append(utf8(str(self.colno)))
        if self.chunk_id is not None:
            parts.append(utf8(self.chunk_id))
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        if self.colno is None:
            # Nothing to map: the runtime's name stands (Hermes keeps names in bytecode).
            frame = build_frame(
                raw_id=raw_id,
                mangled_name=self.function,
                line=None,
                column=None,
                source=self.filename,
                module=None,
                in_app=self.meta.in_app and self.filename != "<anonymous>",
                resolved_name=self.function,
                lang="javascript",
                resolved=True,
                synthetic=self.meta.synthetic,
            )
            return ResolvedFrame(frame, None)
        # With a chunk id this is what the frame gets when no map was uploaded for it.
        failure = _NO_CHUNK_ID if self.chunk_id is None else hermes_missing(self.chunk_id)
        return ResolvedFrame(self.unresolved(raw_id, failure), None)

    def unresolved(self, raw_id: str, failure: str) -> Frame:
        """The frame when its map is missing or cannot place it."""
        return build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=1,
            column=self.colno,
            source=self.filename,
            module=None,
            in_app=self.meta.in_app,
            resolved_name=None,
            lang="javascript",
            resolved=False,
            resolve_failure=failure,
            synthetic=self.meta.synthetic,
        )

    def mapped(self, raw_id: str, *, source: str | None, line: int, column: int, function: str | None) -> Frame:
        """The frame its map placed; ``function`` is None for a location-only map."""
        return build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=line,
            column=column,
            source=source,
            module=None,
            in_app=self.meta.in_app if source is None else "node_modules" not in source,
            resolved_name=function,
            lang="javascript",
            resolved=True,
            synthetic=self.meta.synthetic,
        )

    def lookup(self) -> SymbolLookup | None:
        if self.chunk_id is None or self.colno is None:
            return None
        return SymbolLookup(self.chunk_id, 1, self.colno, kind="hermes")

    def context(self) -> FrameContext | None:
        return None


def parse_hermes_frame(raw: Mapping[str, object]) -> HermesFrame:
    return HermesFrame(
        function=cast(str, get_str(raw, "function", required=True)),
        filename=cast(str, get_str(raw, "filename", required=True)),
        colno=get_u32(raw, "colno"),
        chunk_id=read_chunk_id(raw),
        meta=read_meta(raw),
    )
