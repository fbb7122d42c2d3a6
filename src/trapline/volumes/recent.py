"""Each fingerprint's events in the week before its last change: what lists ordered by
occurrences over the default range (the last 7 days) read, one row per fingerprint instead of
summing eight day rows each (80,000 rows at 10,000 issues, most of such a page's time).

The invariant, kept in the transaction that changes a fingerprint's day rows (``refresh``):
``issue_fingerprint.recent_events`` is the sum of the fingerprint's day rows from
``recent_day`` minus 7 days to ``recent_day``, both included. A list whose range touches exactly
those eight days reads the column for the fingerprints whose ``recent_day`` is its last day,
and the day rows for the others. After midnight nearly every fingerprint is behind;
``roll`` (run by the workers when the day changes) moves those with recent events to today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Connection, Table, bindparam, case, func, or_, select, update
from sqlalchemy import cast as sql_cast

from trapline.db.engine import Database
from trapline.issues.models import IssueFingerprint
from trapline.volumes.buckets import DAY, day_of
from trapline.volumes.models import FingerprintDay

__all__ = ["WINDOW", "days_sum", "first_day", "forget", "hold", "refresh", "roll", "serves"]

_FINGERPRINT = cast(Table, IssueFingerprint.__table__)
_DAY = cast(Table, FingerprintDay.__table__)
# The days before the last one that the window holds: a range of the last 7 days touches the
# day 7 days ago and today.
WINDOW = 7 * DAY
# Fingerprints per statement of a lock, and per transaction of a roll (SQLite's write lock
# stays short).
_CHUNK = 500


def first_day(last_day: datetime) -> datetime:
    return last_day - WINDOW


def serves(first_bucket: datetime, last_bucket: datetime) -> bool:
    """Whether a list touching these day buckets is the window ending on the last one."""
    return first_bucket == first_day(last_bucket)


def days_sum(first: Any, last: Any) -> Any:
    """The events of an ``issue_fingerprint`` row's fingerprint on the days from ``first`` to
    ``last`` (values or bound parameters), from its day rows: a correlated scalar subquery, one
    seek on the (project, fingerprint, day) index."""
    return (
        # BIGINT, as the kept counts are (PostgreSQL's sum is NUMERIC, slower to sum again).
        select(sql_cast(func.coalesce(func.sum(_DAY.c.events), 0), BigInteger))
        .where(
            _DAY.c.project_id == _FINGERPRINT.c.project_id,
            _DAY.c.fingerprint == _FINGERPRINT.c.fingerprint,
            _DAY.c.day >= first,
            _DAY.c.day <= last,
        )
        .correlate(_FINGERPRINT)
        .scalar_subquery()
    )


def _recount() -> Any:
    """The fingerprint's events over the window ending on ``:p_today``, from its day rows."""
    return days_sum(bindparam("p_first", type_=_DAY.c.day.type), bindparam("p_today", type_=_DAY.c.day.type))


def refresh(connection: Connection, changed: Mapping[tuple[int, str, datetime], int], now: datetime) -> None:
    """Keep the invariant for fingerprints whose day rows just changed by ``changed`` (events
    added or, negative, removed per (project, fingerprint, day)), after those rows were written.

    A fingerprint already at today adds the change inside the window; one behind is recounted
    from its day rows, which already hold the change. On PostgreSQL a concurrent roll or batch
    that updated the row first is seen by the re-check of the row (its day is today then) and
    the change is added to its count; one that waits for this row lock does the same."""
    today = day_of(now)
    first = first_day(today)
    deltas: dict[tuple[int, str], int] = {}
    for (project_id, fingerprint, day), count in changed.items():
        inside = count if first <= day <= today else 0
        deltas[(project_id, fingerprint)] = deltas.get((project_id, fingerprint), 0) + inside
    if not deltas:
        return
    own = _FINGERPRINT
    connection.execute(
        update(own)
        .where(own.c.project_id == bindparam("p_project"), own.c.fingerprint == bindparam("p_fingerprint"))
        .values(
            recent_events=case(
                (own.c.recent_day == bindparam("p_today"), own.c.recent_events + bindparam("p_delta")),
                else_=_recount(),
            ),
            recent_day=bindparam("p_today"),
        ),
        [
            {"p_project": p, "p_fingerprint": f, "p_delta": deltas[(p, f)], "p_today": today, "p_first": first}
            for p, f in sorted(deltas)  # the lock order of every other write to these rows
        ],
    )


def hold(connection: Connection, keys: Iterable[tuple[int, str]]) -> None:
    """Lock these fingerprints' rows (PostgreSQL; SQLite has one writer) before their day rows:
    the pipeline takes them in that order (totals, then days), and a writer taking the day
    rows first (retention) could deadlock with it."""
    by_project: dict[int, list[str]] = {}
    for project_id, fingerprint in sorted(set(keys)):
        by_project.setdefault(project_id, []).append(fingerprint)
    own = _FINGERPRINT
    for project_id, fingerprints in by_project.items():
        for start in range(0, len(fingerprints), _CHUNK):
            connection.execute(
                select(own.c.id)
                .where(own.c.project_id == project_id, own.c.fingerprint.in_(fingerprints[start : start + _CHUNK]))
                .order_by(own.c.fingerprint)
                .with_for_update()
            ).all()


def roll(database: Database, now: datetime) -> int:
    """Move every fingerprint with events in the last eight days to today's window (after
    midnight, all of them are a day behind); returns how many moved. Idempotent, and safe
    beside the pipeline: a row that a batch moved meanwhile is left alone."""
    today = day_of(now)
    first = first_day(today)
    own = _FINGERPRINT
    behind = or_(own.c.recent_day.is_(None), own.c.recent_day != today)
    with database.session(write=False) as session:
        keys = session.execute(
            select(own.c.project_id, own.c.fingerprint)
            .where(own.c.last_seen >= first, behind)
            .order_by(own.c.project_id, own.c.fingerprint)
        ).all()
    statement = (
        update(own)
        .where(own.c.project_id == bindparam("p_project"), own.c.fingerprint == bindparam("p_fingerprint"), behind)
        .values(recent_events=_recount(), recent_day=bindparam("p_today"))
    )
    for start in range(0, len(keys), _CHUNK):
        with database.session(write=True) as session:
            session.connection().execute(
                statement,
                [
                    {"p_project": p, "p_fingerprint": f, "p_today": today, "p_first": first}
                    for p, f in keys[start : start + _CHUNK]
                ],
            )
            session.commit()
    return len(keys)


def forget(connection: Connection, project_id: int | None = None) -> None:
    """Mark every window (of one project, or all) as unknown: for a rebuild of the day rows."""
    statement = update(_FINGERPRINT).values(recent_day=None, recent_events=0)
    if project_id is not None:
        statement = statement.where(_FINGERPRINT.c.project_id == project_id)
    connection.execute(statement)
