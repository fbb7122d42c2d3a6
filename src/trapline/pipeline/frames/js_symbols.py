"""The frames a symbol-set resolver (``trapline.symbols.resolver``) builds from JavaScript raw
frames (``web:javascript``/``javascript`` and ``node:javascript``): mapped by a source map, or
failed with a ``JsResolveError``. Each takes the raw frame, so its raw id is the raw frame's."""

from __future__ import annotations

from collections.abc import Mapping

from trapline.pipeline.frames.base import Frame, RawFrame, ResolvedFrame, build_frame
from trapline.pipeline.frames.javascript import JsFrame, JsResolveError, js_unresolved, suspicious_source
from trapline.pipeline.frames.sentry_like import SentryLikeFrame, node_unresolved
from trapline.pipeline.frames.stack import parse

__all__ = ["js_frame_without_symbols", "mapped_frame", "node_frame_without_symbols", "unmapped_frame"]


def js_frame_without_symbols(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> Frame:
    """The frame cymbal emits when a web (``web:javascript``/``javascript``) frame could not be
    source-mapped because of ``error``.

    For resolvers: call it with your own error. cymbal's "was minified" guess decides the rest:
    ``NoSourceUrl``/``NoUrlOrChunkId`` mean not minified; ``NoSourcemap`` means minified only
    past column 300; every other error means minified. A minified frame is ``resolved`` false
    with no ``resolved_name``; otherwise it keeps its function name and counts as resolved. Both
    keep ``resolve_failure`` = the error text, line/column = lineno/colno, source = the URL's
    path, and the raw frame's ``in_app``. A frame without lineno+colno ignores the error and
    passes through resolved, as in cymbal.
    """
    parsed = parse(raw)
    if not isinstance(parsed, JsFrame):
        raise ValueError("js_frame_without_symbols takes web:javascript or javascript frames")
    return js_unresolved(parsed, f"{parsed.raw_hash()}/0", error)


def node_frame_without_symbols(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> Frame:
    """The frame cymbal emits when a ``node:javascript`` frame with a chunk id could not be
    source-mapped because of ``error``: no ``source``, line/column as sent, minified (so
    unresolved and unnamed) when its context lines average more than 300 bytes. Its context is
    ``raw_frame_context(raw)``."""
    parsed = parse(raw)
    if not isinstance(parsed, SentryLikeFrame) or parsed.platform != "node:javascript":
        raise ValueError("node_frame_without_symbols takes node:javascript frames")
    return node_unresolved(parsed, f"{parsed.raw_hash()}/0", error).frame


def mapped_frame(
    raw: RawFrame | Mapping[str, object],
    *,
    line: int,
    column: int,
    source: str | None,
    resolved_name: str | None,
) -> Frame:
    """The frame of a JavaScript raw frame a source map resolved (cymbal's ``From<(RawJSFrame,
    SourceLocation)>``): the original position, file and function (None when the map knows no
    scope; ``"<anonymous>"`` for an anonymous one); in-app unless the file is under
    ``node_modules``; web frames from PostHog's own SDK are ``suspicious``."""
    parsed = parse(raw)
    if not isinstance(parsed, JsFrame | SentryLikeFrame):
        raise ValueError("mapped_frame takes JavaScript frames")
    source = None if source is None else source.replace("\x00", "\ufffd")
    return build_frame(
        raw_id=f"{parsed.raw_hash()}/0",
        mangled_name=parsed.function,
        line=line,
        column=column,
        source=source,
        module=None,
        in_app=parsed.meta.in_app if source is None else "node_modules" not in source,
        resolved_name=None if resolved_name is None else resolved_name.replace("\x00", "\ufffd"),
        lang="javascript",
        resolved=True,
        synthetic=parsed.meta.synthetic,
        suspicious=isinstance(parsed, JsFrame) and suspicious_source(source),
    )


def unmapped_frame(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> ResolvedFrame:
    """The frame (and context) of a JavaScript raw frame whose symbols failed with ``error``."""
    parsed = parse(raw)
    if isinstance(parsed, JsFrame):
        return ResolvedFrame(js_unresolved(parsed, f"{parsed.raw_hash()}/0", error), None)
    if isinstance(parsed, SentryLikeFrame) and parsed.platform == "node:javascript":
        return node_unresolved(parsed, f"{parsed.raw_hash()}/0", error)
    raise ValueError("unmapped_frame takes JavaScript frames")
