"""Go frames: always resolved as sent."""

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

__all__ = ["GoFrame", "parse_go_frame"]


@dataclass(frozen=True)
class GoFrame:
    """A go frame: file, function and line, all required."""

    filename: str
    function: str
    lineno: int
    meta: Meta

    def raw_hash(self) -> str:
        return sha512_hex([utf8(self.filename), utf8(self.function), u32_be(self.lineno)])

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        frame = build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=self.lineno,
            column=None,
            source=self.filename,
            module=None,
            in_app=self.meta.in_app,
            resolved_name=self.function,
            lang="go",
            resolved=True,
            synthetic=self.meta.synthetic,
        )
        return ResolvedFrame(frame, None)

    def lookup(self) -> SymbolLookup | None:
        return None

    def context(self) -> FrameContext | None:
        return None


def parse_go_frame(raw: Mapping[str, object]) -> GoFrame:
    return GoFrame(
        filename=cast(str, get_str(raw, "filename", required=True)),
        function=cast(str, get_str(raw, "function", required=True)),
        lineno=cast(int, get_u32(raw, "lineno", required=True)),
        meta=read_meta(raw),
    )
