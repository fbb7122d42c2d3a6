"""``custom`` frames: an SDK's own language, resolved or not as the SDK says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from trapline.pipeline._wire import get_bool, get_str, get_str_list, get_u32
from trapline.pipeline.frames.base import (
    FrameContext,
    Meta,
    ResolvedFrame,
    SymbolLookup,
    build_frame,
    context_offset,
    cut_context_line,
    read_meta,
    sha512_hex,
    u32_be,
    utf8,
)

__all__ = ["CustomFrame", "parse_custom_frame"]

# Custom frames keep at most this many context lines each side (langs/custom.rs).
_CUSTOM_CONTEXT_LINES = 10


@dataclass(frozen=True)
class CustomFrame:
    """A custom frame: the SDK names its language and says whether it is resolved."""

    lang: str
    function: str
    filename: str | None
    lineno: int | None
    colno: int | None
    module: str | None
    context_line: str | None
    pre_context: list[str]
    post_context: list[str]
    resolved: bool
    meta: Meta

    def raw_hash(self) -> str:
        parts = [utf8(self.context_line)] if self.context_line is not None else []
        if self.filename is not None:
            parts.append(utf8(self.filename))
        parts += [utf8(self.function), u32_be(self.lineno), u32_be(self.colno), utf8(self.lang)]
        parts.append(b"true" if self.resolved else b"false")
        if self.module is not None:
            parts.append(utf8(self.module))
        parts += [utf8(line) for line in (*self.pre_context, *self.post_context)]
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        frame = build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=self.lineno,
            column=self.colno,
            source=self.filename,
            module=self.module,
            in_app=self.meta.in_app,
            # cymbal names custom frames after their function even when resolved is false.
            resolved_name=self.function,
            lang=self.lang,
            resolved=self.resolved,
            synthetic=self.meta.synthetic,
        )
        return ResolvedFrame(frame, self.context())

    def lookup(self) -> SymbolLookup | None:
        return None

    def context(self) -> FrameContext | None:
        if self.context_line is None or self.lineno is None:
            return None
        lineno = self.lineno
        # Custom frames put the line just above the frame at index 0 of pre_context.
        pre = self.pre_context[:_CUSTOM_CONTEXT_LINES]
        post = self.post_context[:_CUSTOM_CONTEXT_LINES]
        before = [cut_context_line(context_offset(lineno, -i - 1), line) for i, line in enumerate(pre)]
        after = [cut_context_line(context_offset(lineno, i + 1), line) for i, line in enumerate(post)]
        return {"before": before, "line": cut_context_line(lineno, self.context_line), "after": after}


def parse_custom_frame(raw: Mapping[str, object]) -> CustomFrame:
    resolved = get_bool(raw, "resolved", default=False)
    assert resolved is not None
    return CustomFrame(
        lang=cast(str, get_str(raw, "lang", required=True)),
        function=cast(str, get_str(raw, "function", required=True)),
        filename=get_str(raw, "filename"),
        lineno=get_u32(raw, "lineno"),
        colno=get_u32(raw, "colno"),
        module=get_str(raw, "module"),
        context_line=get_str(raw, "context_line"),
        pre_context=get_str_list(raw, "pre_context"),
        post_context=get_str_list(raw, "post_context"),
        resolved=resolved,
        meta=read_meta(raw),
    )
