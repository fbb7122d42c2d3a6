"""Frame resolution: raw stacks become resolved frames, and the event gets its output properties.

Frames of pass-through languages (python, go, custom, node without a chunk id...) resolve on
their own (``frames.py``). Frames that need symbols ask the project's ``Resolver``, which the
symbol-set store provides; without one, minified JavaScript frames carry the reason in
``resolve_failure`` and PostHog's "was minified" guess. A resolver that cannot reach its store
raises: that is an infrastructure failure and the batch is retried, never a frame failure.
"""

from __future__ import annotations

from collections.abc import Callable

from trapline.pipeline.batch import Item
from trapline.pipeline.exceptions import resolve_exception_list
from trapline.pipeline.frames import Resolver
from trapline.pipeline.properties import base_output

__all__ = ["FrameResolver", "resolve"]

# Given a project, the resolver for its symbol-backed frames (None: pass-through only).
FrameResolver = Callable[[int], Resolver | None]


def resolve(items: list[Item], resolver: FrameResolver | None = None) -> None:
    resolvers: dict[int, Resolver | None] = {}
    for item in items:
        if not item.live or item.exception is None:
            continue
        if item.project_id not in resolvers:
            resolvers[item.project_id] = resolver(item.project_id) if resolver is not None else None
        resolved = resolve_exception_list(item.exception.exception_list, resolvers[item.project_id])
        item.exception_list = resolved.exception_list
        item.contexts = resolved.contexts
        item.output = base_output(item.properties, item.exception_list, handled=item.exception.handled)
