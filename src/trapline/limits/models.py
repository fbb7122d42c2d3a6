"""A project's error tracking settings and the rate limit counters every process shares."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["ErrorTrackingSettings", "RateLimitCounter"]


class ErrorTrackingSettings(Base):
    """PostHog's ``ErrorTrackingSettings`` of a project, plus Trapline's retention.

    No row means no rate limits and the installation's default retention. A limit is
    ``value`` events per ``bucket_size_minutes`` (60 when unset, as cymbal reads it); ``None``
    as value means no limit.
    """

    __tablename__ = "error_tracking_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    project_rate_limit_value: Mapped[int | None] = mapped_column(default=None)
    project_rate_limit_bucket_size_minutes: Mapped[int | None] = mapped_column(default=None)
    per_issue_rate_limit_value: Mapped[int | None] = mapped_column(default=None)
    per_issue_rate_limit_bucket_size_minutes: Mapped[int | None] = mapped_column(default=None)
    # Events older than this many days are deleted; None means the installation's default
    # (TRAPLINE_RETENTION_DAYS).
    retention_days: Mapped[int | None] = mapped_column(default=None)
    # At most this many events are kept per issue (the newest); None means no cap.
    max_events_per_issue: Mapped[int | None] = mapped_column(default=None)


class RateLimitCounter(Base):
    """Events counted against one budget in one bucket: the project's (``scope`` '') or an
    issue's (``scope`` its id in hex).

    Every worker adds its batch here in its write transaction and reads the sum back, so
    workers on many machines share one budget. Rows of past buckets are pruned.
    """

    __tablename__ = "rate_limit_counter"
    __table_args__ = (Index("ix_rate_limit_counter_bucket_end", "bucket_end"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    bucket_end: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(BigInteger, default=0)
