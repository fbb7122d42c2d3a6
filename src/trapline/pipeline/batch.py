"""What travels through the pipeline: one ``Item`` per event, rejections carried as values.

Stages take the whole batch and return it with the same length: an event that a stage
rejects (suppressed, no exception list) keeps its place with ``rejected`` set, and later
stages skip it. Infrastructure failures are not rejections: they raise, and the batch is
retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from trapline.db.types import storable_text
from trapline.events import door_drops
from trapline.events.queue import Claimed
from trapline.events.times import event_time, parse_timestamp
from trapline.ids import uuid7
from trapline.pipeline.exceptions import ExceptionInfo, ExceptionProperties
from trapline.pipeline.frames import FrameContext, RawFrame

__all__ = ["Assignee", "DoorDrop", "Drop", "Item", "door_drops_from_queue", "items_from_queue"]

Assignee = tuple[str, int | UUID]  # ("user", 42) or ("role", UUID)


@dataclass
class Item:
    """One event on its way through the stages."""

    queue_id: int
    project_id: int
    uuid: UUID
    timestamp: datetime
    distinct_id: str
    # The event's properties as sent; stages build PostHog's output properties in ``output``.
    properties: dict[str, Any]
    # Set by normalisation: what the $exception_* properties say.
    exception: ExceptionProperties | None = None
    # Set by resolution: the exception list with resolved stacks, and the frames' contexts.
    exception_list: list[ExceptionInfo] = field(default_factory=list)
    contexts: dict[str, FrameContext] = field(default_factory=dict)
    # Raw frames whose symbols failed, by frame raw_id: kept with the event to be redone later.
    unresolved_frames: dict[str, RawFrame] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    proposed_fingerprint: str | None = None
    fingerprint_record: list[dict[str, Any]] = field(default_factory=list)
    # The grouping rule that matched, and its assignee (which wins over assignment rules).
    grouping_rule_id: UUID | None = None
    rule_assignee: Assignee | None = None
    issue_id: UUID | None = None
    # What went wrong without stopping the event: PostHog's $cymbal_errors.
    errors: list[str] = field(default_factory=list)
    rejected: Drop | None = None
    # Set by storage: the event was inserted now (not a retry of one stored before). Only
    # stored events count for alerts.
    stored: bool = False

    def reject(self, reason: str, detail: str | None = None) -> None:
        """Take the event out of the batch; later stages skip it."""
        if self.rejected is None:
            self.rejected = Drop(reason, detail)

    @property
    def live(self) -> bool:
        return self.rejected is None


@dataclass(frozen=True)
class Drop:
    """Why an event was not stored: a short reason to count by, and the details of this case."""

    reason: str
    detail: str | None = None


@dataclass(frozen=True)
class DoorDrop:
    """Events capture counted and did not queue, queued as a count (``events.door_drops``)."""

    project_id: int
    at: datetime
    reason: str
    count: int
    detail: str | None = None


def items_from_queue(rows: Sequence[Claimed]) -> list[Item]:
    """Unpack queued requests into one item per event, in queue order (drops aside)."""
    items: list[Item] = []
    for row in rows:
        if door_drops.is_drops(row.payload):
            continue
        sent_at = parse_timestamp(row.sent_at)
        events = orjson.loads(row.payload)
        if _ESCAPED_NUL in row.payload:  # the usual payload pays one byte search for this
            events = [_event_without_nul(event) for event in events]
        for event in events:
            items.append(_item(row, event, sent_at))
    return items


def door_drops_from_queue(rows: Sequence[Claimed]) -> list[DoorDrop]:
    """The counts of drops queued at the door, in queue order."""
    return [
        DoorDrop(row.project_id, row.received_at, reason, count, detail)
        for row in rows
        if door_drops.is_drops(row.payload)
        for reason, count, detail in door_drops.decode(row.payload)
    ]


# How orjson (which wrote the queued payload) writes a NUL inside a string.
_ESCAPED_NUL = b"\\u0000"


def _event_without_nul(event: Any) -> Any:
    """The event with NUL replaced by U+FFFD in every string and key, but its exception list.

    An event carrying a NUL anywhere (a property, its distinct id, a client fingerprint) could
    not be stored on PostgreSQL (``storable_text``). ``$exception_list`` is left to
    normalisation, which applies cymbal's own rule to it.
    """
    if not isinstance(event, dict):
        return _without_nul(event)
    properties = event.get("properties")
    exception_list = properties.get("$exception_list") if isinstance(properties, dict) else None
    clean = _without_nul(event)
    if exception_list is not None:
        clean["properties"]["$exception_list"] = exception_list
    return clean


def _without_nul(value: Any) -> Any:
    # Recursion is safe: queued payloads are at most 254 levels deep (orjson wrote them).
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {storable_text(key): _without_nul(item) for key, item in value.items()}
    return value


def _item(row: Claimed, event: dict[str, Any], sent_at: datetime | None) -> Item:
    properties = event.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    distinct_id = event.get("distinct_id", properties.get("distinct_id"))
    item = Item(
        queue_id=row.id,
        project_id=row.project_id,
        uuid=_event_uuid(event.get("uuid")),
        timestamp=event_time(event, row.received_at, sent_at),
        distinct_id="" if distinct_id is None else str(distinct_id),
        properties=properties,
    )
    return item


def _event_uuid(value: Any) -> UUID:
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    return uuid7()
