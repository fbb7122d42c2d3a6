"""Alerts, the notifications they send (the outbox and its log), and the spike detector's state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trapline.db.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey
from trapline.issues.models import Issue

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertIssueState",
    "FingerprintMinute",
    "FingerprintUser",
    "IssueBucket",
    "IssueSpikeCooldown",
    "SpikeDetectionConfig",
    "SpikeEvent",
]


class Alert(UUIDPrimaryKey, Timestamps, Base):
    """Who hears about what: a trigger, the filters an issue's event must match, one destination.

    ``destination`` holds the destination's settings as given, secrets included (webhook URLs
    are secrets: whoever has one can post to the channel). They are only ever shown masked.
    """

    __tablename__ = "alert"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(400))
    enabled: Mapped[bool] = mapped_column(default=True)
    # issue_created, issue_reopened, issue_spiking, issue_frequency, issue_users
    trigger: Mapped[str] = mapped_column(String(32))
    # Frequency and users triggers: more than `threshold` in `window_minutes`; notify again
    # while it stays above only every `interval_minutes` (None: once, until it falls back).
    threshold: Mapped[int | None] = mapped_column(default=None)
    window_minutes: Mapped[int | None] = mapped_column(default=None)
    interval_minutes: Mapped[int | None] = mapped_column(default=None)
    filters: Mapped[dict[str, Any]] = mapped_column()
    destination_type: Mapped[str] = mapped_column(String(16))
    destination: Mapped[dict[str, Any]] = mapped_column()
    # At most `throttle_max` messages per `throttle_minutes`; the rest become one summary.
    throttle_max: Mapped[int | None] = mapped_column(default=None)
    throttle_minutes: Mapped[int | None] = mapped_column(default=None)


class AlertDelivery(UUIDPrimaryKey, CreatedAt, Base):
    """One notification of one alert: the outbox row, then its delivery log entry.

    Written in the transaction that made the change it reports (the pipeline's batch), so a
    committed change always has its notification and a rolled-back one never does. Workers
    lease due rows (``claimed_by``/``claimed_until``) and send them; the row's ``id`` goes out as
    the ``Idempotency-Key``, the same on every attempt, so a send repeated after a crash is
    recognisable as the same message.
    """

    __tablename__ = "alert_delivery"
    __table_args__ = (
        Index("ix_alert_delivery_due", "status", "next_attempt_at"),
        Index("ix_alert_delivery_alert_created", "alert_id", "created_at"),
        Index("ix_alert_delivery_issue_created", "issue_id", "created_at"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    # No foreign key: the log outlives merges and deletions of the issue it was about.
    issue_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The trigger that fired, or "test" (sent from the API or UI) or "summary" (throttled ones).
    kind: Mapped[str] = mapped_column(String(32))
    # The internal event's uuid, shared by every alert that reports the same change.
    event_uuid: Mapped[uuid.UUID] = mapped_column()
    # What is sent, built when the change happened: PostHog's webhook body plus Trapline's
    # issue facts; each destination renders its message from it.
    payload: Mapped[dict[str, Any]] = mapped_column()
    # pending → delivered | failed; throttled (folded into a summary row, never sent itself)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    response_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # A summary: how many throttled notifications it stands for. A throttled row: its summary.
    summary_count: Mapped[int] = mapped_column(default=0)
    summary_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)


class AlertIssueState(Base):
    """Where a frequency or users alert stands for one issue: above its threshold or not, and
    when it last notified (so it fires once per crossing, or once per interval)."""

    __tablename__ = "alert_issue_state"

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True)
    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    over: Mapped[bool] = mapped_column(default=False)
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)


class FingerprintMinute(Base):
    """Stored events of a fingerprint per minute of event time: what frequency alerts sum over
    their window (a few rows per issue, where counting the events would read every one).
    Kept only while the project has a frequency alert, for a week (the longest window).

    Fingerprints (and users, below) are keyed by a 64-bit hash of their text: these rows are
    written for every stored event, and narrow keys halve what that costs (a fingerprint is
    128 characters). Two fingerprints of one project sharing a hash is a 1 in 10^13 chance
    at a million fingerprints, and would only merge two issues' counts.
    """

    __tablename__ = "fingerprint_minute"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    fingerprint_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True, index=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class FingerprintUser(Base):
    """Which users had an event of a fingerprint in which minute (event time): users alerts
    count the distinct users of their window. Kept only while the project has a users alert,
    and only as long as its longest users window.

    Keyed fingerprint, then minute: a batch's rows land at the end of each fingerprint's range,
    a few pages per issue, where keying by user would scatter them over the whole table.
    """

    __tablename__ = "fingerprint_user"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    fingerprint_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    user_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class SpikeDetectionConfig(Base):
    """A project's spike detector (PostHog's ``spike_detection_config``); no row means defaults."""

    __tablename__ = "spike_detection_config"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    multiplier: Mapped[int] = mapped_column(default=10)
    threshold: Mapped[int] = mapped_column(default=500)
    snooze_duration_minutes: Mapped[int] = mapped_column(default=10)


class IssueBucket(Base):
    """Stored events of an issue per 5-minute bucket of processing time, kept for an hour.

    A project's bucket totals and its number of distinct issues are sums and counts over these.
    """

    __tablename__ = "issue_bucket"
    __table_args__ = (Index("ix_issue_bucket_project_start", "project_id", "bucket_start"),)

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class IssueSpikeCooldown(Base):
    """Until when an issue that spiked is not reported spiking again (cymbal's snooze lock)."""

    __tablename__ = "issue_spike_cooldown"

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    until: Mapped[datetime] = mapped_column(index=True)


class SpikeEvent(UUIDPrimaryKey, Base):
    """A spike the detector reported (PostHog's ``spike_events``)."""

    __tablename__ = "spike_event"
    __table_args__ = (
        Index("ix_spike_event_project_detected", "project_id", "detected_at"),
        Index("ix_spike_event_issue_detected", "issue_id", "detected_at"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    issue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"))
    detected_at: Mapped[datetime] = mapped_column()
    computed_baseline: Mapped[float] = mapped_column(Float)
    current_bucket_value: Mapped[int] = mapped_column(Integer)

    # Read with the event: every listing shows the issue's name and description.
    issue: Mapped[Issue] = relationship(lazy="joined")
