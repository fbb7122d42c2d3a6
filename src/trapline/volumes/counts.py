"""Reading the rollups: exact event counts over any range and buckets, the order key of an
issue list, and distinct users and sessions (exact for small numbers of events, estimated
from the day sketches beyond).

Exact counts add the whole hours inside each bucket (the hour table) to the events of the few
hours a bucket bound cuts, counted from the events' (project_id, fingerprint, timestamp)
index one hour window at a time: the cost grows with the buckets and fingerprints asked
about, not with the events in the range.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from trapline.events.models import ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.volumes import sketch
from trapline.volumes.buckets import HOUR, day_of, hour_of, touched
from trapline.volumes.models import FingerprintDay, FingerprintHour

__all__ = ["EXACT_DISTINCT_LIMIT", "Distinct", "bucketed", "distinct_counts", "order_values", "total_counts"]

_EVENTS = cast(Table, ExceptionEvent.__table__)
_HOUR = cast(Table, FingerprintHour.__table__)
_DAY = cast(Table, FingerprintDay.__table__)
_FINGERPRINT = cast(Table, IssueFingerprint.__table__)
# Unbounded ends of a range, as bounds the bucket arithmetic can use.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# Distinct users and sessions are counted exactly from the events while an issue has at most
# this many in the range (a few milliseconds of index reading); beyond, from the sketches.
EXACT_DISTINCT_LIMIT = 20_000
_CHUNK = 500


def _chunks(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]


def bucketed(
    session: Session, project_id: int, fingerprints: Sequence[str], bounds: Sequence[datetime]
) -> dict[str, list[int]]:
    """Per fingerprint, its events between consecutive ``bounds`` (the last bucket includes
    its end). Fingerprints without events are left out."""
    buckets = len(bounds) - 1
    if buckets < 1 or not fingerprints:
        return {}
    first, end = bounds[0], bounds[-1]
    result: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    cut: set[datetime] = {hour_of(end)}  # the end is inclusive: its hour is read from events
    for bound in bounds[:-1]:
        if hour_of(bound) != bound:
            cut.add(hour_of(bound))
    for chunk in _chunks(fingerprints):
        rows = session.execute(
            select(_HOUR.c.fingerprint, _HOUR.c.hour, _HOUR.c.events).where(
                _HOUR.c.project_id == project_id,
                _HOUR.c.fingerprint.in_(chunk),
                _HOUR.c.hour >= hour_of(first),
                _HOUR.c.hour <= end,
            )
        )
        for fingerprint, hour, events in rows:
            if hour in cut or hour < first:
                continue
            index = bisect.bisect_right(bounds, hour) - 1
            if 0 <= index < buckets and hour + HOUR <= bounds[index + 1]:
                result[fingerprint][index] += events
            else:  # an hour a bound cuts that the set above missed (bounds closer than an hour)
                cut.add(hour)
    for fingerprint, index, events in _cut_hours(session, project_id, fingerprints, bounds, sorted(cut)):
        result[fingerprint][index] += events
    return dict(result)


def _cut_hours(
    session: Session, project_id: int, fingerprints: Sequence[str], bounds: Sequence[datetime], hours: list[datetime]
) -> list[tuple[str, int, int]]:
    """(fingerprint, bucket, events) for the events inside ``hours`` and the range, read from
    the events' index: one range per hour, so a big issue's other hours are never read."""
    first, end = bounds[0], bounds[-1]
    timestamp = _EVENTS.c.timestamp
    found: list[tuple[str, int, int]] = []
    for chunk in _chunks(fingerprints):
        parts = []
        for hour in hours:
            low, high = max(hour, first), min(hour + HOUR, end)
            if low > end or high < first:
                continue
            upper = timestamp <= end if high == end else timestamp < high
            inner = [(i, b) for i, b in enumerate(bounds[1:-1], start=1) if low < b < high]
            index: Any = literal(bisect.bisect_right(bounds, low) - 1)
            if inner:
                index = case(*((timestamp < b, i - 1) for i, b in inner), else_=inner[-1][0])
            parts.append(
                select(_EVENTS.c.fingerprint, index.label("bucket"), func.count().label("events"))
                .where(
                    _EVENTS.c.project_id == project_id,
                    _EVENTS.c.fingerprint.in_(chunk),
                    timestamp >= low,
                    upper,
                )
                .group_by(_EVENTS.c.fingerprint, index)
            )
        for start in range(0, len(parts), 50):  # compound SELECTs are capped (SQLite: 500 terms)
            group = parts[start : start + 50]
            statement = group[0] if len(group) == 1 else union_all(*group)
            found += [(row[0], min(int(row[1]), len(bounds) - 2), int(row[2])) for row in session.execute(statement)]
    return found


def total_counts(
    session: Session, project_id: int, fingerprints: Sequence[str], start: datetime | None, end: datetime | None
) -> dict[str, int]:
    """Per fingerprint, its events in ``[start, end]`` (None: unbounded)."""
    if start is None and end is None:
        totals: dict[str, int] = {}
        for chunk in _chunks(fingerprints):
            rows = session.execute(
                select(_DAY.c.fingerprint, func.sum(_DAY.c.events))
                .where(_DAY.c.project_id == project_id, _DAY.c.fingerprint.in_(chunk))
                .group_by(_DAY.c.fingerprint)
            )
            totals.update({fingerprint: int(events) for fingerprint, events in rows if events})
        return totals
    counts = bucketed(session, project_id, fingerprints, [start or _EARLIEST, end or _LATEST])
    return {fingerprint: values[0] for fingerprint, values in counts.items() if values[0]}


class Distinct:
    """Distinct users and sessions of one issue, and whether they are estimates."""

    __slots__ = ("estimated", "sessions", "users")

    def __init__(self, users: int, sessions: int, estimated: bool) -> None:
        self.users, self.sessions, self.estimated = users, sessions, estimated


def distinct_counts(
    session: Session,
    project_id: int,
    fingerprints_of: dict[Any, list[str]],
    events_of: dict[Any, int],
    start: datetime | None,
    end: datetime | None,
) -> dict[Any, Distinct]:
    """Per issue (key of ``fingerprints_of``), its distinct users and sessions in the range:
    exact while it has at most ``EXACT_DISTINCT_LIMIT`` events there, else estimated from the
    sketches of the days the range touches."""
    exact = {key: fps for key, fps in fingerprints_of.items() if 0 < events_of.get(key, 0) <= EXACT_DISTINCT_LIMIT}
    wide = {key: fps for key, fps in fingerprints_of.items() if events_of.get(key, 0) > EXACT_DISTINCT_LIMIT}
    result = _exact_distinct(session, project_id, exact, start, end)
    result.update(_estimated_distinct(session, project_id, wide, start, end))
    return result


def _exact_distinct(
    session: Session,
    project_id: int,
    fingerprints_of: dict[Any, list[str]],
    start: datetime | None,
    end: datetime | None,
) -> dict[Any, Distinct]:
    if not fingerprints_of:
        return {}
    owner = {fp: key for key, fps in fingerprints_of.items() for fp in fps}
    conditions: list[ColumnElement[bool]] = [_EVENTS.c.project_id == project_id]
    if start is not None:
        conditions.append(_EVENTS.c.timestamp >= start)
    if end is not None:
        conditions.append(_EVENTS.c.timestamp <= end)
    session_of = func.nullif(_EVENTS.c.session_id, "")
    users: dict[Any, set[str]] = defaultdict(set)
    sessions: dict[Any, set[str]] = defaultdict(set)
    # Distinct (fingerprint, who) pairs, merged per issue here: exact for merged issues, and
    # the pairs are few (their events are).
    for column, into in ((_EVENTS.c.distinct_id, users), (session_of, sessions)):
        for chunk in _chunks(sorted(owner)):
            rows = session.execute(
                select(_EVENTS.c.fingerprint, column)
                .where(*conditions, _EVENTS.c.fingerprint.in_(chunk), column.is_not(None))
                .group_by(_EVENTS.c.fingerprint, column)
            )
            for fingerprint, who in rows:
                into[owner[fingerprint]].add(who)
    return {key: Distinct(len(users[key]), len(sessions[key]), estimated=False) for key in fingerprints_of}


def _estimated_distinct(
    session: Session,
    project_id: int,
    fingerprints_of: dict[Any, list[str]],
    start: datetime | None,
    end: datetime | None,
) -> dict[Any, Distinct]:
    result = {}
    for key, fingerprints in fingerprints_of.items():
        query = select(_DAY.c.users, _DAY.c.sessions).where(
            _DAY.c.project_id == project_id, _DAY.c.fingerprint.in_(fingerprints)
        )
        if start is not None:
            query = query.where(_DAY.c.day >= day_of(start))
        if end is not None:
            query = query.where(_DAY.c.day <= end)
        rows = session.execute(query).all()
        result[key] = Distinct(
            sketch.estimate(sketch.merge(row[0] for row in rows)),
            sketch.estimate(sketch.merge(row[1] for row in rows)),
            estimated=True,
        )
    return result


def order_values(
    project_id: int, start: datetime | None, end: datetime | None, order_by: str, fingerprints: Any = None
) -> Any:
    """A subquery of (fingerprint, value) for every fingerprint with events in the range,
    ``value`` being what an issue list orders by (``last_seen``, ``first_seen`` or
    ``occurrences``), read from the buckets the range touches.

    Ordering thousands of issues reads one day row per fingerprint and day (one hour row for
    ranges under three days), so the occurrences it orders by count the whole buckets at the
    range's two edges; the numbers shown for each issue are exact. ``last_seen`` and
    ``first_seen`` are the fingerprint's own when they fall in the range (nearly always: the
    default range ends now).
    """
    start = start or _EARLIEST
    end = end or _LATEST
    kind, first_bucket, last_bucket = touched(start, end)
    table, column = (_DAY, _DAY.c.day) if kind == "day" else (_HOUR, _HOUR.c.hour)
    conditions = [table.c.project_id == project_id, column >= first_bucket, column <= last_bucket]
    if fingerprints is not None:
        conditions.append(table.c.fingerprint.in_(fingerprints))
    per_fingerprint = (
        select(
            table.c.fingerprint.label("fingerprint"),
            func.sum(table.c.events).label("events"),
            func.min(column).label("first_bucket"),
            func.max(column).label("last_bucket"),
        )
        .where(*conditions)
        .group_by(table.c.fingerprint)
        .subquery("touched")
    )
    own = _FINGERPRINT
    value = {
        "occurrences": per_fingerprint.c.events,
        "last_seen": case((own.c.last_seen <= end, own.c.last_seen), else_=per_fingerprint.c.last_bucket),
        "first_seen": case((own.c.first_seen >= start, own.c.first_seen), else_=per_fingerprint.c.first_bucket),
    }[order_by]
    return (
        select(
            own.c.issue_id.label("issue_id"), per_fingerprint.c.fingerprint.label("fingerprint"), value.label("value")
        )
        .select_from(
            per_fingerprint.join(
                own, and_(own.c.project_id == project_id, own.c.fingerprint == per_fingerprint.c.fingerprint)
            )
        )
        # Events in the touched buckets but none in the range itself (all before its start or
        # after its end) do not list the issue.
        # (Totals unknown, as rows older than the totals may be, decide nothing.)
        .where(or_(own.c.last_seen.is_(None), own.c.last_seen >= start))
        .where(or_(own.c.first_seen.is_(None), own.c.first_seen <= end))
        .subquery("per_fingerprint")
    )
