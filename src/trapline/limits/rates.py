"""Rate limits as values: a project's limits, their buckets, and what a bucket still allows.

PostHog's settings say "``value`` events per ``bucket_size_minutes``" (60 minutes when the size
is unset, as cymbal reads it). Trapline counts fixed buckets aligned to the Unix epoch, so
every process computes the same bucket for the same moment without talking to the others,
and a bucket's count is one row of ``rate_limit_counter``. (cymbal refills a token bucket
continuously instead; over a bucket's length both let ``value`` events through.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "DEFAULT_BUCKET_MINUTES",
    "PROJECT_SCOPE",
    "Bucket",
    "Limit",
    "LimitSettings",
    "ProjectLimits",
    "allowance",
    "issue_scope",
]

DEFAULT_BUCKET_MINUTES = 60
# The counter scope of a project's own budget; an issue's is its id in hex.
PROJECT_SCOPE = ""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime

    def seconds_left(self, now: datetime) -> float:
        return max(0.0, (self.end - now).total_seconds())


@dataclass(frozen=True)
class Limit:
    """At most ``value`` events per bucket of ``minutes``."""

    value: int
    minutes: int = DEFAULT_BUCKET_MINUTES

    @classmethod
    def of(cls, value: int | None, minutes: int | None) -> Limit | None:
        """The limit a settings row describes; None when it has no (positive) value."""
        if value is None or value <= 0:
            return None
        return cls(value, minutes if minutes is not None and minutes > 0 else DEFAULT_BUCKET_MINUTES)

    def bucket(self, now: datetime) -> Bucket:
        length = timedelta(minutes=self.minutes)
        start = _EPOCH + ((now - _EPOCH) // length) * length
        return Bucket(start, start + length)


class LimitSettings(Protocol):
    """PostHog's four rate limit fields (a settings row has them)."""

    project_rate_limit_value: int | None
    project_rate_limit_bucket_size_minutes: int | None
    per_issue_rate_limit_value: int | None
    per_issue_rate_limit_bucket_size_minutes: int | None


@dataclass(frozen=True)
class ProjectLimits:
    project: Limit | None = None
    per_issue: Limit | None = None

    @classmethod
    def of(cls, settings: LimitSettings) -> ProjectLimits:
        return cls(
            project=Limit.of(settings.project_rate_limit_value, settings.project_rate_limit_bucket_size_minutes),
            per_issue=Limit.of(settings.per_issue_rate_limit_value, settings.per_issue_rate_limit_bucket_size_minutes),
        )

    @property
    def any(self) -> bool:
        return self.project is not None or self.per_issue is not None


def allowance(limit: Limit, counted_before: int) -> int:
    """How many more events the bucket takes, given how many it had counted."""
    return max(0, limit.value - counted_before)


def issue_scope(issue_id: object) -> str:
    hex_ = getattr(issue_id, "hex", None)
    return hex_ if isinstance(hex_, str) else str(issue_id)
