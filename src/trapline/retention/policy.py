"""What retention deletes, decided from settings and the time, without touching the database."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain

from trapline.settings import Settings

__all__ = [
    "COUNTER_GRACE",
    "USAGE_DAYS",
    "Plan",
    "ProjectPlan",
    "ProjectRetention",
    "RetentionOptions",
    "cap_boundary",
    "issues_over_cap",
    "pause_after",
    "plan",
    "retention_options",
]

# A rate limit bucket that ended is never read again; an hour covers clocks that disagree.
COUNTER_GRACE = timedelta(hours=1)
# Daily usage is kept for a year and a month: enough to compare a month with the same
# month a year before.
USAGE_DAYS = 400


@dataclass(frozen=True)
class RetentionOptions:
    """The installation's retention settings (``TRAPLINE_RETENTION_*``)."""

    days: int = 90
    batch_size: int = 2000
    interval_seconds: float = 300.0
    parked_days: int = 30
    deliveries_days: int = 30


def retention_options(settings: Settings) -> RetentionOptions:
    return RetentionOptions(
        days=settings.retention_days,
        batch_size=settings.retention_batch_size,
        interval_seconds=settings.retention_interval_seconds,
        parked_days=settings.retention_parked_days,
        deliveries_days=settings.retention_deliveries_days,
    )


@dataclass(frozen=True)
class ProjectRetention:
    """A project's own retention settings; None means the installation's default (no cap)."""

    project_id: int
    retention_days: int | None = None
    max_events_per_issue: int | None = None


@dataclass(frozen=True)
class ProjectPlan:
    project_id: int
    # Events with an earlier timestamp go, and symbol set placeholders last used earlier.
    events_before: datetime
    max_events_per_issue: int | None


@dataclass(frozen=True)
class Plan:
    projects: tuple[ProjectPlan, ...]
    parked_before: datetime
    deliveries_before: datetime
    counters_before: datetime
    usage_before: date


def plan(projects: Iterable[ProjectRetention], options: RetentionOptions, now: datetime) -> Plan:
    """The cut-offs of one retention pass at ``now``."""
    return Plan(
        projects=tuple(
            ProjectPlan(
                project_id=project.project_id,
                events_before=now - timedelta(days=project.retention_days or options.days),
                max_events_per_issue=project.max_events_per_issue,
            )
            for project in sorted(projects, key=lambda p: p.project_id)
        ),
        parked_before=now - timedelta(days=options.parked_days),
        deliveries_before=now - timedelta(days=options.deliveries_days),
        counters_before=now - COUNTER_GRACE,
        usage_before=(now - timedelta(days=USAGE_DAYS)).date(),
    )


def issues_over_cap(
    totals: Mapping[uuid.UUID, int], cap: int, looked: Mapping[tuple[uuid.UUID, int], int]
) -> list[uuid.UUID]:
    """The issues that may hold more than ``cap`` events.

    ``totals`` are the issues' all-time occurrences, which retention never lowers: an issue
    with at most ``cap`` never needs a look. ``looked`` holds each issue's total when it was
    last capped to ``cap``: if it has not grown since, no event came, and it holds no more than
    it did then.
    """
    return sorted(
        issue_id for issue_id, total in totals.items() if total > cap and looked.get((issue_id, cap)) != total
    )


def cap_boundary(newest: Iterable[Sequence[tuple[datetime, int]]], cap: int) -> tuple[datetime, int] | None:
    """The newest event of an issue that the cap no longer keeps, as (timestamp, id).

    ``newest`` holds, for each fingerprint of the issue, its newest ``cap + 1`` events: the
    issue's newest ``cap`` are among them whatever the fingerprints' shares. The events from
    this one back (by timestamp, then id) go; None when the issue holds ``cap`` or fewer.
    """
    kept_and_one = heapq.nlargest(cap + 1, chain.from_iterable(newest))
    return kept_and_one[cap] if len(kept_and_one) > cap else None


def pause_after(busy_seconds: float, busy_share: float) -> float:
    """How long to wait after a step that took ``busy_seconds``, so that retention's steps take
    at most ``busy_share`` of the time (and of SQLite's write lock, which ingestion needs)."""
    return max(0.0, busy_seconds * (1.0 - busy_share) / busy_share)
