"""Rate limits: events over their project's or their issue's budget for the current bucket
are not stored (``rate_limited_project`` / ``rate_limited_issue``).

The budgets are rows of ``rate_limit_counter`` that the batch adds its events to, in its
own write transaction, reading the new sum back (an upsert with RETURNING): on PostgreSQL a
second worker's upsert of the same row waits for the first's commit, on SQLite the write
lock serialises batches, so workers and machines share one budget exactly. A batch that
fails rolls its counts back with everything else.

The project's budget is taken before linking, so events over it create, reopen and count
nothing; an issue's after linking, when the issue is known (a merged issue has one budget for
all its fingerprints). Events the issue limit drops have used the project's budget: the
project limit bounds what is ingested, the issue limit what one issue may store of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from trapline.db.upsert import dialect_insert
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.limits.rates import PROJECT_SCOPE, Bucket, Limit, ProjectLimits, allowance, issue_scope
from trapline.pipeline.batch import Item

__all__ = ["RATE_LIMITED_ISSUE", "RATE_LIMITED_PROJECT", "limit_issues", "limit_projects", "load_limits"]

RATE_LIMITED_PROJECT = "rate_limited_project"
RATE_LIMITED_ISSUE = "rate_limited_issue"
_COUNTERS = cast(Table, RateLimitCounter.__table__)


def load_limits(session: Session, projects: Iterable[int]) -> dict[int, ProjectLimits]:
    """The rate limits of the batch's projects that have any."""
    rows = session.scalars(select(ErrorTrackingSettings).where(ErrorTrackingSettings.project_id.in_(list(projects))))
    limits = {row.project_id: ProjectLimits.of(row) for row in rows}
    return {project: limit for project, limit in limits.items() if limit.any}


def limit_projects(session: Session, items: list[Item], limits: dict[int, ProjectLimits], now: datetime) -> None:
    """Reject the live events over their project's budget (the later ones of the batch)."""
    budgets: dict[tuple[int, str], tuple[Limit, list[Item]]] = {}
    for item in items:
        limit = limits.get(item.project_id)
        if item.live and limit is not None and limit.project is not None:
            budgets.setdefault((item.project_id, PROJECT_SCOPE), (limit.project, []))[1].append(item)
    _spend(session, budgets, now, RATE_LIMITED_PROJECT)


def limit_issues(session: Session, items: list[Item], limits: dict[int, ProjectLimits], now: datetime) -> None:
    """Reject the live events over their issue's budget (after linking set ``issue_id``)."""
    budgets: dict[tuple[int, str], tuple[Limit, list[Item]]] = {}
    for item in items:
        limit = limits.get(item.project_id)
        if item.live and item.issue_id is not None and limit is not None and limit.per_issue is not None:
            key = (item.project_id, issue_scope(item.issue_id))
            budgets.setdefault(key, (limit.per_issue, []))[1].append(item)
    _spend(session, budgets, now, RATE_LIMITED_ISSUE)


def _spend(
    session: Session, budgets: dict[tuple[int, str], tuple[Limit, list[Item]]], now: datetime, reason: str
) -> None:
    if not budgets:
        return
    # One statement for every budget, in one order, so two workers lock rows alike.
    keys = sorted(budgets)
    buckets: dict[tuple[int, str], Bucket] = {key: budgets[key][0].bucket(now) for key in keys}
    insert = dialect_insert(session, _COUNTERS)
    rows = session.execute(
        insert.values(
            [
                {
                    "project_id": project_id,
                    "scope": scope,
                    "bucket_start": buckets[(project_id, scope)].start,
                    "bucket_end": buckets[(project_id, scope)].end,
                    "count": len(budgets[(project_id, scope)][1]),
                }
                for project_id, scope in keys
            ]
        )
        .on_conflict_do_update(
            index_elements=["project_id", "scope", "bucket_start"],
            set_={"count": _COUNTERS.c.count + insert.excluded.count},
        )
        .returning(_COUNTERS.c.project_id, _COUNTERS.c.scope, _COUNTERS.c.count)
    ).all()
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for project_id, scope, count in rows:
        totals[(project_id, scope)] = count
    for key in keys:
        limit, group = budgets[key]
        before = totals[key] - len(group)
        allowed = allowance(limit, before)
        for item in group[allowed:]:
            item.reject(reason, f"over {limit.value} events per {limit.minutes} minutes")
