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

import calendar
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from trapline.db.types import storable_text, utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint, MergedIssue
from trapline.rules.service import Assignee
from trapline.search import summary as text_summary
from trapline.search.models import FingerprintText
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
    "EventRef",
    "IssueFilter",
    "IssueSummary",
    "IssueView",
    "LatestEvent",
    "OrderKey",
    "StatusFilter",
    "Step",
    "VolumeBucket",
    "breakdown",
    "bucket_bounds",
    "default_direction",
    "fingerprint_owner",
    "get_issue",
    "issue_event",
    "issue_events",
    "issue_fingerprints",
    "issue_order",
    "issue_status_counts",
    "issue_values",
    "issue_views",
    "issue_volume",
    "issues_exist",
    "merged_into",
    "newer_event_count",
    "parse_bounds",
    "parse_date",
    "parse_date_range",
    "search_split",
    "search_tokens",
    "step_event",
    "summarize",
]

OrderKey = Literal["last_seen", "first_seen", "occurrences", "users", "sessions"]
Direction = Literal["ASC", "DESC"]
StatusFilter = Literal["active", "resolved", "suppressed", "archived", "pending_release", "all"]
ORDER_KEYS: tuple[OrderKey, ...] = ("last_seen", "first_seen", "occurrences", "users", "sessions")
STATUS_FILTERS: tuple[StatusFilter, ...] = ("active", "resolved", "suppressed", "archived", "pending_release", "all")

# PostHog's query runner reads date_from "all" (and a missing one) as four years back.
ALL_TIME = 4
MAX_SEARCH_TOKENS = 100
# PostHog's query serializers cap volumeResolution at 200; each bucket is one column here.
MAX_VOLUME_RESOLUTION = 200
# Legacy states that read as resolved (PostHog's ClickHouse side maps them so too).
_RESOLVED_STATES = ("resolved", "archived", "pending_release")

_event = ExceptionEvent.__table__
_fingerprint = IssueFingerprint.__table__
_issue = Issue.__table__
_text = FingerprintText.__table__
_assignment = IssueAssignment.__table__
# An event to its fingerprint's row, and so to the issue that fingerprint belongs to now.
_EVENT_FINGERPRINT = and_(
    IssueFingerprint.project_id == ExceptionEvent.project_id,
    IssueFingerprint.fingerprint == ExceptionEvent.fingerprint,
)


# --- search ---------------------------------------------------------------------------------

# PostHog's search_tokenizer: a double- or single-quoted phrase is one token, anything else
# splits on whitespace; the quotes are then stripped.
_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|\S+")


def search_tokens(query: str | None, *, attr: str | None = None) -> list[str]:
    """The lower-cased tokens of a search; every one must match an event for it to count."""
    if not query:
        return []
    tokens = [token.strip("'\"").lower() for token in _TOKEN.findall(query)]
    tokens = [storable_text(token) for token in tokens if token]
    if len(tokens) > MAX_SEARCH_TOKENS:
        raise InvalidInput("Too many search tokens", attr=attr)
    return tokens


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- dates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    start: datetime
    end: datetime


_RELATIVE = re.compile(r"-?(?P<amount>\d{1,7})?(?P<unit>[hdwmqyM])(?P<position>Start|End)?")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_INVALID_DATE = 'Invalid date: use an ISO 8601 date or datetime, a relative date such as "-7d", or "all".'


def parse_date(value: str, *, now: datetime, end: bool = False) -> datetime:
    """An absolute (ISO 8601) or relative (``-7d``, ``-2w``, ``-1mStart``…) date as UTC.

    Units: ``h`` hours, ``d`` days, ``w`` weeks, ``m`` months, ``q`` quarters, ``y`` years and
    ``M`` minutes, as in PostHog. ``Start``/``End`` snap to the start or end of that unit
    (weeks start on Monday). A bare date is midnight, or the day's last microsecond when
    ``end`` is set, so that ``date_to=2024-01-31`` includes that day. A datetime without a
    zone is UTC. Raises ``ValueError`` for anything else.
    """
    value = value.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount = int(relative["amount"] or 0)
        moment = _shift(now, relative["unit"], -amount)
        if relative["position"] == "Start":
            return _unit_start(moment, relative["unit"])
        if relative["position"] == "End":
            return _shift(_unit_start(moment, relative["unit"]), relative["unit"], 1) - timedelta(microseconds=1)
        return moment
    parsed = datetime.fromisoformat(value)
    if end and _DATE_ONLY.fullmatch(value):
        parsed = parsed + timedelta(days=1) - timedelta(microseconds=1)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _shift(moment: datetime, unit: str, amount: int) -> datetime:
    if unit in "mqy":
        months = amount * {"m": 1, "q": 3, "y": 12}[unit]
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        if not 1 <= year <= 9999:
            raise ValueError("date out of range")
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    step = {"M": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    return moment + step[unit] * amount


def _unit_start(moment: datetime, unit: str) -> datetime:
    if unit == "M":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return midnight
    if unit == "w":
        return midnight - timedelta(days=midnight.weekday())
    if unit == "m":
        return midnight.replace(day=1)
    if unit == "q":
        return midnight.replace(month=(midnight.month - 1) // 3 * 3 + 1, day=1)
    return midnight.replace(month=1, day=1)


def _parse_field(value: str, attr: str, *, now: datetime, end: bool) -> datetime:
    try:
        if not end and value.strip() == "all":
            return _shift(now, "y", -ALL_TIME)
        return parse_date(value, now=now, end=end)
    except (ValueError, OverflowError):
        raise InvalidInput(_INVALID_DATE, attr=attr) from None


def parse_date_range(
    date_from: str | None,
    date_to: str | None,
    *,
    now: datetime | None = None,
    default_from: str = "-7d",
    attr_prefix: str = "",
) -> DateRange:
    """The range a list or query covers: ``date_from`` defaults to ``default_from`` and
    ``"all"`` means four years back; ``date_to`` defaults to now."""
    now = now or utcnow()
    start = _parse_field(date_from or default_from, f"{attr_prefix}date_from", now=now, end=False)
    end = _parse_field(date_to, f"{attr_prefix}date_to", now=now, end=True) if date_to else now
    if start > end:
        raise InvalidInput("date_from must not be after date_to.", attr=f"{attr_prefix}date_from")
    return DateRange(start, end)


def parse_bounds(
    date_from: str | None, date_to: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """Optional bounds for browsing events: a bound not given is no bound."""
    now = now or utcnow()
    start = _parse_field(date_from, "date_from", now=now, end=False) if date_from else None
    end = _parse_field(date_to, "date_to", now=now, end=True) if date_to else None
    if start is not None and end is not None and start > end:
        raise InvalidInput("date_from must not be after date_to.", attr="date_from")
    return start, end


def bucket_bounds(date_range: DateRange, resolution: int) -> list[datetime]:
    """``resolution`` + 1 bounds of equal-width buckets over the range; the last is its end."""
    width = date_range.end - date_range.start
    return [date_range.start + width * i / resolution for i in range(resolution)] + [date_range.end]


def default_direction(order_by: OrderKey) -> Direction:
    # Oldest first for first_seen, as PostHog's query runner does; largest/latest otherwise.
    return "ASC" if order_by == "first_seen" else "DESC"


# --- what the list is over ------------------------------------------------------------------


@dataclass(frozen=True)
class IssueFilter:
    """Which events count and which issues are listed. No start/end means no bound."""

    start: datetime | None = None
    end: datetime | None = None
    status: StatusFilter = "all"
    assignee: Assignee | None = None
    # Only issues nobody is assigned to (the web UI's filter; PostHog's API has none).
    unassigned: bool = False
    search: Sequence[str] = ()
    issue_ids: Sequence[uuid.UUID] | None = None
    libraries: Sequence[str] = ()
    fingerprints: Sequence[str] = ()
    url: str | None = None

    @classmethod
    def over(cls, date_range: DateRange, **kwargs: Any) -> IssueFilter:
        return cls(start=date_range.start, end=date_range.end, **kwargs)


def _event_conditions(events: FromClause, project_id: int, flt: IssueFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [events.c.project_id == project_id]
    if flt.start is not None:
        conditions.append(events.c.timestamp >= flt.start)
    if flt.end is not None:
        conditions.append(events.c.timestamp <= flt.end)
    # search_text is stored lower-cased; both sides lowered in Python, so PostgreSQL's
    # case-sensitive LIKE and SQLite's ASCII-only case folding agree.
    conditions += [events.c.search_text.like(_like_pattern(token), escape="\\") for token in flt.search]
    if flt.libraries:
        conditions.append(events.c.library.in_(list(flt.libraries)))
    if flt.fingerprints:
        conditions.append(events.c.fingerprint.in_(list(flt.fingerprints)))
    if flt.url:
        url = events.c.properties["$current_url"].as_string()
        conditions.append(func.lower(url).like(_like_pattern(flt.url.lower()), escape="\\"))
    return conditions


def _fingerprints_of(project_id: int, issue_ids: Sequence[uuid.UUID]) -> Select[Any]:
    """The fingerprints that belong to these issues now."""
    return select(_fingerprint.c.fingerprint).where(
        _fingerprint.c.project_id == project_id, _fingerprint.c.issue_id.in_(list(issue_ids))
    )


def _grouped_conditions(project_id: int, flt: IssueFilter) -> list[ColumnElement[bool]]:
    """The filter's conditions on events alone, its issues named by their fingerprints: what
    lets a query walk the (project_id, fingerprint, …) index for just those issues."""
    conditions = _event_conditions(_event, project_id, flt)
    if flt.issue_ids is not None:
        conditions.append(_event.c.fingerprint.in_(_fingerprints_of(project_id, flt.issue_ids)))
    return conditions


def _distinct_pairs(conditions: Sequence[ColumnElement[bool]], column: Any) -> Any:
    """(fingerprint, who) made distinct per fingerprint: the step that keeps distinct users
    and sessions exact across the several fingerprints of a merged issue. A NULL ``who`` is
    kept (count(DISTINCT) skips it): a fingerprint without sessions still lists its issue."""
    return (
        select(_event.c.fingerprint.label("fingerprint"), column.label("who"))
        .where(*conditions)
        .group_by(_event.c.fingerprint, column)
        .subquery("pairs")
    )


def _with_issue(grouped: Any, project_id: int) -> Any:
    """Rows keyed by fingerprint joined to the fingerprint table, which names their issue."""
    return grouped.join(
        _fingerprint,
        and_(_fingerprint.c.project_id == project_id, _fingerprint.c.fingerprint == grouped.c.fingerprint),
    )


def _events_of_issues(events: FromClause, project_id: int, flt: IssueFilter) -> tuple[Any, list[ColumnElement[bool]]]:
    """The events joined to the fingerprint table (which names their issue), and conditions."""
    joined = events.join(
        _fingerprint,
        and_(_fingerprint.c.project_id == events.c.project_id, _fingerprint.c.fingerprint == events.c.fingerprint),
    )
    conditions = _event_conditions(events, project_id, flt)
    if flt.issue_ids is not None:
        conditions.append(_fingerprint.c.issue_id.in_(list(flt.issue_ids)))
        # The same restriction on the events' side lets the planner walk the fingerprint index
        # for just these issues instead of every event in the range.
        conditions.append(events.c.fingerprint.in_(_fingerprints_of(project_id, flt.issue_ids)))
    return joined, conditions


def _issue_conditions(
    project_id: int, flt: IssueFilter, *, sqlite_unindexed: bool = False
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_project_of(_issue, project_id, sqlite_unindexed)]
    if flt.status == "resolved":
        conditions.append(_issue.c.status.in_(_RESOLVED_STATES))
    elif flt.status != "all":
        conditions.append(_issue.c.status == flt.status)
    if flt.assignee is not None:
        kind, ident = flt.assignee
        column = _assignment.c.user_id if kind == "user" else _assignment.c.role_id
        conditions.append(column == ident)
    if flt.unassigned:
        conditions.append(_assignment.c.id.is_(None))
    return conditions


def _issue_first_seen() -> Any:
    # The issue's own first_seen is PostHog's min over its fingerprints (all time), not the
    # first event in the range.
    fingerprints = _fingerprint.alias("first_seen_fingerprint")
    return (
        select(func.min(fingerprints.c.first_seen))
        .where(fingerprints.c.issue_id == _issue.c.id)
        .correlate(_issue)
        .scalar_subquery()
    )


def _order_key(project_id: int, flt: IssueFilter, order_by: OrderKey, split: SearchSplit | None = None) -> Any:
    """Per issue, just the value the list is ordered by, over the filter's events.

    Events are grouped by fingerprint first: without a search, that reads only the
    (project_id, fingerprint, timestamp, distinct_id, session_id) index, never the rows with
    their properties, and joins each fingerprint to its issue once instead of every event.
    Distinct users and sessions are made distinct per fingerprint first and then per issue,
    which stays exact when a merged issue has several fingerprints.
    """
    if _rollups_serve(flt) and order_by in ("last_seen", "first_seen", "occurrences"):
        return _rolled_up_order_key(project_id, flt, order_by)
    if split is not None and order_by in ("last_seen", "first_seen", "occurrences"):
        return _searched_order_key(project_id, flt, order_by, split)
    conditions = _grouped_conditions(project_id, flt)
    if order_by in ("users", "sessions"):
        column = _event.c.distinct_id if order_by == "users" else func.nullif(_event.c.session_id, "")
        per_fingerprint = _distinct_pairs(conditions, column)
        value: Any = func.count(distinct(per_fingerprint.c.who))
    else:
        measure = {
            "last_seen": func.max(_event.c.timestamp),
            "first_seen": func.min(_event.c.timestamp),
            "occurrences": func.count(),
        }[order_by]
        per_fingerprint = (
            select(_event.c.fingerprint.label("fingerprint"), measure.label("value"))
            .where(*conditions)
            .group_by(_event.c.fingerprint)
            .subquery("per_fingerprint")
        )
        inner = per_fingerprint.c.value
        combined = {"last_seen": func.max(inner), "first_seen": func.min(inner), "occurrences": func.sum(inner)}
        value = combined[order_by]
    return (
        select(_fingerprint.c.issue_id.label("issue_id"), value.label("value"))
        .select_from(_with_issue(per_fingerprint, project_id))
        .group_by(_fingerprint.c.issue_id)
        .subquery("ordered")
    )


def _rollups_serve(flt: IssueFilter) -> bool:
    """Whether the filter only narrows by time, issue and fingerprint, which the volume
    rollups answer; a search, a library or a URL narrows events, which only they answer."""
    return not (flt.search or flt.libraries or flt.url)


def _scoped_fingerprints(project_id: int, flt: IssueFilter) -> Any:
    """The fingerprints the filter restricts to (None: all of the project's)."""
    if flt.issue_ids is not None:
        owned = _fingerprints_of(project_id, flt.issue_ids)
        if flt.fingerprints:
            owned = owned.where(_fingerprint.c.fingerprint.in_(list(flt.fingerprints)))
        return owned
    return list(flt.fingerprints) if flt.fingerprints else None


def _rolled_up_order_key(project_id: int, flt: IssueFilter, order_by: OrderKey) -> Any:
    per_fingerprint = counts.order_values(
        project_id, flt.start, flt.end, order_by, _scoped_fingerprints(project_id, flt)
    )
    inner = per_fingerprint.c.value
    combined = {"last_seen": func.max(inner), "first_seen": func.min(inner), "occurrences": func.sum(inner)}[order_by]
    return (
        select(per_fingerprint.c.issue_id.label("issue_id"), combined.label("value"))
        .group_by(per_fingerprint.c.issue_id)
        .subquery("ordered")
    )


def _searched_order_key(project_id: int, flt: IssueFilter, order_by: OrderKey, split: SearchSplit) -> Any:
    """A search's order key: the rollups' for fingerprints whose every event matches, the
    events' for those where only some may, nothing for those where none can."""
    parts: list[Any] = []
    if split.whole:
        rolled = counts.order_values(project_id, flt.start, flt.end, order_by, sorted(split.whole))
        parts.append(select(rolled.c.issue_id, rolled.c.value))
    if split.partial:
        conditions = [*_grouped_conditions(project_id, flt), _event.c.fingerprint.in_(sorted(split.partial))]
        measure = {
            "last_seen": func.max(_event.c.timestamp),
            "first_seen": func.min(_event.c.timestamp),
            "occurrences": func.count(),
        }[order_by]
        scanned = (
            select(_event.c.fingerprint.label("fingerprint"), measure.label("value"))
            .where(*conditions)
            .group_by(_event.c.fingerprint)
            .subquery("scanned")
        )
        parts.append(select(_fingerprint.c.issue_id, scanned.c.value).select_from(_with_issue(scanned, project_id)))
    if not parts:  # no fingerprint can match
        # Typed, or PostgreSQL cannot pick the sum() or max() of an untyped NULL.
        kind = Integer() if order_by == "occurrences" else _event.c.timestamp.type
        parts.append(select(_fingerprint.c.issue_id, cast(null(), kind).label("value")).where(literal(False)))
    both = (parts[0] if len(parts) == 1 else _union_all(*parts)).subquery("searched")
    value = both.c.value
    combined = {"last_seen": func.max(value), "first_seen": func.min(value), "occurrences": func.sum(value)}[order_by]
    return (
        select(both.c.issue_id.label("issue_id"), combined.label("value")).group_by(both.c.issue_id).subquery("ordered")
    )


# union_all's generic signature makes mypy 2.4 crash when inferred from a list of selects.
_union_all: Any = union_all
_CANDIDATES = "SELECT fingerprint, common FROM fingerprint_text WHERE project_id = {mark} AND {has_bits}"


def _candidate_summaries(
    session: Session, project_id: int, bits: Sequence[tuple[int, int]]
) -> list[tuple[str, str | None]]:
    """(fingerprint, common parts) of every fingerprint whose filter has the search's bits,
    tested by the database and read through the driver: ten thousand half-kilobyte filters
    cost more to carry into Python and test there than the whole query."""
    connection = session.connection()
    dialect = connection.dialect.name
    statement = _CANDIDATES.format(
        mark="%s" if dialect == "postgresql" else "?", has_bits=text_summary.sql_has_bits(bits, dialect)
    )
    driver: Any = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(statement, (project_id,))
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()


@dataclass(frozen=True)
class SearchSplit:
    """The fingerprints a search can match: ``whole`` ones with every event matching (their
    rollups count them), ``partial`` ones with some events that may (their events are read)."""

    whole: frozenset[str]
    partial: frozenset[str]


def search_split(session: Session, project_id: int, flt: IssueFilter) -> SearchSplit | None:
    """What the fingerprints' search summaries say about the filter's search (None when the
    filter has no search, or narrows events in other ways the summaries know nothing of).

    A fingerprint without a summary has no stored events (the pipeline and the migration
    write one for every fingerprint with events), so it cannot match."""
    if not flt.search or flt.libraries or flt.url:
        return None
    bits = text_summary.token_bits(flt.search)
    if flt.issue_ids is None and not flt.fingerprints:  # every fingerprint of the project
        candidates: Any = _candidate_summaries(session, project_id, bits)
    else:
        has_bits = text(text_summary.sql_has_bits(bits, session.get_bind().dialect.name, "fingerprint_text.trigrams"))
        query = select(_text.c.fingerprint, _text.c.common).where(_text.c.project_id == project_id, has_bits)
        if flt.issue_ids is not None:
            query = query.where(_text.c.fingerprint.in_(_fingerprints_of(project_id, flt.issue_ids)))
        if flt.fingerprints:
            query = query.where(_text.c.fingerprint.in_(list(flt.fingerprints)))
        candidates = session.execute(query)
    whole, partial = set(), set()
    for fingerprint, common in candidates:
        if common is not None and text_summary.all_match(common, flt.search):
            whole.add(fingerprint)
        else:
            partial.add(fingerprint)
    return SearchSplit(frozenset(whole), frozenset(partial))


def issue_order(
    project_id: int,
    flt: IssueFilter,
    *,
    order_by: OrderKey = "last_seen",
    direction: Direction | None = None,
    session: Session | None = None,
) -> Select[Any]:
    """The ids of the issues the filter lists, in order; paginate it, then ``summarize``.

    With a ``session``, a search first asks the fingerprints' search summaries which
    fingerprints can match, and reads the events of only those that may match in part."""
    descending = (direction or default_direction(order_by)) == "DESC"
    if session is not None and order_by == "last_seen" and descending:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if _latest_first_serves(session, project_id, flt, sqlite=sqlite):
            return _latest_first(project_id, flt, sqlite=sqlite)
    split = search_split(session, project_id, flt) if session is not None else None
    ordered = _order_key(project_id, flt, order_by, split)
    # Ordered by the first_seen the issue shows (all time), falling back to the range's.
    key = func.coalesce(_issue_first_seen(), ordered.c.value) if order_by == "first_seen" else ordered.c.value
    sort = key.desc() if descending else key.asc()
    return (
        select(_issue.c.id)
        .select_from(
            _issue.join(ordered, ordered.c.issue_id == _issue.c.id).outerjoin(
                _assignment, _assignment.c.issue_id == _issue.c.id
            )
        )
        .where(*_issue_conditions(project_id, flt))
        .order_by(sort, _issue.c.id)
    )


def _latest_first_serves(session: Session, project_id: int, flt: IssueFilter, *, sqlite: bool) -> bool:
    """Whether the latest-first order can be read from the fingerprints' last seen alone: the
    filter narrows by time and issue fields only, and no fingerprint was seen after the range
    (the default range ends now) or has no last seen (rows from before it was kept), either of
    which needs the rollups to say when in the range it was last seen."""
    if not _rollups_serve(flt) or flt.issue_ids is not None or flt.fingerprints:
        return False
    outside: list[ColumnElement[bool]] = [_fingerprint.c.last_seen.is_(None)]
    if flt.end is not None:
        outside.append(_fingerprint.c.last_seen > flt.end)
    # One seek each on the recent index (see _project_of).
    probes = [
        select(literal(1)).where(_project_of(_fingerprint, project_id, sqlite), seen).limit(1) for seen in outside
    ]
    return all(session.scalar(probe) is None for probe in probes)


def _project_of(table: FromClause, project_id: int, sqlite: bool) -> ColumnElement[bool]:
    """``project_id = ?``; on SQLite written ``project_id + 0 = ?`` so that its planner (without
    statistics) cannot answer it with an index led by project_id (the fingerprints', or the
    issues' in a join), which would read all of the project's rows and sort them, and uses the
    recent index (led by last_seen) for the other terms instead, stopping after the page.
    PostgreSQL plans that way from its statistics, and would misjudge the expression."""
    column: ColumnElement[int] = table.c.project_id
    return (column + 0 if sqlite else column) == project_id


def _latest_first(project_id: int, flt: IssueFilter, *, sqlite: bool) -> Select[Any]:
    """Issues by the last seen of their latest fingerprint in the range, latest first (ties by
    id), as ``_order_key`` orders them when ``_latest_first_serves``; but each issue is listed by
    its latest fingerprint's row alone, so the database reads the recent (last_seen, project_id)
    index from the top and stops after the page instead of ordering every fingerprint in the range."""
    own, sibling = _fingerprint, _fingerprint.alias("newer_fingerprint")
    newer = select(literal(1)).where(
        sibling.c.issue_id == own.c.issue_id,
        or_(
            sibling.c.last_seen > own.c.last_seen,
            and_(sibling.c.last_seen == own.c.last_seen, sibling.c.fingerprint < own.c.fingerprint),
        ),
    )
    in_range = [_project_of(own, project_id, sqlite), ~newer.exists()]
    if flt.start is not None:
        in_range.append(own.c.last_seen >= flt.start)
    if flt.end is not None:
        in_range.append(own.c.last_seen <= flt.end)
    return (
        select(_issue.c.id)
        .select_from(
            own.join(_issue, _issue.c.id == own.c.issue_id).outerjoin(
                _assignment, _assignment.c.issue_id == _issue.c.id
            )
        )
        .where(*in_range, *_issue_conditions(project_id, flt, sqlite_unindexed=sqlite))
        .order_by(own.c.last_seen.desc(), _issue.c.id)
    )


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
            _issue_first_seen().label("first_seen"),
            _assignment.c.user_id,
            _assignment.c.role_id,
        )
        .select_from(_issue.outerjoin(_assignment, _assignment.c.issue_id == _issue.c.id))
        .where(_issue.c.id.in_(list(issue_ids)))
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
        aggregates.update(_aggregate_rows(session, project_id, part))
        if volumes is not None:
            volumes.update(_volumes(session, project_id, part, bounds))
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
        select(_fingerprint.c.issue_id, _fingerprint.c.fingerprint).where(
            _fingerprint.c.project_id == project_id, _fingerprint.c.issue_id.in_(list(flt.issue_ids or ()))
        )
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


def _aggregate_rows(session: Session, project_id: int, flt: IssueFilter) -> dict[uuid.UUID, Aggregates]:
    """The numbers of ``flt.issue_ids`` over the filter's events.

    Grouped by fingerprint, as ``_order_key`` is, in one read of the covering index; only the
    groups are matched to their issue. Joining every event to its issue before grouping cost a
    lookup per event (200 ms for an issue of 100,000 on PostgreSQL). An issue with one
    fingerprint (nearly all) takes its distinct users and sessions from that group; for one
    with several (merged), distinct pairs are counted again across them.
    """
    owners = select(_fingerprint.c.fingerprint, _fingerprint.c.issue_id).where(_fingerprint.c.project_id == project_id)
    if flt.issue_ids is not None:
        owners = owners.where(_fingerprint.c.issue_id.in_(list(flt.issue_ids)))
    if flt.fingerprints:
        owners = owners.where(_fingerprint.c.fingerprint.in_(list(flt.fingerprints)))
    issue_of = {row.fingerprint: row.issue_id for row in session.execute(owners)}
    if _rollups_serve(flt):
        return _rolled_up_aggregates(session, project_id, flt, issue_of)
    conditions = _grouped_conditions(project_id, flt)
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
    ):
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


def _rolled_up_aggregates(
    session: Session, project_id: int, flt: IssueFilter, issue_of: dict[str, uuid.UUID]
) -> dict[uuid.UUID, Aggregates]:
    """The same numbers from the rollups: events from the hours inside the range and the
    events of its two edge hours, first and last seen by one index seek per fingerprint,
    distinct users and sessions exact unless an issue has many events in the range."""
    events = counts.total_counts(session, project_id, sorted(issue_of), flt.start, flt.end)
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
    events = _event.alias("seen_event")
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
                _fingerprint.c.fingerprint.in_(list(fingerprints[start : start + 500])),
            )
        )
        found.update({row[0]: (row[1], row[2]) for row in rows})
    return found


def _distinct_per_issue(
    session: Session, project_id: int, conditions: list[ColumnElement[bool]], column: Any, issue_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Distinct values of ``column`` per issue, over all of each issue's fingerprints."""
    if not issue_ids:
        return {}
    pairs = _distinct_pairs(conditions, column)
    rows = session.execute(
        select(_fingerprint.c.issue_id, func.count(distinct(pairs.c.who)))
        .select_from(_with_issue(pairs, project_id))
        .where(_fingerprint.c.issue_id.in_(issue_ids))
        .group_by(_fingerprint.c.issue_id)
    )
    return {row[0]: row[1] for row in rows}


def _range_of(flt: IssueFilter) -> DateRange:
    if flt.start is None or flt.end is None:
        raise ValueError("volume buckets need a date range")
    return DateRange(flt.start, flt.end)


def _volumes(
    session: Session, project_id: int, flt: IssueFilter, bounds: Sequence[datetime]
) -> dict[uuid.UUID, list[VolumeBucket]]:
    # One conditional count per bucket: exact on both backends (no epoch arithmetic, whose
    # precision and spelling differ), and cheap because it only runs for one page of issues.
    resolution = len(bounds) - 1
    if _rollups_serve(flt):
        return _rolled_up_volumes(session, project_id, flt, bounds)
    timestamp = _event.c.timestamp
    columns = []
    for i in range(resolution):
        upper = timestamp <= bounds[i + 1] if i == resolution - 1 else timestamp < bounds[i + 1]
        columns.append(func.count(case((and_(timestamp >= bounds[i], upper), 1))).label(f"b{i}"))
    joined, conditions = _events_of_issues(_event, project_id, flt)
    rows = session.execute(
        select(_fingerprint.c.issue_id, *columns)
        .select_from(joined)
        .where(*conditions)
        .group_by(_fingerprint.c.issue_id)
    )
    return {row[0]: [VolumeBucket(bounds[i], row[i + 1]) for i in range(resolution)] for row in rows}


def _rolled_up_volumes(
    session: Session, project_id: int, flt: IssueFilter, bounds: Sequence[datetime]
) -> dict[uuid.UUID, list[VolumeBucket]]:
    owners = session.execute(
        select(_fingerprint.c.fingerprint, _fingerprint.c.issue_id).where(
            _fingerprint.c.project_id == project_id, _fingerprint.c.issue_id.in_(list(flt.issue_ids or ()))
        )
    ).all()
    issue_of = {
        row.fingerprint: row.issue_id for row in owners if not flt.fingerprints or row.fingerprint in flt.fingerprints
    }
    per_issue: dict[uuid.UUID, list[int]] = {}
    for fingerprint, values in counts.bucketed(session, project_id, sorted(issue_of), bounds).items():
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
    events = _event.alias("latest_event")
    tied = _event.alias("latest_tied_event")
    latest_time = (
        select(func.max(events.c.timestamp))
        .where(events.c.fingerprint == _fingerprint.c.fingerprint, *_event_conditions(events, project_id, flt))
        .correlate(_fingerprint)
        .scalar_subquery()
    )
    latest_id = (
        select(func.max(tied.c.id))
        .where(
            tied.c.fingerprint == _fingerprint.c.fingerprint,
            tied.c.timestamp == latest_time,
            # That timestamp is in the range already; the bounds would only hide the equality.
            *_event_conditions(tied, project_id, replace(flt, start=None, end=None)),
        )
        .correlate(_fingerprint)
        .scalar_subquery()
    )
    per_fingerprint = session.execute(
        select(_fingerprint.c.issue_id, latest_id.label("event_id")).where(
            _fingerprint.c.project_id == project_id, _fingerprint.c.issue_id.in_(list(flt.issue_ids or ()))
        )
    ).all()
    issue_of = {row.event_id: row.issue_id for row in per_fingerprint if row.event_id is not None}
    if not issue_of:
        return {}
    columns = [_event.c.id, _event.c.uuid, _event.c.timestamp, _event.c.library]
    if with_properties:
        columns.append(_event.c.properties)
    latest: dict[uuid.UUID, tuple[datetime, int, LatestEvent]] = {}
    for row in session.execute(select(*columns).where(_event.c.id.in_(list(issue_of)))):
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


# --- one issue's events ---------------------------------------------------------------------


def issue_events(
    project_id: int, issue_id: uuid.UUID, flt: IssueFilter | None = None, *, direction: Direction = "DESC"
) -> Select[ExceptionEvent]:
    """The events of an issue (through its fingerprints), newest first unless ``ASC``."""
    flt = flt or IssueFilter()
    conditions = _event_conditions(_event, project_id, flt)
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
    joined, conditions = _events_of_issues(_event, project_id, replace(flt, issue_ids=[issue_id]))
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
        if status in _RESOLVED_STATES:
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
            column.ilike(_like_pattern(storable_text(value)), escape="\\"),
        )
        .order_by(column)
        .limit(VALUES_LIMIT)
    )
    return [row for row in rows if row is not None]


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
    owned = _fingerprints_of(project_id, [issue_id])
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
    events = _event.alias("step_event")
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
