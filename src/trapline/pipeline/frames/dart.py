"""Flutter frames: ``platform: "dart"``, as posthog-flutter sends them; resolved as sent.

Dart stack traces name real functions, files and lines (obfuscated Flutter builds aside,
which cymbal does not resolve either), so a frame passes through with ``abs_path`` (the
``package:``/``dart:`` URI) as its source and its function, possibly empty, as its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from trapline.pipeline._wire import get_str, get_u32
from trapline.pipeline.frames.base import (
    FrameContext,
    Meta,
    ResolvedFrame,
    SymbolLookup,
    build_frame,
    read_meta,
    sha512_hex,
    u32_be,
    utf8,
)

__all__ = ["DartFrame", "parse_dart_frame"]


@dataclass(frozen=True)
class DartFrame:
    abs_path: str
    filename: str | None
    package: str | None
    function: str | None
    lineno: int | None
    colno: int | None
    meta: Meta

    def raw_hash(self) -> str:
        # abs_path is not hashed: cymbal identifies a dart frame by file, package and position.
        parts = [utf8(text) for text in (self.filename, self.package) if text is not None]
        parts += [utf8(self.function or ""), u32_be(self.lineno), u32_be(self.colno)]
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        frame = build_frame(
            raw_id=raw_id,
            mangled_name=self.function or "",
            line=self.lineno,
            column=self.colno,
            source=self.abs_path,
            module=None,
            in_app=self.meta.in_app,
            resolved_name=self.function or "",
            lang="dart",
            resolved=True,
            synthetic=self.meta.synthetic,
        )
        return ResolvedFrame(frame, None)

    def lookup(self) -> SymbolLookup | None:
        return None

    def context(self) -> FrameContext | None:
        return None


def parse_dart_frame(raw: Mapping[str, object]) -> DartFrame:
    return DartFrame(
        abs_path=cast(str, get_str(raw, "abs_path", required=True)),
        filename=get_str(raw, "filename"),
        package=get_str(raw, "package"),
        function=get_str(raw, "function"),
        lineno=get_u32(raw, "lineno"),
        colno=get_u32(raw, "colno"),
        meta=read_meta(raw),
    )
