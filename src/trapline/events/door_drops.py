"""Drops counted at the door, carried to the database by the queue (SQLite's queue file).

Capture counts what it does not queue: events refused because their project is over its
limit, and Sentry items it accepts but does not store (sessions, client reports). They go to
``dropped_events`` and the day's usage, like the pipeline's drops. On PostgreSQL capture adds
them to those counters itself. With SQLite's queue in a file of its own, that write would make
capture wait for the database's lock, which a worker holds for a whole batch: a refusal would
take as long as a batch, and a flood of refusals is when answers must be quick. So capture
queues them instead, as a request with no events whose payload names the drops, and the
worker that claims it adds them to the counters in its batch's transaction, exactly once,
as it stores events.

A queued payload of events is a JSON list; a payload of drops is an object.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

__all__ = ["Counted", "decode", "encode", "is_drops"]

# (reason, count, detail)
Counted = tuple[str, int, str | None]


def encode(drops: Sequence[Counted]) -> bytes:
    return orjson.dumps({"drops": [list(drop) for drop in drops]})


def is_drops(payload: bytes) -> bool:
    return payload[:1] == b"{"


def decode(payload: bytes) -> list[Counted]:
    """The drops of a payload ``encode`` wrote."""
    return [(str(reason), int(count), detail) for reason, count, detail in orjson.loads(payload)["drops"]]
