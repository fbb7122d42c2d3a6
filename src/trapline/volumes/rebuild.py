"""Rollups computed from the stored events: for a database that has events but no rollups
(the migration that adds them, benchmarks that insert events directly). Streams the events in
fingerprint order through the covering index, so memory holds one fingerprint at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from sqlalchemy import Connection, Table, delete, select

from trapline.events.models import ExceptionEvent
from trapline.volumes import recent
from trapline.volumes.models import FingerprintDay, FingerprintHour
from trapline.volumes.record import Counted, add

__all__ = ["rebuild"]

_EVENTS = cast(Table, ExceptionEvent.__table__)
_FLUSH = 20_000  # events counted per write


def rebuild(connection: Connection, project_id: int | None = None, *, windows: bool = True) -> int:
    """Replace the rollups (of one project, or all) with counts of the stored events.

    ``windows=False`` leaves the fingerprints' recent events alone: for the migration that
    made the rollups, which runs before the one that adds those columns."""
    for table in (cast(Table, FingerprintHour.__table__), cast(Table, FingerprintDay.__table__)):
        statement = delete(table)
        if project_id is not None:
            statement = statement.where(table.c.project_id == project_id)
        connection.execute(statement)
    if windows:
        recent.forget(connection, project_id)
    total = 0
    pending: list[Counted] = []
    for event in _events(connection, project_id):
        pending.append(event)
        # Flush only between fingerprints: ``add`` upserts, but one statement per bucket keeps
        # the writes few.
        if len(pending) >= _FLUSH and pending[-2].fingerprint != event.fingerprint:
            add(connection, pending[:-1], windows=windows)
            total += len(pending) - 1
            pending = pending[-1:]
    add(connection, pending, windows=windows)
    return total + len(pending)


def _events(connection: Connection, project_id: int | None) -> Iterator[Counted]:
    query = select(
        _EVENTS.c.project_id, _EVENTS.c.fingerprint, _EVENTS.c.timestamp, _EVENTS.c.distinct_id, _EVENTS.c.session_id
    ).order_by(_EVENTS.c.project_id, _EVENTS.c.fingerprint)
    if project_id is not None:
        query = query.where(_EVENTS.c.project_id == project_id)
    # On the statement, not the connection: a connection's options outlive this read.
    result = connection.execute(query.execution_options(stream_results=True, yield_per=_FLUSH))
    for row in result:
        yield Counted(row[0], row[1], row[2], row[3], row[4])
