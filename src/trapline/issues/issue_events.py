"""One issue's events: listing and stepping through them, its fingerprints, its volume over
time and the breakdowns of its events (the issue page and the ``query`` API's event lists).

Events belong to the issue their fingerprint belongs to now (see ``queries``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from trapline.events.models import ExceptionEvent
from trapline.issues.filters import Direction, IssueFilter, event_conditions, events_of_issues, fingerprints_of_issues
from trapline.issues.models import IssueFingerprint
from trapline.issues.queries import VolumeBucket
from trapline.volumes import counts

__all__ = [
    "EventRef",
    "Step",
    "breakdown",
    "issue_event",
    "issue_events",
    "issue_fingerprints",
    "issue_volume",
    "newer_event_count",
    "step_event",
]

_event = ExceptionEvent.__table__
_fingerprint = IssueFingerprint.__table__
_step_event = _event.alias("step_event")  # built once: ~150 µs each, five steps a page
# An event to its fingerprint's row, and so to the issue that fingerprint belongs to now.
_EVENT_FINGERPRINT = and_(
    IssueFingerprint.project_id == ExceptionEvent.project_id,
    IssueFingerprint.fingerprint == ExceptionEvent.fingerprint,
)


# --- one issue's events ---------------------------------------------------------------------


def issue_events(
    project_id: int, issue_id: uuid.UUID, flt: IssueFilter | None = None, *, direction: Direction = "DESC"
) -> Select[ExceptionEvent]:
    """The events of an issue (through its fingerprints), newest first unless ``ASC``."""
    flt = flt or IssueFilter()
    conditions = event_conditions(_event, project_id, flt)
    timestamp, ident = ExceptionEvent.timestamp, ExceptionEvent.id
    order = (timestamp.asc(), ident.asc()) if direction == "ASC" else (timestamp.desc(), ident.desc())
    return (
        select(ExceptionEvent)
        .join(IssueFingerprint, _EVENT_FINGERPRINT)
        .where(IssueFingerprint.issue_id == issue_id, *conditions)
        .order_by(*order)
    )


def breakdown(
    session: Session,
    project_id: int,
    issue_id: uuid.UUID,
    flt: IssueFilter,
    dimensions: Mapping[str, str],
    top: int = 5,
) -> tuple[int, list[str], dict[str, list[tuple[str, int]]]]:
    """(events, busiest session ids, dimension → most common property values with counts)."""
    joined, conditions = events_of_issues(_event, project_id, replace(flt, issue_ids=[issue_id]))
    occurrences = session.scalar(select(func.count()).select_from(joined).where(*conditions)) or 0

    def most_common(expression: Any) -> list[tuple[str, int]]:
        value = expression.label("value")
        count = func.count().label("count")
        rows = session.execute(
            select(value, count)
            .select_from(joined)
            .where(*conditions, expression.is_not(None), expression != "")
            .group_by(expression)
            .order_by(count.desc(), expression)
            .limit(top)
        ).all()
        return [(str(value), int(count)) for value, count in rows]

    sessions = [value for value, _ in most_common(_event.c.session_id)]
    values = {name: most_common(_event.c.properties[key].as_string()) for name, key in dimensions.items()}
    return occurrences, sessions, values


# --- one issue's page: its fingerprints and stepping through its events ----------------------


def issue_fingerprints(session: Session, project_id: int, issue_id: uuid.UUID) -> list[IssueFingerprint]:
    """The issue's fingerprints with their running totals, the latest seen first."""
    return list(
        session.scalars(
            select(IssueFingerprint)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.issue_id == issue_id)
            .order_by(IssueFingerprint.last_seen.desc().nulls_last(), IssueFingerprint.fingerprint)
        )
    )


def issue_event(session: Session, project_id: int, issue_id: uuid.UUID, event_uuid: uuid.UUID) -> ExceptionEvent | None:
    """The event with this uuid, if its fingerprint belongs to the issue now."""
    return session.scalar(
        select(ExceptionEvent)
        .join(IssueFingerprint, _EVENT_FINGERPRINT)
        .where(
            ExceptionEvent.project_id == project_id,
            ExceptionEvent.uuid == event_uuid,
            IssueFingerprint.issue_id == issue_id,
        )
    )


@dataclass(frozen=True)
class EventRef:
    id: int
    uuid: uuid.UUID
    timestamp: datetime


Step = Literal["newest", "oldest", "newer", "older"]


def _owned_fingerprints(project_id: int, issue_id: uuid.UUID, fingerprint: str | None = None) -> Select[Any]:
    owned = fingerprints_of_issues(project_id, [issue_id])
    return owned.where(_fingerprint.c.fingerprint == fingerprint) if fingerprint is not None else owned


def step_event(
    session: Session,
    project_id: int,
    issue_id: uuid.UUID,
    step: Step,
    around: EventRef | None = None,
    fingerprint: str | None = None,
) -> EventRef | None:
    """The issue's newest or oldest event, or the one just newer or older than ``around``
    (events are ordered by timestamp, then id); only ``fingerprint``'s events if given.

    Each step is a few seeks of the (project_id, fingerprint, timestamp) index: the nearest
    moment per fingerprint, then the first id at that moment. Ordering by (timestamp, id) in
    one query would not: that index does not end in the id, so the database would walk the
    project's time index instead, through every other issue's events.
    """
    descending = step in ("newest", "older")
    owned = _owned_fingerprints(project_id, issue_id, fingerprint)
    timestamp, ident = _event.c.timestamp, _event.c.id
    first_id = func.max(ident) if descending else func.min(ident)
    here = [_event.c.project_id == project_id, _event.c.fingerprint.in_(owned)]
    if step in ("newer", "older"):
        if around is None:
            raise ValueError("newer and older need the event to step from")
        # Another event at the same moment, beyond this one in id order, is the next one.
        beyond = ident < around.id if descending else ident > around.id
        tie = session.scalar(select(first_id).where(*here, timestamp == around.timestamp, beyond))
        if tie is not None:
            return _event_ref(session, tie)
    events = _step_event
    conditions = [events.c.project_id == project_id, events.c.fingerprint == _fingerprint.c.fingerprint]
    if around is not None and step == "newer":
        conditions.append(events.c.timestamp > around.timestamp)
    elif around is not None and step == "older":
        conditions.append(events.c.timestamp < around.timestamp)
    nearest = (
        select(events.c.timestamp)
        .where(*conditions)
        .order_by(events.c.timestamp.desc() if descending else events.c.timestamp)
        .limit(1)
        .correlate(_fingerprint)
        .scalar_subquery()
    )
    owners = [_fingerprint.c.project_id == project_id, _fingerprint.c.issue_id == issue_id]
    if fingerprint is not None:
        owners.append(_fingerprint.c.fingerprint == fingerprint)
    moments = [moment for moment in session.scalars(select(nearest).where(*owners)) if moment is not None]
    if not moments:
        return None
    moment = max(moments) if descending else min(moments)
    found = session.scalar(select(first_id).where(*here, timestamp == moment))
    return _event_ref(session, found) if found is not None else None


def _event_ref(session: Session, event_id: int) -> EventRef | None:
    row = session.execute(select(_event.c.id, _event.c.uuid, _event.c.timestamp).where(_event.c.id == event_id)).first()
    return EventRef(row.id, row.uuid, row.timestamp) if row is not None else None


def newer_event_count(session: Session, project_id: int, issue_id: uuid.UUID, around: EventRef) -> int:
    """How many of the issue's events are newer than ``around``: its place, counted from the newest."""
    here = [_event.c.project_id == project_id, _event.c.fingerprint.in_(_owned_fingerprints(project_id, issue_id))]
    later = session.scalar(select(func.count()).select_from(_event).where(*here, _event.c.timestamp > around.timestamp))
    tied = session.scalar(
        select(func.count())
        .select_from(_event)
        .where(*here, _event.c.timestamp == around.timestamp, _event.c.id > around.id)
    )
    return (later or 0) + (tied or 0)


def issue_volume(
    session: Session, project_id: int, issue_id: uuid.UUID, bounds: Sequence[datetime]
) -> list[VolumeBucket]:
    """Event counts of the issue between consecutive ``bounds`` (the last bucket includes its end),
    from the hourly rollups and the events of the hours a bound cuts."""
    if len(bounds) < 2:
        return []
    fingerprints = list(session.scalars(_owned_fingerprints(project_id, issue_id)))
    per_fingerprint = counts.bucketed(session, project_id, fingerprints, bounds)
    return [
        VolumeBucket(bounds[i], sum(values[i] for values in per_fingerprint.values())) for i in range(len(bounds) - 1)
    ]
