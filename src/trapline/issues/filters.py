"""What an issue list is over: search words, date ranges and the filter, and the SQL
conditions they make on events, fingerprints and issues (shared by ``ordering``, which picks
the page, and ``queries``, which counts what the page shows)."""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    func,
    select,
)

from trapline.db.sets import in_values
from trapline.db.types import INTEGER_RANGE, storable_text, utcnow
from trapline.errors import InvalidInput
from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.rules.service import Assignee

__all__ = [
    "ALL_TIME",
    "MAX_SEARCH_TOKENS",
    "MAX_VOLUME_RESOLUTION",
    "ORDER_KEYS",
    "RESOLVED_STATES",
    "STATUS_FILTERS",
    "DateRange",
    "Direction",
    "IssueFilter",
    "OrderKey",
    "StatusFilter",
    "bucket_bounds",
    "default_direction",
    "distinct_pairs",
    "event_conditions",
    "events_of_issues",
    "fingerprints_of_issues",
    "grouped_conditions",
    "issue_conditions",
    "issue_first_seen",
    "like_pattern",
    "parse_bounds",
    "parse_date",
    "parse_date_range",
    "project_of",
    "rollups_serve",
    "search_tokens",
    "with_assignment",
    "with_issue",
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
RESOLVED_STATES = ("resolved", "archived", "pending_release")

_event = ExceptionEvent.__table__
_fingerprint = IssueFingerprint.__table__
_issue = Issue.__table__
_first_seen_fingerprint = _fingerprint.alias("first_seen_fingerprint")  # built once: ~150 µs each
_assignment = IssueAssignment.__table__


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


def like_pattern(value: str) -> str:
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


def event_conditions(events: FromClause, project_id: int, flt: IssueFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [events.c.project_id == project_id]
    if flt.start is not None:
        conditions.append(events.c.timestamp >= flt.start)
    if flt.end is not None:
        conditions.append(events.c.timestamp <= flt.end)
    # search_text is stored lower-cased; both sides lowered in Python, so PostgreSQL's
    # case-sensitive LIKE and SQLite's ASCII-only case folding agree.
    conditions += [events.c.search_text.like(like_pattern(token), escape="\\") for token in flt.search]
    if flt.libraries:
        conditions.append(in_values(events.c.library, flt.libraries))
    if flt.fingerprints:
        conditions.append(in_values(events.c.fingerprint, flt.fingerprints))
    if flt.url:
        url = events.c.properties["$current_url"].as_string()
        conditions.append(func.lower(url).like(like_pattern(flt.url.lower()), escape="\\"))
    return conditions


def fingerprints_of_issues(project_id: int, issue_ids: Sequence[uuid.UUID]) -> Select[Any]:
    """The fingerprints that belong to these issues now."""
    return select(_fingerprint.c.fingerprint).where(*owned_by(project_id, issue_ids))


def owned_by(project_id: int, issue_ids: Sequence[uuid.UUID]) -> list[ColumnElement[bool]]:
    """Conditions choosing the fingerprint rows of these issues. The project is tested
    unindexed (``project_of``): SQLite otherwise answers the pair from the (project_id,
    fingerprint) index, reading every fingerprint of the project (8 ms at 10,000) to keep a
    page's 50, instead of seeking the issue_id index per issue. On both backends: PostgreSQL
    takes the issue_id index either way."""
    return [in_values(_fingerprint.c.issue_id, issue_ids), project_of(_fingerprint, project_id, unindexed=True)]


def grouped_conditions(project_id: int, flt: IssueFilter) -> list[ColumnElement[bool]]:
    """The filter's conditions on events alone, its issues named by their fingerprints: what
    lets a query walk the (project_id, fingerprint, …) index for just those issues."""
    conditions = event_conditions(_event, project_id, flt)
    if flt.issue_ids is not None:
        conditions.append(_event.c.fingerprint.in_(fingerprints_of_issues(project_id, flt.issue_ids)))
    return conditions


def distinct_pairs(conditions: Sequence[ColumnElement[bool]], column: Any) -> Any:
    """(fingerprint, who) made distinct per fingerprint: the step that keeps distinct users
    and sessions exact across the several fingerprints of a merged issue. A NULL ``who`` is
    kept (count(DISTINCT) skips it): a fingerprint without sessions still lists its issue."""
    return (
        select(_event.c.fingerprint.label("fingerprint"), column.label("who"))
        .where(*conditions)
        .group_by(_event.c.fingerprint, column)
        .subquery("pairs")
    )


def with_issue(grouped: Any, project_id: int) -> Any:
    """Rows keyed by fingerprint joined to the fingerprint table, which names their issue."""
    return grouped.join(
        _fingerprint,
        and_(_fingerprint.c.project_id == project_id, _fingerprint.c.fingerprint == grouped.c.fingerprint),
    )


def events_of_issues(events: FromClause, project_id: int, flt: IssueFilter) -> tuple[Any, list[ColumnElement[bool]]]:
    """The events joined to the fingerprint table (which names their issue), and conditions."""
    joined = events.join(
        _fingerprint,
        and_(_fingerprint.c.project_id == events.c.project_id, _fingerprint.c.fingerprint == events.c.fingerprint),
    )
    conditions = event_conditions(events, project_id, flt)
    if flt.issue_ids is not None:
        conditions.append(in_values(_fingerprint.c.issue_id, flt.issue_ids))
        # The same restriction on the events' side lets the planner walk the fingerprint index
        # for just these issues instead of every event in the range.
        conditions.append(events.c.fingerprint.in_(fingerprints_of_issues(project_id, flt.issue_ids)))
    return joined, conditions


def issue_conditions(project_id: int, flt: IssueFilter, *, sqlite_unindexed: bool = False) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [project_of(_issue, project_id, sqlite_unindexed)]
    if flt.status == "resolved":
        conditions.append(_issue.c.status.in_(RESOLVED_STATES))
    elif flt.status != "all":
        conditions.append(_issue.c.status == flt.status)
    if flt.assignee is not None:
        kind, ident = flt.assignee
        if kind == "user" and ident not in INTEGER_RANGE:
            conditions.append(false())  # no user has such an id
        else:
            column = _assignment.c.user_id if kind == "user" else _assignment.c.role_id
            conditions.append(column == ident)
    if flt.unassigned:
        conditions.append(_assignment.c.id.is_(None))
    return conditions


def with_assignment(source: Any, flt: IssueFilter) -> Any:
    """``source`` (holding the issue table) outer-joined to the issue's assignment when
    ``issue_conditions`` reads it (an assignee filter). Otherwise not joined at all: SQLite
    looks the assignment up for every issue the statement reads, and the page's count reads
    every issue in the range (8,001 of them in ``bench/ui_bench.py``'s database of 1,000,000
    events: 44.5-45.7 ms of CPU a count with the join, 39.1-41.5 without)."""
    if flt.assignee is None and not flt.unassigned:
        return source
    return source.outerjoin(_assignment, _assignment.c.issue_id == _issue.c.id)


def rollups_serve(flt: IssueFilter) -> bool:
    """Whether the filter only narrows by time, issue and fingerprint, which the volume
    rollups answer; a search, a library or a URL narrows events, which only they answer."""
    return not (flt.search or flt.libraries or flt.url)


def project_of(table: FromClause, project_id: int, unindexed: bool) -> ColumnElement[bool]:
    """``project_id = ?``; ``unindexed``, written ``project_id + 0 = ?`` so that SQLite's planner
    (without statistics) cannot answer it with an index led by project_id (the fingerprints',
    or the issues' in a join), which would read all of the project's rows, and uses the index
    meant for the other terms instead (the recent one, led by last_seen, stopping after the
    page; issue_id's). Lists ask for it on SQLite only: PostgreSQL plans that way from its
    statistics, and would misjudge the expression there."""
    column: ColumnElement[int] = table.c.project_id
    return (column + 0 if unindexed else column) == project_id


def issue_first_seen() -> Any:
    # The issue's own first_seen is PostHog's min over its fingerprints (all time), not the
    # first event in the range.
    fingerprints = _first_seen_fingerprint
    return (
        select(func.min(fingerprints.c.first_seen))
        .where(fingerprints.c.issue_id == _issue.c.id)
        .correlate(_issue)
        .scalar_subquery()
    )
