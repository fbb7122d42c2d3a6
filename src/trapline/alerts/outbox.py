"""The alerts outbox: notifications written with the change they report, sent after commit.

* ``enqueue`` runs in the caller's transaction (the pipeline's batch): the notification exists
  if and only if the change committed. A throttled alert's surplus notifications are kept as
  ``throttled`` rows folded into one pending ``summary`` row, sent when the window ends.
* ``claim`` leases due rows to one sender (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write
  lock on SQLite); a sender that dies leaves its lease to run out, and the row is sent again
  with the same ``Idempotency-Key`` (its id).
* ``record`` writes an attempt's outcome, but only while this sender still holds the lease:
  retries are scheduled with growing pauses (or the receiver's ``Retry-After``) until
  ``alerts_retry_hours`` after the notification was made; then it is recorded as failed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from trapline.alerts.models import Alert, AlertDelivery
from trapline.db.engine import Database
from trapline.db.leases import release_dead_holders
from trapline.ids import uuid7

__all__ = [
    "TEST_LEASE",
    "Due",
    "NewNotification",
    "Outcome",
    "Throttle",
    "claim",
    "enqueue",
    "next_delay",
    "record",
    "release_dead",
]

# Pauses between attempts: quick at first (a receiver restarting), then ever longer, for hours.
_BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
)
# A receiver asking for more than this in Retry-After is waited on only this long.
_MAX_RETRY_AFTER = timedelta(hours=6)
_ERROR_LIMIT = 2000
# A test notification sent from a request: if that process dies mid-send, a worker takes the
# row over after this long.
TEST_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class NewNotification:
    """A notification to write: which alert, about which issue, and its payload."""

    project_id: int
    alert_id: uuid.UUID
    issue_id: uuid.UUID | None
    kind: str
    event_uuid: uuid.UUID
    payload: dict[str, Any]


@dataclass(frozen=True)
class Throttle:
    max_messages: int
    minutes: int


def enqueue(
    session: Session,
    notifications: Sequence[NewNotification],
    throttles: dict[uuid.UUID, Throttle],
    now: datetime,
) -> list[uuid.UUID]:
    """Write the notifications (in the caller's transaction); returns the ids due now."""
    due: list[uuid.UUID] = []
    by_alert: dict[uuid.UUID, list[NewNotification]] = defaultdict(list)
    for note in notifications:
        by_alert[note.alert_id].append(note)
    for alert_id in sorted(by_alert):
        notes = by_alert[alert_id]
        throttle = throttles.get(alert_id)
        allowed = len(notes) if throttle is None else _room(session, alert_id, throttle, now)
        for index, note in enumerate(notes):
            delivery = AlertDelivery(
                id=uuid7(),
                project_id=note.project_id,
                alert_id=note.alert_id,
                issue_id=note.issue_id,
                kind=note.kind,
                event_uuid=note.event_uuid,
                payload=note.payload,
                created_at=now,
                attempts=0,
                summary_count=0,
            )
            if index < allowed:
                delivery.status, delivery.next_attempt_at = "pending", now
                due.append(delivery.id)
            else:
                assert throttle is not None
                delivery.status = "throttled"
                delivery.summary_id = _summary(session, note, throttle, now)
            session.add(delivery)
    session.flush()
    return due


def _room(session: Session, alert_id: uuid.UUID, throttle: Throttle, now: datetime) -> int:
    """How many more messages the alert may send in its current window."""
    if session.get_bind().dialect.name == "postgresql":
        # Two workers throttling one alert at once would each see room for the last message.
        session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update())
    since = now - timedelta(minutes=throttle.minutes)
    sent = session.scalar(
        select(func.count())
        .select_from(AlertDelivery)
        .where(
            AlertDelivery.alert_id == alert_id,
            AlertDelivery.created_at > since,
            AlertDelivery.kind.not_in(("test", "summary")),
            AlertDelivery.status != "throttled",
        )
    )
    return max(0, throttle.max_messages - int(sent or 0))


def _summary(session: Session, note: NewNotification, throttle: Throttle, now: datetime) -> uuid.UUID:
    """The pending summary that stands for the alert's held-back notifications (made if none)."""
    summary = session.scalars(
        select(AlertDelivery)
        .where(
            AlertDelivery.alert_id == note.alert_id,
            AlertDelivery.kind == "summary",
            AlertDelivery.status == "pending",
            AlertDelivery.attempts == 0,
        )
        .limit(1)
    ).first()
    if summary is None:
        summary = AlertDelivery(
            id=uuid7(),
            project_id=note.project_id,
            alert_id=note.alert_id,
            kind="summary",
            event_uuid=uuid7(),
            # Filled in when it is sent, from the rows it stands for.
            payload={"minutes": throttle.minutes},
            status="pending",
            created_at=now,
            next_attempt_at=now + timedelta(minutes=throttle.minutes),
            attempts=0,
            summary_count=0,
        )
        session.add(summary)
    summary.summary_count += 1
    return summary.id


# --- sending ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    id: uuid.UUID
    project_id: int
    alert_id: uuid.UUID
    kind: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    status: Literal["delivered", "retry", "failed"]
    response_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from the receiver's Retry-After


def next_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """The pause after ``attempts`` failed attempts (1 → the first pause)."""
    if retry_after is not None and retry_after >= 0:
        return min(timedelta(seconds=retry_after), _MAX_RETRY_AFTER)
    return _BACKOFF[min(max(attempts, 1), len(_BACKOFF)) - 1]


def claim(db: Database, sender_id: str, limit: int, lease: timedelta, now: datetime) -> list[Due]:
    """Lease up to ``limit`` notifications that are due to ``sender_id``."""
    due = and_(
        AlertDelivery.status == "pending",
        AlertDelivery.next_attempt_at <= now,
        or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
    )
    with db.session(write=False) as session:
        # Look before taking the write lock: idle senders poll, and SQLite has one writer.
        if session.scalar(select(AlertDelivery.id).where(due).limit(1)) is None:
            return []
    with db.session(write=True) as session:
        pick = select(AlertDelivery.id).where(due).order_by(AlertDelivery.next_attempt_at).limit(limit)
        if not db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        ids = list(session.scalars(pick))
        if not ids:
            return []
        rows = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id.in_(ids))
            .values(claimed_by=sender_id, claimed_until=now + lease)
            .returning(
                AlertDelivery.id,
                AlertDelivery.project_id,
                AlertDelivery.alert_id,
                AlertDelivery.kind,
                AlertDelivery.attempts,
                AlertDelivery.created_at,
            )
        ).all()
        session.commit()
    return [Due(*row) for row in rows]


def record(
    session: Session, sender_id: str, delivery_id: uuid.UUID, outcome: Outcome, now: datetime, give_up_at: datetime
) -> str | None:
    """Write an attempt's outcome if ``sender_id`` still holds the lease; returns the new status."""
    values: dict[str, Any] = {
        "attempts": AlertDelivery.attempts + 1,
        "last_attempt_at": now,
        "response_code": outcome.response_code,
        "error": outcome.error[:_ERROR_LIMIT] if outcome.error else None,
        "claimed_by": None,
        "claimed_until": None,
    }
    current = session.execute(
        select(AlertDelivery.attempts).where(
            AlertDelivery.id == delivery_id, AlertDelivery.claimed_by == sender_id, AlertDelivery.status == "pending"
        )
    ).scalar_one_or_none()
    if current is None:
        return None
    if outcome.status == "delivered":
        status = "delivered"
        values.update(status=status, delivered_at=now, next_attempt_at=None)
    elif outcome.status == "retry" and now + next_delay(current + 1, outcome.retry_after) <= give_up_at:
        status = "pending"
        values["next_attempt_at"] = now + next_delay(current + 1, outcome.retry_after)
    else:
        status = "failed"
        values.update(status=status, next_attempt_at=None)
        if outcome.status == "retry":
            values["error"] = f"gave up retrying: {outcome.error or 'no answer'}"[:_ERROR_LIMIT]
    session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id == delivery_id, AlertDelivery.claimed_by == sender_id)
        .values(**values)
    )
    return status


def release_dead(db: Database, is_dead: Callable[[str], bool]) -> int:
    """Free the leases of senders that died on this machine, rather than wait them out."""
    return release_dead_holders(db, AlertDelivery, is_dead, AlertDelivery.status == "pending")
