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
import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    and_,
    case,
    distinct,
    func,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from trapline.db.sets import in_strings, in_values
from trapline.events.models import ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.volumes import recent, sketch
from trapline.volumes.buckets import HOUR, day_of, hour_of, touched
from trapline.volumes.models import FingerprintDay, FingerprintHour

__all__ = [
    "EXACT_DISTINCT_LIMIT",
    "Distinct",
    "bucketed",
    "bucketed_and_total",
    "counted_exactly",
    "distinct_counts",
    "order_values",
    "total_counts",
]

_EVENTS = cast(Table, ExceptionEvent.__table__)
_HOUR = cast(Table, FingerprintHour.__table__)
_DAY = cast(Table, FingerprintDay.__table__)
_FINGERPRINT = cast(Table, IssueFingerprint.__table__)
# Unbounded ends of a range, as bounds the bucket arithmetic can use.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# Distinct users and sessions are counted exactly from the events while the issues asked for
# have at most this many there together (~10 ms of index reading on either backend),
# the quietest issues first; the rest are estimated from the sketches. A page of busy issues
# thus costs what its issues cost, not what their events do.
EXACT_DISTINCT_LIMIT = 20_000
_CHUNK = 500
# (low, high, whether high is included, bucket): a piece of a cut hour inside one bucket.
_Piece = tuple[datetime, datetime, bool, int]


def _chunks(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]


def bucketed(
    session: Session, project_id: int, fingerprints: Sequence[str], bounds: Sequence[datetime]
) -> dict[str, list[int]]:
    """Per fingerprint, its events between consecutive ``bounds`` (the last bucket includes
    its end). Fingerprints without events are left out.

    Each bucket takes the whole hours inside it from the hour table, summed by the database
    per bucket; the hours a bound cuts (and the end's hour, the end being inclusive) are
    counted from the events, piece by piece."""
    return _counted(session, project_id, fingerprints, bounds, None)


def bucketed_and_total(
    session: Session,
    project_id: int,
    fingerprints: Sequence[str],
    bounds: Sequence[datetime],
    start: datetime,
    end: datetime,
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """``bucketed(bounds)`` and ``total_counts(start, end)`` from one read of the hour rows
    and one of the cut hours: a list's sparklines and its numbers cover nearly the same hours
    (on PostgreSQL at 10M events, two reads of each took ~14 ms of a page, one ~10)."""
    both = _counted(session, project_id, fingerprints, bounds, (start, end))
    buckets = len(bounds) - 1
    return (
        {fingerprint: values[:buckets] for fingerprint, values in both.items() if any(values[:buckets])},
        {fingerprint: values[buckets] for fingerprint, values in both.items() if values[buckets]},
    )


def _whole_hours(bounds: Sequence[datetime]) -> tuple[datetime, datetime, list[datetime]]:
    """The whole hours of ``bounds``: ``[low, high)`` but for the ``cut`` ones, which a bound
    cuts (and the end's hour, the end being inclusive). Bucket i owns the whole hours
    [ceil(b_i), hour_of(b_i+1))."""
    cut = sorted({hour_of(b) for b in bounds[:-1] if hour_of(b) != b} | {hour_of(bounds[-1])})
    return _ceil_hour(bounds[0]), hour_of(bounds[-1]), cut


def _counted(
    session: Session,
    project_id: int,
    fingerprints: Sequence[str],
    bounds: Sequence[datetime],
    total: tuple[datetime, datetime] | None,
) -> dict[str, list[int]]:
    """Per fingerprint, its events per bucket of ``bounds`` and, with ``total``, its events
    in that range as one more value at the end."""
    buckets = len(bounds) - 1
    if buckets < 1 or not fingerprints:
        return {}
    low, high, cut = _whole_hours(bounds)
    hour = _HOUR.c.hour
    index = _bucket_of(hour, bounds, session.get_bind().dialect.name)
    columns: list[Any] = [_HOUR.c.fingerprint]
    pieces = _pieces(bounds, cut)
    read_low, read_high = low, high
    if total is None:
        columns.append(index)
        span = [hour >= low, hour < high, hour.not_in(cut)]
    else:
        # Hours outside the buckets are read for the range alone (bucket -1), and each row
        # says whether it is a whole hour of the range; the range's cut hours are one more
        # bucket of pieces.
        total_low, total_high, total_cut = _whole_hours(total)
        read_low, read_high = min(low, total_low), max(high, total_high)
        in_buckets = and_(hour >= low, hour < high, hour.not_in(cut))
        columns += [
            case((in_buckets, index), else_=-1),
            case((and_(hour >= total_low, hour < total_high), 1), else_=0),
        ]
        span = [hour >= read_low, hour < read_high]
        pieces += [(a, b, closed, buckets) for a, b, closed, _ in _pieces(total, total_cut)]
    result: dict[str, list[int]] = defaultdict(lambda: [0] * (buckets + (total is not None)))
    for chunk in _chunks(fingerprints):
        if read_low < read_high:
            rows = session.execute(
                select(*columns, func.sum(_HOUR.c.events))
                .where(_HOUR.c.project_id == project_id, in_values(_HOUR.c.fingerprint, chunk), *span)
                .group_by(*columns)
            ).all()  # one fetch: row by row, SQLAlchemy's fetch cost more than the query
            for row in rows:
                values, events = result[row[0]], int(row[-1])
                if row[1] >= 0:
                    values[row[1]] += events
                if total is not None and row[2]:
                    values[buckets] += events
        for fingerprint, bucket, events in _cut_hours(session, project_id, chunk, pieces):
            result[fingerprint][bucket] += events
    return dict(result)


def _bucket_of(hour: Any, bounds: Sequence[datetime], dialect: str) -> ColumnElement[int]:
    """The bucket of an hour row inside the range. Bounds on whole hours a fixed step apart (a
    sparkline's) give it by division, (seconds since the first bound) // step; others are
    tested against each bound in turn (28 tests per hour row of a week: 2 to 3 ms a page)."""
    steps = {b - a for a, b in itertools.pairwise(bounds)}
    if len(steps) == 1 and all(hour_of(b) == b for b in bounds):
        step = int(steps.pop().total_seconds())
        if dialect == "sqlite":
            seconds: ColumnElement[int] = sql_cast(func.strftime("%s", hour), BigInteger)
        else:
            seconds = sql_cast(func.extract("epoch", hour), BigInteger)
        return (seconds - int(bounds[0].timestamp())) // step
    highs = [hour_of(b) for b in bounds[1:]]
    return case(*((hour < high, i) for i, high in enumerate(highs)), else_=len(bounds) - 2)


def _ceil_hour(moment: datetime) -> datetime:
    floor = hour_of(moment)
    return floor if floor == moment else floor + HOUR


def _pieces(bounds: Sequence[datetime], cut: Sequence[datetime]) -> list[_Piece]:
    """The cut hours inside the range, split at the bounds inside them, each piece inside
    one bucket."""
    first, end = bounds[0], bounds[-1]
    pieces = []
    for hour in cut:
        low, high = max(hour, first), min(hour + HOUR, end)
        if low > high:
            continue
        edges = [low, *(b for b in bounds[1:-1] if low < b < high), high]
        for a, b in itertools.pairwise(edges):  # (end, end) when the range ends on the hour
            bucket = min(bisect.bisect_right(bounds, a) - 1, len(bounds) - 2)
            pieces.append((a, b, b == end, bucket))
    return pieces


def _cut_hours(
    session: Session, project_id: int, fingerprints: Sequence[str], pieces: Sequence[_Piece]
) -> list[tuple[str, int, int]]:
    """(fingerprint, bucket, events) in the cut hours' ``pieces`` (``_pieces``): one row per
    fingerprint, each piece counted by its own seek on the events' (project_id, fingerprint,
    timestamp) index, so a big issue's other hours are never read. Written per fingerprint
    row rather than as ``fingerprint IN (…)`` over the events because PostgreSQL, whose
    statistics end before the current hour, estimated a recent cut hour empty and read it
    whole from the time index, every event of the project in it filtered by fingerprint
    (1,500 rows at 1M events, ten times that at 10M)."""
    own, timestamp = _FINGERPRINT, _EVENTS.c.timestamp
    found: list[tuple[str, int, int]] = []
    for start in range(0, len(pieces), 100):  # a hundred counts a statement
        group = pieces[start : start + 100]
        counted = [
            select(func.count())
            .where(
                _EVENTS.c.project_id == project_id,
                _EVENTS.c.fingerprint == own.c.fingerprint,
                timestamp >= low,
                timestamp <= high if closed else timestamp < high,
            )
            .correlate(own)
            .scalar_subquery()
            for low, high, closed, _ in group
        ]
        rows = session.execute(
            select(own.c.fingerprint, *counted).where(
                own.c.project_id == project_id, in_values(own.c.fingerprint, fingerprints)
            )
        ).all()
        for row in rows:
            for (_, _, _, bucket), events in zip(group, row[1:], strict=True):
                if events:
                    found.append((row[0], bucket, int(events)))
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
                .where(_DAY.c.project_id == project_id, in_values(_DAY.c.fingerprint, chunk))
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
    """Per issue (key of ``fingerprints_of``) with events in the range, its distinct users and
    sessions there: exact for the issues ``counted_exactly`` picks, else estimated from the
    sketches of the days the range touches."""
    exact = counted_exactly(events_of, EXACT_DISTINCT_LIMIT)
    result = _exact_distinct(session, project_id, {key: fingerprints_of[key] for key in exact}, start, end)
    wide = {key: fps for key, fps in fingerprints_of.items() if events_of.get(key, 0) > 0 and key not in exact}
    result.update(_estimated_distinct(session, project_id, wide, start, end))
    return result


def counted_exactly(events_of: dict[Any, int], budget: int) -> set[Any]:
    """The issues whose distinct users and sessions are counted from their events: the ones
    with the fewest events in the range first, while their events together stay within
    ``budget``. Issues without events need no count."""
    chosen: set[Any] = set()
    spent = 0
    for key, events in sorted(events_of.items(), key=lambda item: item[1]):
        if events <= 0:
            continue
        if spent + events > budget:
            break
        spent += events
        chosen.add(key)
    return chosen


def _exact_distinct(
    session: Session,
    project_id: int,
    fingerprints_of: dict[Any, list[str]],
    start: datetime | None,
    end: datetime | None,
) -> dict[Any, Distinct]:
    """Counted by the database per fingerprint; for an issue of several fingerprints (merged)
    the distinct (fingerprint, who) pairs are merged here, which stays exact across them."""
    if not fingerprints_of:
        return {}
    conditions: list[ColumnElement[bool]] = [_EVENTS.c.project_id == project_id]
    if start is not None:
        conditions.append(_EVENTS.c.timestamp >= start)
    if end is not None:
        conditions.append(_EVENTS.c.timestamp <= end)
    session_of = func.nullif(_EVENTS.c.session_id, "")
    single = {fps[0]: key for key, fps in fingerprints_of.items() if len(fps) == 1}
    result: dict[Any, Distinct] = {key: Distinct(0, 0, estimated=False) for key in fingerprints_of}
    postgresql = session.get_bind().dialect.name == "postgresql"
    for chunk in _chunks(sorted(single)):
        if postgresql:
            # One fingerprint at a time (LATERAL): each one's events come off the index in
            # order and are counted in memory. Grouping all of them at once had PostgreSQL
            # sort every event of the page's issues (45,000 at 10M events, spilling to disk)
            # and then sort each group again per distinct count: 54 of a page's 95 ms. Both
            # counts come from one pass of hashed grouping sets, (user) and (session): each
            # count(DISTINCT …) sorted the fingerprint's events again (34 → 23 ms a page at
            # 10M events).
            own = _FINGERPRINT
            groups = (
                select(_EVENTS.c.distinct_id.label("user"), session_of.label("session"))
                .where(*conditions, _EVENTS.c.fingerprint == own.c.fingerprint)
                .group_by(func.grouping_sets(_EVENTS.c.distinct_id, session_of))
                .lateral("groups")
            )
            statement: Any = (
                select(own.c.fingerprint, func.count(groups.c.user), func.count(groups.c.session))
                .select_from(own.join(groups, true()))
                .where(own.c.project_id == project_id, in_values(own.c.fingerprint, chunk))
                .group_by(own.c.fingerprint)
            )
        else:
            statement = (
                select(
                    _EVENTS.c.fingerprint, func.count(distinct(_EVENTS.c.distinct_id)), func.count(distinct(session_of))
                )
                .where(*conditions, in_values(_EVENTS.c.fingerprint, chunk))
                .group_by(_EVENTS.c.fingerprint)
            )
        for fingerprint, user_count, session_count in session.execute(statement).all():
            result[single[fingerprint]] = Distinct(int(user_count), int(session_count), estimated=False)
    merged = {fp: key for key, fps in fingerprints_of.items() if len(fps) > 1 for fp in fps}
    users: dict[Any, set[str]] = defaultdict(set)
    sessions: dict[Any, set[str]] = defaultdict(set)
    for column, into in ((_EVENTS.c.distinct_id, users), (session_of, sessions)):
        for chunk in _chunks(sorted(merged)):
            rows = session.execute(
                select(_EVENTS.c.fingerprint, column)
                .where(*conditions, in_values(_EVENTS.c.fingerprint, chunk), column.is_not(None))
                .group_by(_EVENTS.c.fingerprint, column)
            ).all()
            for fingerprint, who in rows:
                into[merged[fingerprint]].add(who)
    for key in set(merged.values()):
        result[key] = Distinct(len(users[key]), len(sessions[key]), estimated=False)
    return result


def _estimated_distinct(
    session: Session,
    project_id: int,
    fingerprints_of: dict[Any, list[str]],
    start: datetime | None,
    end: datetime | None,
) -> dict[Any, Distinct]:
    """Estimates from the day sketches of the issues' fingerprints, read for all the issues
    at once (one query per chunk of fingerprints: a page can estimate dozens of issues)."""
    if not fingerprints_of:
        return {}
    key_of = {fp: key for key, fps in fingerprints_of.items() for fp in fps}
    users: dict[Any, list[bytes | None]] = defaultdict(list)
    sessions: dict[Any, list[bytes | None]] = defaultdict(list)
    for chunk in _chunks(sorted(key_of)):
        query = select(_DAY.c.fingerprint, _DAY.c.users, _DAY.c.sessions).where(
            _DAY.c.project_id == project_id, in_values(_DAY.c.fingerprint, chunk)
        )
        if start is not None:
            query = query.where(_DAY.c.day >= day_of(start))
        if end is not None:
            query = query.where(_DAY.c.day <= end)
        for fingerprint, user_sketch, session_sketch in session.execute(query):
            users[key_of[fingerprint]].append(user_sketch)
            sessions[key_of[fingerprint]].append(session_sketch)
    return {
        key: Distinct(sketch.estimate_merged(users[key]), sketch.estimate_merged(sessions[key]), estimated=True)
        for key in fingerprints_of
    }


def order_values(
    project_id: int,
    start: datetime | None,
    end: datetime | None,
    order_by: str,
    fingerprints: Any = None,
    *,
    postgresql: bool = False,
) -> Any:
    """A subquery of (issue_id, fingerprint, value) for every fingerprint with events in the
    range, ``value`` being what an issue list orders by (``last_seen``, ``first_seen`` or
    ``occurrences``); ``postgresql`` picks the spelling PostgreSQL's planner judges right."""
    start = start or _EARLIEST
    end = end or _LATEST
    if order_by == "occurrences":
        return _touched_occurrences(project_id, start, end, fingerprints, postgresql)
    return _seen_in_range(project_id, start, end, order_by, fingerprints)


def _in(column: Any, fingerprints: Any) -> ColumnElement[bool]:
    """``column IN fingerprints``: a subquery as is, a list bound as one value (a search's
    fingerprints can be thousands)."""
    if isinstance(fingerprints, list | tuple | set | frozenset):
        return in_strings(column, fingerprints)
    return cast(ColumnElement[bool], column.in_(fingerprints))


def _seen_in_range(project_id: int, start: datetime, end: datetime, order_by: str, fingerprints: Any) -> Any:
    """Last or first seen. A fingerprint whose last event falls in the range is in the list
    with nothing read but its own row (the default range ends now: nearly every one); one
    whose last event is after the range is in it if a bucket inside the range has events (a
    seek on the rollups' primary key), and orders by that bucket."""
    own = _FINGERPRINT
    scope = [own.c.project_id == project_id]
    if fingerprints is not None:
        scope.append(_in(own.c.fingerprint, fingerprints))
    first_in_range = case((own.c.first_seen >= start, own.c.first_seen), else_=start)
    current = select(
        own.c.issue_id.label("issue_id"),
        own.c.fingerprint.label("fingerprint"),
        (own.c.last_seen if order_by == "last_seen" else first_in_range).label("value"),
    ).where(*scope, own.c.last_seen >= start, own.c.last_seen <= end)
    kind, first_bucket, last_bucket = touched(start, end)
    table, column = (_DAY, _DAY.c.day) if kind == "day" else (_HOUR, _HOUR.c.hour)
    bucket = (
        select(func.max(column) if order_by == "last_seen" else func.min(column))
        .where(
            table.c.project_id == project_id,
            table.c.fingerprint == own.c.fingerprint,
            column >= first_bucket,
            column <= last_bucket,
        )
        .correlate(own)
        .scalar_subquery()
    )
    # (Totals unknown, as rows from before the totals may have, decide nothing either.)
    later = (
        select(own.c.issue_id.label("issue_id"), own.c.fingerprint.label("fingerprint"), bucket.label("value"))
        .where(*scope, or_(own.c.last_seen > end, own.c.last_seen.is_(None)))
        .where(or_(own.c.first_seen.is_(None), own.c.first_seen <= end))
        .subquery("later")
    )
    return union_all(current, select(later).where(later.c.value.is_not(None))).subquery("per_fingerprint")


def _touched_occurrences(project_id: int, start: datetime, end: datetime, fingerprints: Any, postgresql: bool) -> Any:
    """Occurrences, from one day row per fingerprint and day the range touches (an hour row
    for ranges under three days): the whole buckets at the range's two edges count, so the
    order can differ from the exact numbers shown by the events of those edges. A range of
    the last 7 days reads each fingerprint's count of that window where it is kept
    (``recent``), and the day rows of the others only."""
    kind, first_bucket, last_bucket = touched(start, end)
    own = _FINGERPRINT
    # Events in the touched buckets but none in the range itself (all before its start or
    # after its end) do not list the issue; unknown totals decide nothing.
    listed = [
        or_(own.c.last_seen.is_(None), own.c.last_seen >= start),
        or_(own.c.first_seen.is_(None), own.c.first_seen <= end),
    ]
    if not (kind == "day" and recent.serves(first_bucket, last_bucket)):
        return _summed_occurrences(project_id, kind, first_bucket, last_bucket, fingerprints, listed)
    scope = [own.c.project_id == project_id, *listed]
    if fingerprints is not None:
        scope.append(_in(own.c.fingerprint, fingerprints))
    keys = (own.c.issue_id.label("issue_id"), own.c.fingerprint.label("fingerprint"))
    summed = recent.days_sum(first_bucket, last_bucket)
    if not postgresql:
        # One pass over the project's fingerprints: the kept count, or for those behind (few
        # unless no worker rolled the windows since midnight) the sum of their day rows.
        value = case((own.c.recent_day == last_bucket, own.c.recent_events), else_=summed)
        windows = select(*keys, value.label("value")).where(*scope).subquery("windows")
        return select(windows).where(windows.c.value > 0).subquery("per_fingerprint")
    # PostgreSQL: the kept counts and those behind as two branches. Over that one CASE it
    # guessed that "> 0" kept a third of the rows, costed the day rows' subquery for all of them,
    # and walked 10,000 issues by primary key (27 ms at 1M events; hashed, 13). SQLite is the
    # other way round: it joins the one pass in place, the branches only after building them
    # (14 → 22 ms at 10M events).
    kept = select(*keys, own.c.recent_events.label("value"))
    kept = kept.where(*scope, own.c.recent_day == last_bucket, own.c.recent_events > 0)
    behind_day = or_(own.c.recent_day.is_(None), own.c.recent_day != last_bucket)
    behind = select(*keys, summed.label("value")).where(*scope, behind_day).subquery("behind")
    return union_all(kept, select(behind).where(behind.c.value > 0)).subquery("per_fingerprint")


def _summed_occurrences(
    project_id: int, kind: str, first_bucket: datetime, last_bucket: datetime, fingerprints: Any, listed: Any
) -> Any:
    """(issue_id, fingerprint, value): the fingerprints' events summed over their buckets."""
    table, column = (_DAY, _DAY.c.day) if kind == "day" else (_HOUR, _HOUR.c.hour)
    conditions = [table.c.project_id == project_id, column >= first_bucket, column <= last_bucket]
    if fingerprints is not None:
        conditions.append(_in(table.c.fingerprint, fingerprints))
    per_fingerprint = (
        select(table.c.fingerprint.label("fingerprint"), func.sum(table.c.events).label("events"))
        .where(*conditions)
        .group_by(table.c.fingerprint)
        .subquery("touched")
    )
    own = _FINGERPRINT
    return (
        select(
            own.c.issue_id.label("issue_id"),
            per_fingerprint.c.fingerprint.label("fingerprint"),
            per_fingerprint.c.events.label("value"),
        )
        .select_from(
            per_fingerprint.join(
                own, and_(own.c.project_id == project_id, own.c.fingerprint == per_fingerprint.c.fingerprint)
            )
        )
        .where(*listed)
        .subquery("per_fingerprint")
    )
