"""Frame resolution: raw stacks become resolved frames, and the event gets its output properties.

Frames of pass-through languages (python, go, custom, node without a chunk id...) resolve on
their own (``frames.py``). JavaScript frames with a chunk id ask the ``FrameResolver``, which
the symbol-set store provides (``symbols/resolver.py``); without one, minified frames carry
the reason in ``resolve_failure`` and PostHog's "was minified" guess. A resolver that cannot
reach its store raises: that is an infrastructure failure and the batch is retried, never a
frame failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from trapline.pipeline.batch import Item
from trapline.pipeline.exceptions import ExceptionInfo, ResolvedExceptions, resolve_exception_list
from trapline.pipeline.frames import RawFrame, Resolver
from trapline.pipeline.properties import base_output

__all__ = ["BatchResolver", "FrameResolver", "resolve"]


class BatchResolver(Protocol):
    """One batch's symbol lookups: read before the stage, written with the batch."""

    def resolver(self, project_id: int) -> Resolver: ...

    def releases(self, project_id: int, exception_list: Sequence[ExceptionInfo]) -> dict[str, Any]:
        """``$exception_releases`` of an event, from the symbol sets its frames used."""
        ...

    def unresolved(self, project_id: int, exception_list: Sequence[ExceptionInfo]) -> dict[str, RawFrame]:
        """The raw form of the event's frames whose symbols failed, by frame raw_id."""
        ...

    def remember(self, project_id: int, resolved: ResolvedExceptions) -> None:
        """Keep the event's resolved frames and their contexts for the stack frame table."""
        ...

    def resolve_event(
        self, project_id: int, exception_list: Sequence[ExceptionInfo]
    ) -> tuple[ResolvedExceptions, dict[str, Any], dict[str, RawFrame]]:
        """An event's resolved exceptions, releases and unresolved frames, remembered: what
        ``resolve_exception_list`` with ``resolver``, then ``releases``, ``unresolved`` and
        ``remember`` give and do (an implementation may skip work repeated in the batch)."""
        ...

    def save(self, session: Session) -> None: ...


class FrameResolver(Protocol):
    def for_batch(self, items: Sequence[Item]) -> BatchResolver: ...


def resolve(items: list[Item], symbols: BatchResolver | None = None) -> None:
    for item in items:
        if not item.live or item.exception is None:
            continue
        releases: dict[str, Any] | None = None
        if symbols is None:
            resolved = resolve_exception_list(item.exception.exception_list)
        else:
            resolved, releases, item.unresolved_frames = symbols.resolve_event(
                item.project_id, item.exception.exception_list
            )
        item.exception_list = resolved.exception_list
        item.contexts = resolved.contexts
        item.output = base_output(
            item.properties, item.exception_list, handled=item.exception.handled, releases=releases
        )
