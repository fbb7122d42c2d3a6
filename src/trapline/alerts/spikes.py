"""Cymbal's spike detector, as pure functions over bucket counts.

Stored events are counted per issue in 5-minute buckets of *processing* time (the bucket
start is the time rounded down to a multiple of five minutes, UTC), and the detector looks at
the current bucket and the eleven before it. After a batch, for each issue it stored events
for:

* ``current`` is the issue's count in the current bucket;
* the issue's baseline is the mean of its non-empty earlier buckets, if it has any;
* otherwise the project's baseline: the mean, over the twelve buckets in which the project
  had events, of (events in the bucket / distinct issues in it), 0 if there is none;
* it spikes when ``current`` is at least the project's ``threshold`` and more than
  ``baseline * multiplier``.

A spike is reported unless the issue spiked within the snooze (cooldown) period. The defaults
are PostHog's: multiplier 10, threshold 500, snooze 10 minutes. With threshold 1 this is the
older detector that had no minimum (any event of an issue with no history anywhere spikes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

__all__ = [
    "BUCKETS",
    "BUCKET_SIZE",
    "DEFAULT_SPIKE_SETTINGS",
    "Spike",
    "SpikeSettings",
    "bucket_start",
    "bucket_starts",
    "find_spikes",
    "is_spiking",
    "issue_baseline",
    "project_baseline",
]

BUCKET_SIZE = timedelta(minutes=5)
BUCKETS = 12  # the current bucket and the eleven before it: one hour


@dataclass(frozen=True)
class SpikeSettings:
    """A project's detector (PostHog's spike detection config, plus whether it runs at all)."""

    enabled: bool = True
    multiplier: int = 10
    threshold: int = 500
    snooze_duration_minutes: int = 10

    @property
    def snooze(self) -> timedelta:
        return timedelta(minutes=self.snooze_duration_minutes)


DEFAULT_SPIKE_SETTINGS = SpikeSettings()


@dataclass(frozen=True)
class Spike:
    issue_id: UUID
    computed_baseline: float
    current_bucket_value: int


def bucket_start(at: datetime) -> datetime:
    """The start of the 5-minute bucket ``at`` falls in (UTC, whole seconds)."""
    seconds = int(at.timestamp())
    step = int(BUCKET_SIZE.total_seconds())
    return datetime.fromtimestamp(seconds - seconds % step, UTC)


def bucket_starts(now: datetime) -> list[datetime]:
    """The detector's buckets, the current one first."""
    current = bucket_start(now)
    return [current - BUCKET_SIZE * n for n in range(BUCKETS)]


def project_baseline(totals: Sequence[int | None], distinct_issues: Sequence[int]) -> float:
    """Mean events per issue over the buckets where the project had events (0 if none)."""
    rates = [
        total / issues
        for total, issues in zip(totals, distinct_issues, strict=True)
        if total is not None and issues > 0
    ]
    return sum(rates) / len(rates) if rates else 0.0


def issue_baseline(history: Sequence[int | None], fallback: float) -> float:
    """Mean of the issue's non-empty earlier buckets, or ``fallback`` (the project's) if none."""
    seen = [count for count in history if count is not None]
    return sum(seen) / len(seen) if seen else fallback


def is_spiking(current: int, baseline: float, settings: SpikeSettings) -> bool:
    if current < settings.threshold:
        return False
    return current > baseline * settings.multiplier


def find_spikes(
    issues: Mapping[UUID, Sequence[int | None]],
    project_totals: Sequence[int | None],
    project_issues: Sequence[int],
    settings: SpikeSettings,
) -> list[Spike]:
    """The spiking issues of one project.

    ``issues`` maps each issue to its counts per bucket, current first (None: no events);
    ``project_totals`` and ``project_issues`` are the project's events and distinct issues per
    bucket, in the same order. Cooldowns are the caller's business.
    """
    fallback = project_baseline(project_totals, project_issues)
    spikes: list[Spike] = []
    for issue_id, counts in issues.items():
        current = counts[0] or 0
        baseline = issue_baseline(counts[1:], fallback)
        if is_spiking(current, baseline, settings):
            spikes.append(Spike(issue_id, baseline, current))
    return spikes
