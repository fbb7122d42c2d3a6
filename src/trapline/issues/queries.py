"""The read side of issues: the issue list with aggregates, one issue's numbers, its events.

Every number here is computed from the stored events, and an event belongs to the issue that
its fingerprint belongs to *now* (``exception_event JOIN issue_fingerprint ON (project_id,
fingerprint)``), never to ``exception_event.issue_id``, which only records where the event
went when it was processed. That is what makes merges and splits apply to old events too.

Like PostHog's ``ErrorTrackingQuery``, the list is computed from the events in the date range:
an issue without events in the range is not listed, and a search narrows the events an issue
is counted over (only matching events count), not just the issues shown.

Everything is SQLAlchemy Core that runs the same on SQLite and PostgreSQL; timestamps are
``UTCDateTime`` columns, so bound datetimes must be aware and results come back in UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    distinct,
    func,
    select,
)
from sqlalchemy.orm import Session

from trapline.db.sets import in_values
from trapline.db.types import storable_text
from trapline.errors import NotFound
from trapline.events.models import ExceptionEvent
from trapline.issues.filters import (
    ALL_TIME,
    MAX_SEARCH_TOKENS,
    MAX_VOLUME_RESOLUTION,
    ORDER_KEYS,
    RESOLVED_STATES,
    STATUS_FILTERS,
    DateRange,
    Direction,
    IssueFilter,
    OrderKey,
    StatusFilter,
    bucket_bounds,
    default_direction,
    distinct_pairs,
    event_conditions,
    events_of_issues,
    grouped_conditions,
    issue_first_seen,
    like_pattern,
    owned_by,
    parse_bounds,
    parse_date,
    parse_date_range,
    rollups_serve,
    search_tokens,
    with_issue,
)
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint, MergedIssue
from trapline.issues.ordering import issue_order, search_split
from trapline.rules.service import Assignee
from trapline.volumes import counts

__all__ = [
    "ALL_TIME",
    "MAX_SEARCH_TOKENS",
    "MAX_VOLUME_RESOLUTION",
    "ORDER_KEYS",
    "STATUS_FILTERS",
    "Aggregates",
    "DateRange",
    "Direction",
    "IssueFilter",
    "IssueSummary",
    "IssueView",
    "LatestEvent",
    "OrderKey",
    "StatusFilter",
    "VolumeBucket",
    "bucket_bounds",
    "default_direction",
    "fingerprint_owner",
    "get_issue",
    "issue_order",
    "issue_status_counts",
    "issue_values",
    "issue_views",
    "issues_exist",
    "merged_into",
    "parse_bounds",
    "parse_date",
    "parse_date_range",
    "search_split",
    "search_tokens",
    "summarize",
]

_event = ExceptionEvent.__table__
_fingerprint = IssueFingerprint.__table__
_issue = Issue.__table__
# Aliases are built once: each costs ~150 µs of column proxies, and a page used five.
_seen_event = _event.alias("seen_event")
_latest_event = _event.alias("latest_event")
_latest_tied_event = _event.alias("latest_tied_event")
_assignment = IssueAssignment.__table__


# --- what is shown --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueView:
    """The issue object PostHog serialises (``ErrorTrackingIssueReadSerializer``)."""

    id: uuid.UUID
    status: str
    severity: str | None
    name: str | None
    description: str | None
    first_seen: datetime | None
    assignee: Assignee | None


@dataclass(frozen=True)
class VolumeBucket:
    label: datetime
    value: int


@dataclass(frozen=True)
class Aggregates:
    occurrences: int = 0
    users: int = 0
    sessions: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    volume: list[VolumeBucket] | None = None
    # Users and sessions estimated from sketches (an issue with many events in the range).
    estimated: bool = False


@dataclass(frozen=True)
class LatestEvent:
    uuid: uuid.UUID
    timestamp: datetime
    library: str | None
    properties: dict[str, Any] | None


@dataclass(frozen=True)
class IssueSummary:
    issue: IssueView
    aggregates: Aggregates
    latest: LatestEvent | None = None

    @property
    def library(self) -> str | None:
        return self.latest.library if self.latest else None


def get_issue(session: Session, project_id: int, issue_id: uuid.UUID) -> Issue:
    issue = session.scalar(select(Issue).where(Issue.project_id == project_id, Issue.id == issue_id))
    if issue is None:
        raise NotFound("Issue not found")
    return issue


def _assignee(user_id: int | None, role_id: uuid.UUID | None) -> Assignee | None:
    if user_id is not None:
        return ("user", user_id)
    if role_id is not None:
        return ("role", role_id)
    return None


def issue_views(session: Session, issue_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, IssueView]:
    """The issue objects of these ids (missing ids are left out)."""
    if not issue_ids:
        return {}
    rows = session.execute(
        select(
            _issue.c.id,
            _issue.c.status,
            _issue.c.severity,
            _issue.c.name,
            _issue.c.description,
            issue_first_seen().label("first_seen"),
            _assignment.c.user_id,
            _assignment.c.role_id,
        )
        .select_from(_issue.outerjoin(_assignment, _assignment.c.issue_id == _issue.c.id))
        .where(in_values(_issue.c.id, issue_ids))
    ).all()
    return {
        row.id: IssueView(
            id=row.id,
            status=row.status,
            severity=row.severity,
            name=row.name,
            description=row.description,
            first_seen=row.first_seen,
            assignee=_assignee(row.user_id, row.role_id),
        )
        for row in rows
    }


def summarize(
    session: Session,
    project_id: int,
    flt: IssueFilter,
    issue_ids: Sequence[uuid.UUID],
    *,
    volume_resolution: int = 0,
    volume_bounds: Sequence[datetime] | None = None,
    with_properties: bool = False,
) -> list[IssueSummary]:
    """Issue objects with their aggregates over the filter's events, in ``issue_ids`` order.

    An issue without matching events gets zero counts. ``volume_resolution`` > 0 adds the
    volume buckets (the filter must then have a start and an end), or ``volume_bounds`` the
    buckets between those bounds (the web UI's, on whole hours); ``with_properties`` loads
    the properties of each issue's latest event along with its library.
    """
    if not issue_ids:
        return []
    views = issue_views(session, issue_ids)
    # Status and assignee chose the issues; the numbers are over their matching events.
    scoped = replace(flt, status="all", assignee=None, unassigned=False, issue_ids=list(issue_ids))
    aggregates: dict[uuid.UUID, Aggregates] = {}
    bounds = list(volume_bounds or ())
    if volume_resolution > 0 and not bounds:
        bounds = bucket_bounds(_range_of(scoped), volume_resolution)
    volumes: dict[uuid.UUID, list[VolumeBucket]] | None = {} if bounds else None
    for part in _by_search(session, project_id, scoped):
        issue_of = _owners(session, project_id, part)  # read once for the numbers and the volumes
        if rollups_serve(part):
            counted, buckets = _rolled_up(session, project_id, part, issue_of, bounds)
        else:
            counted = _aggregate_rows(session, project_id, part, issue_of)
            buckets = _volumes(session, project_id, part, bounds, issue_of) if bounds else {}
        aggregates.update(counted)
        if volumes is not None:
            volumes.update(buckets)
    latest = _latest_events(session, project_id, scoped, with_properties)
    summaries = []
    for issue_id in issue_ids:
        view = views.get(issue_id)
        if view is None:  # deleted (merged away) between the two queries
            continue
        numbers = aggregates.get(issue_id, Aggregates())
        if volumes is not None:
            empty = [VolumeBucket(label, 0) for label in bounds[:-1]]
            numbers = replace(numbers, volume=volumes.get(issue_id) or empty)
        summaries.append(IssueSummary(issue=view, aggregates=numbers, latest=latest.get(issue_id)))
    return summaries


def _by_search(session: Session, project_id: int, flt: IssueFilter) -> list[IssueFilter]:
    """The filter of a page of issues, cut by what a search can match: issues whose matching
    fingerprints all match in every event are counted from the rollups (search dropped,
    restricted to those fingerprints), the others from their events."""
    split = search_split(session, project_id, flt)
    if split is None:
        return [flt]
    owners = session.execute(
        select(_fingerprint.c.issue_id, _fingerprint.c.fingerprint).where(*owned_by(project_id, flt.issue_ids or ()))
    )
    fingerprints_of: dict[uuid.UUID, set[str]] = {}
    for issue_id, fingerprint in owners:
        fingerprints_of.setdefault(issue_id, set()).add(fingerprint)
    rolled, scanned, wholes = [], [], set()
    for issue_id, fingerprints in fingerprints_of.items():
        if fingerprints & split.partial:
            scanned.append(issue_id)
        elif fingerprints & split.whole:
            rolled.append(issue_id)
            wholes |= fingerprints & split.whole
    parts = []
    if rolled:
        parts.append(replace(flt, search=(), issue_ids=rolled, fingerprints=sorted(wholes)))
    if scanned:
        parts.append(replace(flt, issue_ids=scanned))
    return parts


def _owners(session: Session, project_id: int, flt: IssueFilter) -> dict[str, uuid.UUID]:
    """The issue of each fingerprint the filter covers (its issues', narrowed to its fingerprints)."""
    owned = [_fingerprint.c.project_id == project_id] if flt.issue_ids is None else owned_by(project_id, flt.issue_ids)
    owners = select(_fingerprint.c.fingerprint, _fingerprint.c.issue_id).where(*owned)
    if flt.fingerprints:
        owners = owners.where(in_values(_fingerprint.c.fingerprint, flt.fingerprints))
    return {row.fingerprint: row.issue_id for row in session.execute(owners).all()}


def _aggregate_rows(
    session: Session, project_id: int, flt: IssueFilter, issue_of: dict[str, uuid.UUID]
) -> dict[uuid.UUID, Aggregates]:
    """The numbers of ``flt.issue_ids`` over the filter's events (``issue_of``: ``_owners``),
    where the rollups cannot answer them (``rollups_serve``).

    Grouped by fingerprint, as ``_order_key`` is, in one read of the covering index; only the
    groups are matched to their issue. Joining every event to its issue before grouping cost a
    lookup per event (200 ms for an issue of 100,000 on PostgreSQL). An issue with one
    fingerprint (nearly all) takes its distinct users and sessions from that group; for one
    with several (merged), distinct pairs are counted again across them.
    """
    conditions = grouped_conditions(project_id, flt)
    session_of = func.nullif(_event.c.session_id, "")
    groups: dict[uuid.UUID, list[Any]] = {}
    for row in session.execute(
        select(
            _event.c.fingerprint,
            func.count().label("occurrences"),
            func.count(distinct(_event.c.distinct_id)).label("users"),
            func.count(distinct(session_of)).label("sessions"),
            func.min(_event.c.timestamp).label("first_seen"),
            func.max(_event.c.timestamp).label("last_seen"),
        )
        .where(*conditions)
        .group_by(_event.c.fingerprint)
    ).all():
        issue_id = issue_of.get(row.fingerprint)
        if issue_id is not None:  # else moved by a merge or split since the first query
            groups.setdefault(issue_id, []).append(row)
    merged = [issue_id for issue_id, rows in groups.items() if len(rows) > 1]
    users = _distinct_per_issue(session, project_id, conditions, _event.c.distinct_id, merged)
    sessions = _distinct_per_issue(session, project_id, conditions, session_of, merged)
    return {
        issue_id: Aggregates(
            occurrences=sum(row.occurrences for row in rows),
            users=users[issue_id] if issue_id in users else rows[0].users,
            sessions=sessions[issue_id] if issue_id in sessions else rows[0].sessions,
            first_seen=min(row.first_seen for row in rows),
            last_seen=max(row.last_seen for row in rows),
        )
        for issue_id, rows in groups.items()
    }


def _rolled_up(
    session: Session, project_id: int, flt: IssueFilter, issue_of: dict[str, uuid.UUID], bounds: Sequence[datetime]
) -> tuple[dict[uuid.UUID, Aggregates], dict[uuid.UUID, list[VolumeBucket]]]:
    """The numbers and, with ``bounds``, the volume buckets from the rollups; a ranged list's
    sparklines and the numbers beside them from one read of the hour rows."""
    fingerprints = sorted(issue_of)
    per_fingerprint: dict[str, list[int]] = {}
    if bounds and flt.start is not None and flt.end is not None:
        per_fingerprint, events = counts.bucketed_and_total(
            session, project_id, fingerprints, bounds, flt.start, flt.end
        )
    else:
        events = counts.total_counts(session, project_id, fingerprints, flt.start, flt.end)
        if bounds:
            per_fingerprint = counts.bucketed(session, project_id, fingerprints, bounds)
    volumes = _per_issue(per_fingerprint, issue_of, bounds) if bounds else {}
    return _rolled_up_aggregates(session, project_id, flt, issue_of, events), volumes


def _rolled_up_aggregates(
    session: Session, project_id: int, flt: IssueFilter, issue_of: dict[str, uuid.UUID], events: dict[str, int]
) -> dict[uuid.UUID, Aggregates]:
    """The same numbers from the rollups: ``events``, each fingerprint's in the range (the
    hours inside it and the events of its two edge hours), first and last seen by one index
    seek per fingerprint, distinct users and sessions exact unless the issues have many
    events in the range."""
    if not events:
        return {}
    fingerprints_of: dict[uuid.UUID, list[str]] = {}
    for fingerprint in events:
        fingerprints_of.setdefault(issue_of[fingerprint], []).append(fingerprint)
    seen = _seen_in_range(session, project_id, flt, sorted(events))
    totals = {issue_id: sum(events[fp] for fp in fps) for issue_id, fps in fingerprints_of.items()}
    distinct_counts = counts.distinct_counts(session, project_id, fingerprints_of, totals, flt.start, flt.end)
    result = {}
    for issue_id, fps in fingerprints_of.items():
        edges = [seen.get(fp, (None, None)) for fp in fps]
        firsts = [first for first, _ in edges if first is not None]
        lasts = [last for _, last in edges if last is not None]
        who = distinct_counts[issue_id]
        result[issue_id] = Aggregates(
            occurrences=totals[issue_id],
            users=who.users,
            sessions=who.sessions,
            first_seen=min(firsts) if firsts else None,
            last_seen=max(lasts) if lasts else None,
            estimated=who.estimated,
        )
    return result


def _seen_in_range(
    session: Session, project_id: int, flt: IssueFilter, fingerprints: Sequence[str]
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Each fingerprint's first and last event in the range: two seeks on the
    (project_id, fingerprint, timestamp) index per fingerprint, whatever its events."""
    events = _seen_event
    bounds = []
    if flt.start is not None:
        bounds.append(events.c.timestamp >= flt.start)
    if flt.end is not None:
        bounds.append(events.c.timestamp <= flt.end)

    def edge(measure: Any) -> Any:
        return (
            select(measure(events.c.timestamp))
            .where(events.c.project_id == project_id, events.c.fingerprint == _fingerprint.c.fingerprint, *bounds)
            .correlate(_fingerprint)
            .scalar_subquery()
        )

    found: dict[str, tuple[datetime | None, datetime | None]] = {}
    for start in range(0, len(fingerprints), 500):
        rows = session.execute(
            select(_fingerprint.c.fingerprint, edge(func.min), edge(func.max)).where(
                _fingerprint.c.project_id == project_id,
                in_values(_fingerprint.c.fingerprint, fingerprints[start : start + 500]),
            )
        ).all()
        found.update({row[0]: (row[1], row[2]) for row in rows})
    return found


def _distinct_per_issue(
    session: Session, project_id: int, conditions: list[ColumnElement[bool]], column: Any, issue_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Distinct values of ``column`` per issue, over all of each issue's fingerprints."""
    if not issue_ids:
        return {}
    pairs = distinct_pairs(conditions, column)
    rows = session.execute(
        select(_fingerprint.c.issue_id, func.count(distinct(pairs.c.who)))
        .select_from(with_issue(pairs, project_id))
        .where(in_values(_fingerprint.c.issue_id, issue_ids))
        .group_by(_fingerprint.c.issue_id)
    )
    return {row[0]: row[1] for row in rows}


def _range_of(flt: IssueFilter) -> DateRange:
    if flt.start is None or flt.end is None:
        raise ValueError("volume buckets need a date range")
    return DateRange(flt.start, flt.end)


def _volumes(
    session: Session, project_id: int, flt: IssueFilter, bounds: Sequence[datetime], issue_of: dict[str, uuid.UUID]
) -> dict[uuid.UUID, list[VolumeBucket]]:
    """Volume buckets where the rollups cannot answer them (``rollups_serve``)."""
    # From the events, one conditional count per bucket: exact on both backends (no epoch
    # arithmetic on timestamps, whose precision and spelling differ), and cheap because it only
    # runs for one page of issues.
    resolution = len(bounds) - 1
    timestamp = _event.c.timestamp
    columns = []
    for i in range(resolution):
        upper = timestamp <= bounds[i + 1] if i == resolution - 1 else timestamp < bounds[i + 1]
        columns.append(func.count(case((and_(timestamp >= bounds[i], upper), 1))).label(f"b{i}"))
    joined, conditions = events_of_issues(_event, project_id, flt)
    rows = session.execute(
        select(_fingerprint.c.issue_id, *columns)
        .select_from(joined)
        .where(*conditions)
        .group_by(_fingerprint.c.issue_id)
    )
    return {row[0]: [VolumeBucket(bounds[i], row[i + 1]) for i in range(resolution)] for row in rows}


def _per_issue(
    per_fingerprint: dict[str, list[int]], issue_of: dict[str, uuid.UUID], bounds: Sequence[datetime]
) -> dict[uuid.UUID, list[VolumeBucket]]:
    """Fingerprints' buckets added up per issue."""
    per_issue: dict[uuid.UUID, list[int]] = {}
    for fingerprint, values in per_fingerprint.items():
        totals = per_issue.setdefault(issue_of[fingerprint], [0] * (len(bounds) - 1))
        for i, value in enumerate(values):
            totals[i] += value
    return {
        issue_id: [VolumeBucket(bounds[i], value) for i, value in enumerate(values)]
        for issue_id, values in per_issue.items()
    }


def _latest_events(
    session: Session, project_id: int, flt: IssueFilter, with_properties: bool
) -> dict[uuid.UUID, LatestEvent]:
    # The latest event of each *fingerprint* is its max(timestamp), one seek on the
    # (project_id, fingerprint, timestamp, …) index, then the highest id at that timestamp;
    # the issue's latest is the latest of those. ORDER BY timestamp DESC, id DESC LIMIT 1 says
    # the same, but no index has that order since the index covers users and sessions, so
    # SQLite walked the project's time index instead (a second for 50 quiet issues).
    events, tied = _latest_event, _latest_tied_event
    latest_time = (
        select(func.max(events.c.timestamp))
        .where(events.c.fingerprint == _fingerprint.c.fingerprint, *event_conditions(events, project_id, flt))
        .correlate(_fingerprint)
        .scalar_subquery()
    )
    latest_id = (
        select(func.max(tied.c.id))
        .where(
            tied.c.fingerprint == _fingerprint.c.fingerprint,
            tied.c.timestamp == latest_time,
            # That timestamp is in the range already; the bounds would only hide the equality.
            *event_conditions(tied, project_id, replace(flt, start=None, end=None)),
        )
        .correlate(_fingerprint)
        .scalar_subquery()
    )
    per_fingerprint = session.execute(
        select(_fingerprint.c.issue_id, latest_id.label("event_id")).where(*owned_by(project_id, flt.issue_ids or ()))
    ).all()
    issue_of = {row.event_id: row.issue_id for row in per_fingerprint if row.event_id is not None}
    if not issue_of:
        return {}
    columns = [_event.c.id, _event.c.uuid, _event.c.timestamp, _event.c.library]
    if with_properties:
        columns.append(_event.c.properties)
    latest: dict[uuid.UUID, tuple[datetime, int, LatestEvent]] = {}
    for row in session.execute(select(*columns).where(in_values(_event.c.id, issue_of))).all():
        issue_id = issue_of[row.id]
        candidate = LatestEvent(
            uuid=row.uuid,
            timestamp=row.timestamp,
            library=row.library,
            properties=row.properties if with_properties else None,
        )
        if issue_id not in latest or (row.timestamp, row.id) > latest[issue_id][:2]:
            latest[issue_id] = (row.timestamp, row.id, candidate)
    return {issue_id: entry[2] for issue_id, entry in latest.items()}


# --- small lookups --------------------------------------------------------------------------


def issue_status_counts(session: Session, project_id: int) -> dict[StatusFilter, int]:
    """How many issues the project has per status filter, all time (legacy states count as
    resolved): one count over the issue table's project index, whatever the date range."""
    counts: dict[StatusFilter, int] = dict.fromkeys(STATUS_FILTERS, 0)
    rows = session.execute(
        select(_issue.c.status, func.count()).where(_issue.c.project_id == project_id).group_by(_issue.c.status)
    )
    for status, count in rows:
        counts["all"] += count
        if status in RESOLVED_STATES:
            counts["resolved"] += count
        if status in counts and status not in ("all", "resolved"):
            counts[status] += count
    return counts


def merged_into(session: Session, project_id: int, issue_id: uuid.UUID) -> uuid.UUID | None:
    """The issue a merged-away issue lives on in, if it was merged."""
    return session.scalar(
        select(MergedIssue.merged_into).where(MergedIssue.project_id == project_id, MergedIssue.issue_id == issue_id)
    )


def issues_exist(session: Session, project_id: int) -> bool:
    return session.scalar(select(Issue.id).where(Issue.project_id == project_id).limit(1)) is not None


def fingerprint_owner(session: Session, project_id: int, fingerprint: str) -> uuid.UUID | None:
    """The issue a fingerprint belongs to now, if it is known."""
    return session.scalar(
        select(IssueFingerprint.issue_id).where(
            IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint == storable_text(fingerprint)
        )
    )


_VALUE_COLUMNS = {"name": _issue.c.name, "issue_description": _issue.c.description}
VALUES_LIMIT = 100


def issue_values(session: Session, project_id: int, key: str | None, value: str | None) -> list[str]:
    """Distinct issue names (``key=name``) or descriptions (``issue_description``) containing
    ``value``, case-insensitively; PostHog answers nothing for another key or no value."""
    column = _VALUE_COLUMNS.get(key or "")
    if column is None or not value:
        return []
    rows = session.scalars(
        select(column)
        .distinct()
        .where(
            _issue.c.project_id == project_id,
            column.is_not(None),
            column.ilike(like_pattern(storable_text(value)), escape="\\"),
        )
        .order_by(column)
        .limit(VALUES_LIMIT)
    )
    return [row for row in rows if row is not None]
