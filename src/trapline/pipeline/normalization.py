"""The first stage: read each event's ``$exception_*`` properties, or reject the event."""

from __future__ import annotations

from trapline.pipeline.batch import Item
from trapline.pipeline.exceptions import Rejected, normalize_exception_properties

__all__ = ["INVALID", "normalize"]

# An event whose exception list cymbal would refuse (missing, empty, wrongly typed).
INVALID = "invalid_exception"


def normalize(items: list[Item]) -> None:
    for item in items:
        if not item.live:
            continue
        result = normalize_exception_properties(item.properties, event_uuid=item.uuid)
        if isinstance(result, Rejected):
            item.reject(INVALID, result.error)
        else:
            item.exception = result
