"""The statements of retention: each reads a little, or deletes at most ``limit`` rows.

Every delete picks its rows through an index in a subquery (``... WHERE id IN (SELECT id ...
LIMIT n)``), so that one call is one short statement on both backends, and it runs in the
caller's transaction. On PostgreSQL the subquery skips rows another transaction holds
(``FOR UPDATE SKIP LOCKED``): two passes at once split the work instead of queueing. On
SQLite the caller's ``BEGIN IMMEDIATE`` makes each call see what the previous one deleted.
Deleting the same row twice is impossible either way: a row already gone is not chosen.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Table, and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

from trapline.alerts.models import Alert, AlertDelivery
from trapline.events.models import ExceptionEvent, QueuedRequest
from trapline.issues.models import IssueFingerprint
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.projects.models import Project
from trapline.retention.policy import ProjectRetention
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.usage.models import UsageDay
from trapline.volumes import record as volumes
from trapline.volumes.record import Counted

__all__ = [
    "FINISHED_DELIVERIES",
    "ParkedRequest",
    "alert_ids",
    "capped_events",
    "ended_counters",
    "expired_events",
    "fingerprints_of",
    "finished_deliveries",
    "issues_over",
    "newest_events",
    "old_usage",
    "parked_requests",
    "project_settings",
    "unused_placeholders",
]

# Deliveries that will not be sent again (a throttled one goes once its summary is no longer
# pending: the summary lists it when it is sent).
FINISHED_DELIVERIES = ("delivered", "failed")
# Placeholders looked at per call: each may have many cached frames to delete first.
_PLACEHOLDERS_PER_CALL = 50

_EVENTS = cast(Table, ExceptionEvent.__table__)
_DELIVERIES = cast(Table, AlertDelivery.__table__)
_COUNTERS = cast(Table, RateLimitCounter.__table__)
_USAGE = cast(Table, UsageDay.__table__)


def _deleted(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _delete_chosen(session: Session, table: Table, keys: Sequence[str], chosen: Select[Any], limit: int) -> int:
    """Delete the rows of ``table`` whose ``keys`` ``chosen`` (a select over an alias of it)
    returns, at most ``limit``."""
    chosen = chosen.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    columns = [table.c[key] for key in keys]
    target = columns[0].in_(chosen) if len(columns) == 1 else tuple_(*columns).in_(chosen)
    return _deleted(session.execute(delete(table).where(target)))


# --- events ----------------------------------------------------------------------------------


def _delete_events(session: Session, chosen: Select[Any], limit: int) -> int:
    """Delete the chosen events and take them out of their fingerprints' volume rollups, in
    the same transaction (so the rollups always count the stored events)."""
    chosen = chosen.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    # Read first (and lock, on PostgreSQL), then delete those: what the rollups subtract is
    # exactly what goes.
    rows = session.execute(
        select(_EVENTS.c.id, _EVENTS.c.project_id, _EVENTS.c.fingerprint, _EVENTS.c.timestamp).where(
            _EVENTS.c.id.in_(chosen)
        )
    ).all()
    if not rows:
        return 0
    deleted = _deleted(session.execute(delete(_EVENTS).where(_EVENTS.c.id.in_([row[0] for row in rows]))))
    volumes.remove(session.connection(), [Counted(row[1], row[2], row[3]) for row in rows])
    return deleted


def project_settings(session: Session) -> list[ProjectRetention]:
    """Every project with its own retention settings (None where it has none)."""
    rows = session.execute(
        select(Project.id, ErrorTrackingSettings.retention_days, ErrorTrackingSettings.max_events_per_issue)
        .outerjoin(ErrorTrackingSettings, ErrorTrackingSettings.project_id == Project.id)
        .order_by(Project.id)
    )
    return [ProjectRetention(project_id, days, cap) for project_id, days, cap in rows]


def expired_events(session: Session, project_id: int, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the project's events with a timestamp before ``before``
    (through the (project_id, timestamp) index; on SQLite, the index alone)."""
    event = _EVENTS.alias("expired")
    chosen = select(event.c.id).where(event.c.project_id == project_id, event.c.timestamp < before)
    return _delete_events(session, chosen, limit)


def issues_over(session: Session, project_id: int, cap: int) -> dict[uuid.UUID, int]:
    """The project's issues whose all-time occurrences exceed ``cap``, with those totals."""
    total = func.sum(IssueFingerprint.occurrences)
    rows = session.execute(
        select(IssueFingerprint.issue_id, total)
        .where(IssueFingerprint.project_id == project_id)
        .group_by(IssueFingerprint.issue_id)
        .having(total > cap)
    )
    return {issue_id: int(count) for issue_id, count in rows}


def fingerprints_of(session: Session, project_id: int, issue_id: uuid.UUID) -> list[str]:
    return sorted(
        session.scalars(
            select(IssueFingerprint.fingerprint).where(
                IssueFingerprint.project_id == project_id, IssueFingerprint.issue_id == issue_id
            )
        )
    )


def newest_events(session: Session, project_id: int, fingerprint: str, count: int) -> list[tuple[datetime, int]]:
    """The fingerprint's newest ``count`` events as (timestamp, id), newest first (through the
    fingerprint index: ``count`` entries read)."""
    rows = session.execute(
        select(ExceptionEvent.timestamp, ExceptionEvent.id)
        .where(ExceptionEvent.project_id == project_id, ExceptionEvent.fingerprint == fingerprint)
        .order_by(ExceptionEvent.timestamp.desc(), ExceptionEvent.id.desc())
        .limit(count)
    )
    return [(timestamp, event_id) for timestamp, event_id in rows]


def capped_events(
    session: Session, project_id: int, fingerprints: Sequence[str], boundary: tuple[datetime, int], limit: int
) -> int:
    """Delete up to ``limit`` events of ``fingerprints`` from ``boundary`` back (by timestamp,
    then id)."""
    timestamp, event_id = boundary
    event = _EVENTS.alias("capped")
    chosen = select(event.c.id).where(
        event.c.project_id == project_id,
        event.c.fingerprint.in_(fingerprints),
        # The range on timestamp is what the index serves; the tie on it is settled by id.
        event.c.timestamp <= timestamp,
        or_(event.c.timestamp < timestamp, event.c.id <= event_id),
    )
    return _delete_events(session, chosen, limit)


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParkedRequest:
    """A parked request that retention deleted: what the log keeps of it."""

    id: int
    project_id: int
    received_at: datetime
    event_count: int
    attempts: int
    last_error: str | None


def parked_requests(session: Session, before: datetime, limit: int) -> list[ParkedRequest]:
    """Delete up to ``limit`` requests parked before ``before`` (their payloads go with them,
    by the foreign key's cascade); returns what they were."""
    chosen = (
        select(
            QueuedRequest.id,
            QueuedRequest.project_id,
            QueuedRequest.received_at,
            QueuedRequest.event_count,
            QueuedRequest.attempts,
            QueuedRequest.last_error,
        )
        .where(QueuedRequest.failed_at.is_not(None), QueuedRequest.failed_at < before)
        .order_by(QueuedRequest.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    parked = [ParkedRequest(*row) for row in session.execute(chosen)]
    if parked:
        # failed_at again: `trapline requeue` may have put one back since it was read.
        session.execute(
            delete(QueuedRequest).where(
                QueuedRequest.id.in_([row.id for row in parked]), QueuedRequest.failed_at.is_not(None)
            )
        )
    return parked


# --- alerts ----------------------------------------------------------------------------------


def alert_ids(session: Session) -> list[uuid.UUID]:
    return sorted(session.scalars(select(Alert.id)))


def finished_deliveries(session: Session, alert_id: uuid.UUID, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the alert's deliveries made before ``before`` that are done
    with: delivered, failed, or throttled and summed up by a summary no longer pending
    (through the (alert_id, created_at) index)."""
    delivery = _DELIVERIES.alias("finished")
    summary = _DELIVERIES.alias("summary")
    summary_pending = exists().where(summary.c.id == delivery.c.summary_id, summary.c.status == "pending")
    chosen = select(delivery.c.id).where(
        delivery.c.alert_id == alert_id,
        delivery.c.created_at < before,
        or_(delivery.c.status.in_(FINISHED_DELIVERIES), and_(delivery.c.status == "throttled", ~summary_pending)),
    )
    return _delete_chosen(session, _DELIVERIES, ["id"], chosen, limit)


# --- symbols ---------------------------------------------------------------------------------


def unused_placeholders(session: Session, project_id: int, before: datetime, limit: int) -> tuple[int, int]:
    """Delete symbol set placeholders (a chunk id frames asked for and nobody uploaded) last
    used before ``before``, with the failed frames cached against them; returns (sets, frames).

    Resolution refreshes ``last_used`` whenever an event's frames name the chunk, so such a
    placeholder serves no stored event: they are all older. Its failed frames go first, and
    with it: left behind (their set_id nulled by the foreign key), they would never be cleared
    by an upload of that chunk. Up to ``limit`` frames per call; the sets go in the call that
    finds fewer.
    """
    ids = list(
        session.scalars(
            select(SymbolSet.id)
            .where(
                SymbolSet.project_id == project_id,
                SymbolSet.storage_ptr.is_(None),
                SymbolSet.content_hash.is_(None),
                func.coalesce(SymbolSet.last_used, SymbolSet.created_at) < before,
            )
            .order_by(SymbolSet.id)
            .limit(_PLACEHOLDERS_PER_CALL)
        )
    )
    if not ids:
        return 0, 0
    frames_table = cast(Table, StackFrame.__table__)
    frame = frames_table.alias("placeholder_frame")
    # Resolved frames stay (the issue page shows their context), as when a user deletes a set.
    chosen = select(frame.c.id).where(frame.c.symbol_set_id.in_(ids), frame.c.resolved.is_(False))
    frames = _delete_chosen(session, frames_table, ["id"], chosen, limit)
    if frames >= limit:
        return 0, frames
    sets = _deleted(session.execute(delete(SymbolSet).where(SymbolSet.id.in_(ids), SymbolSet.storage_ptr.is_(None))))
    return sets, frames


# --- counters --------------------------------------------------------------------------------


def ended_counters(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` rate limit counters whose bucket ended before ``before``."""
    counter = _COUNTERS.alias("ended")
    chosen = select(counter.c.project_id, counter.c.scope, counter.c.bucket_start).where(counter.c.bucket_end < before)
    return _delete_chosen(session, _COUNTERS, ["project_id", "scope", "bucket_start"], chosen, limit)


def old_usage(session: Session, before: date, limit: int) -> int:
    """Delete up to ``limit`` daily usage rows of days before ``before``."""
    usage = _USAGE.alias("old")
    chosen = select(usage.c.project_id, usage.c.day, usage.c.outcome).where(usage.c.day < before)
    return _delete_chosen(session, _USAGE, ["project_id", "day", "outcome"], chosen, limit)
