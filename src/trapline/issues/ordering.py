"""The order of an issue list: which issues a page shows, and in what order.

Each order reads the cheapest source that answers it exactly: the fingerprints' own last seen
(latest first, the default view), the volume rollups (filters by time and issue fields), the
search summaries (which fingerprints a search can match) and the events only for what those
cannot answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
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

from trapline.db.sets import in_strings, in_values
from trapline.events.models import ExceptionEvent
from trapline.issues.filters import (
    Direction,
    IssueFilter,
    OrderKey,
    default_direction,
    distinct_pairs,
    fingerprints_of_issues,
    grouped_conditions,
    issue_conditions,
    issue_first_seen,
    project_of,
    rollups_serve,
    with_assignment,
    with_issue,
)
from trapline.issues.models import Issue, IssueFingerprint
from trapline.search import summary as text_summary
from trapline.search.models import FingerprintText
from trapline.volumes import counts

__all__ = ["SearchSplit", "issue_order", "search_split"]

_event = ExceptionEvent.__table__
_fingerprint = IssueFingerprint.__table__
_issue = Issue.__table__
_newer_fingerprint = _fingerprint.alias("newer_fingerprint")  # built once: ~150 µs each
_text = FingerprintText.__table__


def _measured_events(conditions: Sequence[ColumnElement[bool]], order_by: OrderKey, name: str) -> Any:
    """(fingerprint, value) over the events: their latest or first timestamp, or their count."""
    measure = {
        "last_seen": func.max(_event.c.timestamp),
        "first_seen": func.min(_event.c.timestamp),
        "occurrences": func.count(),
    }[order_by]
    return (
        select(_event.c.fingerprint.label("fingerprint"), measure.label("value"))
        .where(*conditions)
        .group_by(_event.c.fingerprint)
        .subquery(name)
    )


def _combined(value: Any, order_by: OrderKey) -> Any:
    """An issue's value from its fingerprints' values."""
    if order_by == "occurrences":
        # Summed as floating point (exact to 2^53): PostgreSQL sums BIGINTs as NUMERIC, a
        # fifth of the order's time at 10,000 issues (19 → 15 ms); only the order reads the sum.
        return func.sum(cast(value, Float))
    return func.max(value) if order_by == "last_seen" else func.min(value)


@dataclass(frozen=True)
class _Key:
    """What a list is ordered by: ``value`` over ``source``, a subquery with an ``issue_id``
    per row; ``grouped`` when it has a row per fingerprint, which the list groups per issue."""

    source: Any
    value: Any
    grouped: bool = False


def _order_key(
    project_id: int, flt: IssueFilter, order_by: OrderKey, split: SearchSplit | None = None, *, postgresql: bool = False
) -> _Key:
    """Per issue, just the value the list is ordered by, over the filter's events.

    Events are grouped by fingerprint first: without a search, that reads only the
    (project_id, fingerprint, timestamp, distinct_id, session_id) index, never the rows with
    their properties, and joins each fingerprint to its issue once instead of every event.
    Distinct users and sessions are made distinct per fingerprint first and then per issue,
    which stays exact when a merged issue has several fingerprints.
    """
    if rollups_serve(flt) and order_by in ("last_seen", "first_seen", "occurrences"):
        # Grouped per issue by the list itself, one level: grouped in a subquery first and then
        # joined, PostgreSQL merge-joined 10,000 issues by their primary key (~14 → ~12 ms by
        # occurrences at 10,000 issues).
        per_fingerprint = counts.order_values(
            project_id, flt.start, flt.end, order_by, _scoped_fingerprints(project_id, flt), postgresql=postgresql
        )
        return _Key(per_fingerprint, _combined(per_fingerprint.c.value, order_by), grouped=True)
    if split is not None and order_by in ("last_seen", "first_seen", "occurrences"):
        ordered = _searched_order_key(project_id, flt, order_by, split, postgresql)
        return _Key(ordered, ordered.c.value)
    conditions = grouped_conditions(project_id, flt)
    if order_by in ("users", "sessions"):
        column = _event.c.distinct_id if order_by == "users" else func.nullif(_event.c.session_id, "")
        per_fingerprint = distinct_pairs(conditions, column)
        value: Any = func.count(distinct(per_fingerprint.c.who))
    else:
        per_fingerprint = _measured_events(conditions, order_by, "per_fingerprint")
        value = _combined(per_fingerprint.c.value, order_by)
    ordered = (
        select(_fingerprint.c.issue_id.label("issue_id"), value.label("value"))
        .select_from(with_issue(per_fingerprint, project_id))
        .group_by(_fingerprint.c.issue_id)
        .subquery("ordered")
    )
    return _Key(ordered, ordered.c.value)


def _scoped_fingerprints(project_id: int, flt: IssueFilter) -> Any:
    """The fingerprints the filter restricts to (None: all of the project's)."""
    if flt.issue_ids is not None:
        owned = fingerprints_of_issues(project_id, flt.issue_ids)
        if flt.fingerprints:
            owned = owned.where(in_values(_fingerprint.c.fingerprint, flt.fingerprints))
        return owned
    return list(flt.fingerprints) if flt.fingerprints else None


def _searched_order_key(
    project_id: int, flt: IssueFilter, order_by: OrderKey, split: SearchSplit, postgresql: bool
) -> Any:
    """A search's order key: the rollups' for fingerprints whose every event matches, the
    events' for those where only some may, nothing for those where none can."""
    parts: list[Any] = []
    if split.whole:
        rolled = counts.order_values(
            project_id, flt.start, flt.end, order_by, sorted(split.whole), postgresql=postgresql
        )
        parts.append(select(rolled.c.issue_id, rolled.c.value))
    if split.partial:
        conditions = [*grouped_conditions(project_id, flt), in_strings(_event.c.fingerprint, sorted(split.partial))]
        scanned = _measured_events(conditions, order_by, "scanned")
        parts.append(select(_fingerprint.c.issue_id, scanned.c.value).select_from(with_issue(scanned, project_id)))
    if not parts:  # no fingerprint can match
        # Typed, or PostgreSQL cannot pick the sum() or max() of an untyped NULL.
        kind = Integer() if order_by == "occurrences" else _event.c.timestamp.type
        parts.append(select(_fingerprint.c.issue_id, cast(null(), kind).label("value")).where(literal(False)))
    both = (parts[0] if len(parts) == 1 else _union_all(*parts)).subquery("searched")
    combined = _combined(both.c.value, order_by)
    return (
        select(both.c.issue_id.label("issue_id"), combined.label("value")).group_by(both.c.issue_id).subquery("ordered")
    )


# union_all's generic signature makes mypy 2.4 crash when inferred from a list of selects.
_union_all: Any = union_all
_CANDIDATES = (
    "SELECT fingerprint, whole FROM (SELECT fingerprint, trigrams, CASE WHEN {every} THEN 1 ELSE 0 END AS whole"
    " FROM fingerprint_text WHERE project_id = {mark}) AS summary WHERE {could_match}"
)


def _candidate_summaries(session: Session, project_id: int, search: Sequence[str]) -> list[tuple[str, Any]]:
    """(fingerprint, whether every event matches) of every fingerprint whose events could
    match, both tested by the database and read through the driver: ten thousand
    half-kilobyte filters cost more to carry into Python and test there than the whole query,
    and a search matching thousands of fingerprints cost more to test their common parts in
    Python (and to carry them) than in the query."""
    connection = session.connection()
    dialect = connection.dialect.name
    mark = "%s" if dialect == "postgresql" else "?"
    every, tokens = text_summary.sql_all_match(search, dialect, lambda _: mark)
    statement = _CANDIDATES.format(
        every=every, mark=mark, could_match=text_summary.sql_could_match(search, dialect, "whole = 1")
    )
    driver: Any = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(statement, (*tokens, project_id))
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()


def _named_all_match(search: Sequence[str], dialect: str) -> tuple[str, dict[str, str]]:
    """``sql_all_match`` on the ``common`` column with named placeholders, and their values."""
    matches, tokens = text_summary.sql_all_match(search, dialect, lambda i: f":token_{i}")
    return matches, {f"token_{i}": token for i, token in enumerate(tokens)}


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
    if flt.issue_ids is None and not flt.fingerprints:  # every fingerprint of the project
        candidates: Any = _candidate_summaries(session, project_id, flt.search)
    else:
        dialect = session.get_bind().dialect.name
        matches, named = _named_all_match(flt.search, dialect)
        could_match = text_summary.sql_could_match(flt.search, dialect, matches, "fingerprint_text.trigrams")
        # (Without the common parts' test, for tokens it cannot judge, nothing is bound there.)
        could = text(could_match).bindparams(**named) if matches in could_match else text(could_match)
        query = select(_text.c.fingerprint, case((text(matches).bindparams(**named), 1), else_=0)).where(
            _text.c.project_id == project_id, could
        )
        if flt.issue_ids is not None:
            query = query.where(_text.c.fingerprint.in_(fingerprints_of_issues(project_id, flt.issue_ids)))
        if flt.fingerprints:
            query = query.where(in_values(_text.c.fingerprint, flt.fingerprints))
        candidates = session.execute(query)
    whole: set[str] = set()
    partial: set[str] = set()
    for fingerprint, every_event in candidates:
        (whole if every_event else partial).add(fingerprint)
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
    split = search_split(session, project_id, flt) if session is not None else None
    dialect = session.get_bind().dialect.name if session is not None else None
    if session is not None and order_by == "last_seen" and descending and _whole_or_none(flt, split):
        sqlite = dialect == "sqlite"
        unsearched = flt if split is None else replace(flt, search=())
        if _latest_first_serves(session, project_id, unsearched, sqlite=sqlite):
            return _latest_first(project_id, flt, sqlite=sqlite)
    ordered = _order_key(project_id, flt, order_by, split, postgresql=dialect == "postgresql")
    # Ordered by the first_seen the issue shows (all time), falling back to the range's.
    key = func.coalesce(issue_first_seen(), ordered.value) if order_by == "first_seen" else ordered.value
    sort = key.desc() if descending else key.asc()
    query = (
        select(_issue.c.id)
        .select_from(
            # (At most one assignment per issue: grouping over the join counts nothing twice.)
            with_assignment(_issue.join(ordered.source, ordered.source.c.issue_id == _issue.c.id), flt)
        )
        .where(*issue_conditions(project_id, flt))
    )
    if ordered.grouped:
        query = query.group_by(_issue.c.id)
    return query.order_by(sort, _issue.c.id)


def _latest_first_serves(session: Session, project_id: int, flt: IssueFilter, *, sqlite: bool) -> bool:
    """Whether the latest-first order can be read from the fingerprints' last seen alone: the
    filter narrows by time and issue fields only, and no fingerprint was seen after the range
    (the default range ends now) or has no last seen (rows from before it was kept), either of
    which needs the rollups to say when in the range it was last seen."""
    if not rollups_serve(flt) or flt.issue_ids is not None or flt.fingerprints:
        return False
    outside: list[ColumnElement[bool]] = [_fingerprint.c.last_seen.is_(None)]
    if flt.end is not None:
        outside.append(_fingerprint.c.last_seen > flt.end)
    # One seek each on the recent index (see project_of).
    probes = [select(literal(1)).where(project_of(_fingerprint, project_id, sqlite), seen).limit(1) for seen in outside]
    return all(session.scalar(probe) is None for probe in probes)


def _whole_or_none(flt: IssueFilter, split: SearchSplit | None) -> bool:
    """Whether the filter has no search, or one every candidate fingerprint of which matches in
    all its events (a type, a name: the usual search), which then narrows the fingerprints and
    nothing else: to those whose common parts hold every token (``sql_all_match``)."""
    if split is None:
        return not flt.search
    return not split.partial and not any(text_summary.SEPARATOR in token for token in flt.search)


def _latest_first(project_id: int, flt: IssueFilter, *, sqlite: bool) -> Select[Any]:
    """Issues by the last seen of their latest fingerprint in the range, latest first (ties by
    id), as ``_order_key`` orders them when ``_latest_first_serves``; but each issue is listed by
    its latest fingerprint's row alone, so the database reads the recent (last_seen, project_id)
    index from the top and stops after the page instead of ordering every fingerprint in the range.
    With a search (``_whole_or_none``), only the fingerprints whose common parts hold it count,
    each tested as it is read: a set of the matching ones, thousands, was a filter PostgreSQL
    parsed again for every row it tested (55 ms at 10,000 issues)."""
    own, sibling = _fingerprint, _newer_fingerprint
    newer = select(literal(1)).where(
        sibling.c.issue_id == own.c.issue_id,
        or_(
            sibling.c.last_seen > own.c.last_seen,
            and_(sibling.c.last_seen == own.c.last_seen, sibling.c.fingerprint < own.c.fingerprint),
        ),
    )
    in_range = [project_of(own, project_id, sqlite)]
    if flt.search:
        matches, named = _named_all_match(flt.search, "sqlite" if sqlite else "postgresql")
        every = text(matches).bindparams(**named)

        def matching(row: Any) -> Any:
            return (
                select(literal(1))
                .where(_text.c.project_id == row.c.project_id, _text.c.fingerprint == row.c.fingerprint, every)
                .exists()
            )

        newer = newer.where(matching(sibling))
        in_range.append(matching(own))
    in_range.append(~newer.exists())
    if flt.start is not None:
        in_range.append(own.c.last_seen >= flt.start)
    if flt.end is not None:
        in_range.append(own.c.last_seen <= flt.end)
    return (
        select(_issue.c.id)
        .select_from(with_assignment(own.join(_issue, _issue.c.id == own.c.issue_id), flt))
        .where(*in_range, *issue_conditions(project_id, flt, sqlite_unindexed=sqlite))
        .order_by(own.c.last_seen.desc(), _issue.c.id)
    )
