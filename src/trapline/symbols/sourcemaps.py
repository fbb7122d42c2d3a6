"""Source map lookups with ``symbolic``, the library Sentry and PostHog's pipeline use.

A ``SourceMap`` is built once per symbol set (building is the expensive part: it indexes
every token and scope) and then answers lookups for any number of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbolic.sourcemapcache import SourceMapCache

from trapline.pipeline.frames import ContextLine, FrameContext, JsResolveError, context_line
from trapline.symbols.container import ContainerError, unpack_source_and_map

__all__ = ["CONTEXT_LINES", "Position", "SourceMap"]

# Lines shown on each side of a frame (cymbal's FRAME_CONTEXT_LINES).
CONTEXT_LINES = 15
# symbolic's name for a position the map has no scope for.
_UNKNOWN_SCOPE = "<unknown>"


@dataclass(frozen=True)
class Position:
    """Where a minified position comes from in the original source."""

    source: str | None
    line: int  # 1-based
    column: int  # 1-based
    function: str | None  # None: the map knows no scope here; "<anonymous>" for one without a name
    context: FrameContext | None


class SourceMap:
    def __init__(self, cache: SourceMapCache, size: int) -> None:
        self._cache = cache
        # The container's size: what the parsed form costs in memory, roughly.
        self.size = size

    @classmethod
    def from_container(cls, data: bytes) -> SourceMap | JsResolveError:
        """Parse an uploaded symbol set, or say why it is unusable (a value: it is stored)."""
        try:
            minified, source_map = unpack_source_and_map(data)
        except ContainerError as exc:
            return JsResolveError.invalid_source_and_map_because(str(exc))
        try:
            cache = SourceMapCache.from_bytes(minified, source_map)
        except Exception as exc:  # symbolic raises its own exception tree for bad maps
            return JsResolveError.invalid_source_map(str(exc) or type(exc).__name__)
        return cls(cache, len(data))

    def lookup(self, line: int, column: int) -> Position | None:
        """The original position of a 1-based ``line``/``column`` in the minified file."""
        token = self._cache.lookup(line, column, CONTEXT_LINES)
        if token is None:
            return None
        function = None if token.function_name in (None, _UNKNOWN_SCOPE) else token.function_name
        return Position(token.src, token.line, token.col, function, _context(token.line, token))


def _context(line: int, token: object) -> FrameContext | None:
    current = getattr(token, "context_line", None)
    if current is None:
        return None
    pre: list[str] = getattr(token, "pre_context", [])
    post: list[str] = getattr(token, "post_context", [])
    before: list[ContextLine] = [context_line(line - i - 1, text) for i, text in enumerate(reversed(pre))]
    after: list[ContextLine] = [context_line(line + i + 1, text) for i, text in enumerate(post)]
    return {"before": before, "line": context_line(line, current), "after": after}
