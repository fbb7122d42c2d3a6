"""python, ruby and node:javascript frames: Sentry's shape, with the source lines around the
frame. Node frames with a chunk id and a position need a symbol set; without one they fail as
JavaScript frames do (``node_unresolved``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from trapline.pipeline._wire import get_str, get_str_list, get_u32
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
from trapline.pipeline.frames.javascript import JsResolveError, read_chunk_id

__all__ = ["SentryLikeFrame", "node_unresolved", "parse_sentry_like_frame"]

# Node frames are taken to be minified when their context lines average more bytes than this.
_MINIFIED_AVERAGE_LINE = 300.0


@dataclass(frozen=True)
class SentryLikeFrame:
    """python, ruby and node:javascript frames: Sentry's shape with context lines."""

    platform: str
    filename: str
    function: str
    lineno: int | None
    colno: int | None
    module: str | None
    context_line: str | None
    pre_context: list[str]
    post_context: list[str]
    chunk_id: str | None
    code_variables: object
    meta: Meta

    def raw_hash(self) -> str:
        # context_line?, filename, function, lineno (u32 BE, 0 if absent), module?, pre, post.
        parts = [utf8(self.context_line)] if self.context_line is not None else []
        parts += [utf8(self.filename), utf8(self.function), u32_be(self.lineno)]
        if self.module is not None:
            parts.append(utf8(self.module))
        parts += [utf8(line) for line in (*self.pre_context, *self.post_context)]
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        located = self.lineno is not None and self.colno is not None
        if self.platform == "node:javascript" and self.chunk_id is not None and located:
            return node_unresolved(self, raw_id, JsResolveError.no_sourcemap_uploaded(self.chunk_id))
        lang = "javascript" if self.platform == "node:javascript" else self.platform
        resolved = build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=self.lineno,
            column=None,  # cymbal drops colno of unmapped node frames
            source=self.filename,
            module=self.module,
            in_app=self.meta.in_app,
            resolved_name=self.function,
            lang=lang,
            resolved=True,
            synthetic=self.meta.synthetic,
            code_variables=self.code_variables,
        )
        return ResolvedFrame(resolved, self.context())

    def lookup(self) -> SymbolLookup | None:
        if self.platform != "node:javascript":
            return None
        if self.chunk_id is None or self.lineno is None or self.colno is None:
            return None
        return SymbolLookup(self.chunk_id, self.lineno, self.colno)

    def context(self) -> FrameContext | None:
        if self.context_line is None or self.lineno is None:
            return None
        lineno = self.lineno
        # pre_context arrives in file order, the line just above the frame last.
        before = [
            cut_context_line(context_offset(lineno, -i - 1), line) for i, line in enumerate(reversed(self.pre_context))
        ]
        after = [cut_context_line(context_offset(lineno, i + 1), line) for i, line in enumerate(self.post_context)]
        return {"before": before, "line": cut_context_line(lineno, self.context_line), "after": after}


def parse_sentry_like_frame(raw: Mapping[str, object]) -> SentryLikeFrame:
    platform = raw["platform"]
    assert isinstance(platform, str)  # PARSERS routes only its string tags here
    node = platform == "node:javascript"
    if platform != "node:javascript":
        get_str(raw, "abs_path")  # read (and type-checked) by cymbal, otherwise unused
    return SentryLikeFrame(
        platform=platform,
        filename=cast(str, get_str(raw, "filename", required=True)),
        function=cast(str, get_str(raw, "function", required=True)),
        lineno=get_u32(raw, "lineno"),
        colno=get_u32(raw, "colno") if node else None,
        # Ruby frames have no module in cymbal: it is neither hashed nor kept.
        module=get_str(raw, "module") if platform != "ruby" else None,
        context_line=get_str(raw, "context_line"),
        pre_context=get_str_list(raw, "pre_context"),
        post_context=get_str_list(raw, "post_context"),
        chunk_id=read_chunk_id(raw) if node else None,
        # Only python frames carry code variables; null means none (Option<Value>).
        code_variables=raw.get("code_variables") if platform == "python" else None,
        meta=read_meta(raw),
    )


def _context_likely_minified(context: FrameContext) -> bool:
    lines = [*context["before"], *context["after"]]
    if not lines:
        return False  # cymbal divides 0 by 0 here; NaN > 300 is false
    total = sum(len(line["line"].encode("utf-8")) for line in lines)
    return total / len(lines) > _MINIFIED_AVERAGE_LINE


def node_unresolved(frame: SentryLikeFrame, raw_id: str, error: JsResolveError) -> ResolvedFrame:
    """The frame (and context) of a node frame whose symbols failed with ``error``."""
    context = frame.context()
    minified = context is not None and _context_likely_minified(context)
    resolved = build_frame(
        raw_id=raw_id,
        mangled_name=frame.function,
        line=frame.lineno,
        column=frame.colno,
        source=None,  # cymbal drops the filename on this path
        module=frame.module,
        in_app=frame.meta.in_app,
        resolved_name=None if minified else frame.function,
        lang="javascript",
        resolved=not minified,
        resolve_failure=error.message,
        synthetic=frame.meta.synthetic,
    )
    return ResolvedFrame(resolved, context)
