"""The sender that empties the alerts outbox, in each worker process.

A ``Dispatcher`` runs in a thread beside the worker threads (sending is waiting on networks,
which threads share well). It wakes when its own process's workers commit notifications, and
every ``alerts_poll_seconds`` for those of other processes and for retries. Each pass leases
due rows (``outbox.claim``), sends them a few at a time, and records each outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from trapline.alerts import outbox
from trapline.alerts.messages import AlertRef, ProjectRef, summary_payload
from trapline.alerts.models import (
    Alert,
    AlertDelivery,
    FingerprintMinute,
    FingerprintUser,
    IssueBucket,
    IssueSpikeCooldown,
)
from trapline.alerts.outbox import Due, Outcome
from trapline.alerts.senders import Senders
from trapline.alerts.spikes import BUCKET_SIZE, BUCKETS
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import disk_full_cause, is_disk_full
from trapline.ids import uuid7
from trapline.projects.models import Project

__all__ = ["Dispatcher", "prune_alert_state"]

log = logging.getLogger("trapline.alerts")

_PASS_SIZE = 20
_PARALLEL = 4
_SUMMARY_LISTED = 10
# How long the sender waits when the disk is full: leasing is a write that would fail again.
DISK_FULL_WAIT_SECONDS = 5.0


class Dispatcher:
    def __init__(
        self,
        db: Database,
        senders: Senders,
        *,
        sender_id: str,
        base_url: str,
        retry_hours: float = 24.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.senders = senders
        self.sender_id = sender_id
        self.base_url = base_url
        self.retry = timedelta(hours=retry_hours)
        self.poll_seconds = poll_seconds
        self.clock = clock
        # Longer than any one send can take (its time limit, with room), so a live sender's
        # lease never runs out under it.
        self.lease = timedelta(seconds=max(60.0, senders.options.timeout_seconds * 6))
        self._wake = threading.Event()
        self._pool = ThreadPoolExecutor(_PARALLEL, thread_name_prefix="trapline-alert")

    def wake(self) -> None:
        """Look at the outbox now (a worker of this process just committed notifications)."""
        self._wake.set()

    def send_due(self) -> int:
        """One pass: lease what is due, send it, record the outcomes; returns how many were tried."""
        claimed = outbox.claim(self.db, self.sender_id, _PASS_SIZE, self.lease, self.clock())
        if claimed:
            list(self._pool.map(self._deliver, claimed))
        return len(claimed)

    def drain(self) -> int:
        """Send everything due now, until nothing is (``trapline worker --once``, tests)."""
        total = 0
        while sent := self.send_due():
            total += sent
        return total

    def run(self, stop: threading.Event) -> None:
        disk_full = False
        while not stop.is_set():
            try:
                busy = self.send_due()
            except Exception as exc:
                if not is_disk_full(exc):
                    log.exception("could not send alert notifications")
                elif not disk_full:
                    # Nothing was leased: what is due stays due, and is sent once there is room.
                    log.error("alert notifications wait: the disk is full", extra={"error": str(disk_full_cause(exc))})
                disk_full = is_disk_full(exc)
                busy = 0
            else:
                disk_full = False
            if disk_full:
                stop.wait(DISK_FULL_WAIT_SECONDS)
            elif not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _deliver(self, due: Due) -> None:
        try:
            with self.db.session(write=False) as session:
                found = _load(session, due, self.base_url, self.clock())
            if found is None:
                outcome = Outcome("failed", error="the alert was disabled before this notification was sent")
            else:
                destination_type, destination, payload = found
                outcome = self.senders.send(destination_type, destination, payload, due.id)
            now = self.clock()
            with self.db.session(write=True) as session:
                if not self.db.is_sqlite:
                    # This worker's commits skip waiting for the disk (lost ones are redone); a
                    # lost "delivered" would mean a second message, so this one waits.
                    session.execute(text("SET LOCAL synchronous_commit TO on"))
                if found is not None and due.kind == "summary":
                    session.execute(update(AlertDelivery).where(AlertDelivery.id == due.id).values(payload=payload))
                status = outbox.record(session, self.sender_id, due.id, outcome, now, due.created_at + self.retry)
                session.commit()
        except Exception as exc:
            if is_disk_full(exc):
                # Its lease runs out and it is sent again (the receiver sees the same Idempotency-Key).
                log.error(
                    "could not record an alert notification: the disk is full",
                    extra={"delivery": str(due.id), "error": str(disk_full_cause(exc))},
                )
            else:
                log.exception("could not deliver an alert notification", extra={"delivery": str(due.id)})
            return
        if status is not None and status != "delivered":
            # Ids only: the destination (its URL is a secret) never goes to the log.
            log.warning(
                "alert notification not delivered",
                extra={
                    "delivery": str(due.id),
                    "alert": str(due.alert_id),
                    "status": status,
                    "response_code": outcome.response_code,
                    "error": outcome.error,
                },
            )


def _load(
    session: Session, due: Due, base_url: str, now: datetime
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """The alert's destination and the payload to send, or None if the alert is disabled."""
    alert = session.get(Alert, due.alert_id)
    if alert is None or (not alert.enabled and due.kind != "test"):
        return None
    delivery = session.get(AlertDelivery, due.id)
    assert delivery is not None
    payload = delivery.payload
    if due.kind == "summary":
        payload = _summary(session, alert, delivery, base_url, now)
    return alert.destination_type, dict(alert.destination), payload


def _summary(session: Session, alert: Alert, summary: AlertDelivery, base_url: str, now: datetime) -> dict[str, Any]:
    held = session.execute(
        select(AlertDelivery.payload)
        .where(AlertDelivery.summary_id == summary.id)
        .order_by(AlertDelivery.created_at)
        .limit(_SUMMARY_LISTED)
    ).scalars()
    issues = [{"name": (p.get("issue") or {}).get("name"), "url": (p.get("issue") or {}).get("url")} for p in held]
    project = session.get(Project, alert.project_id)
    name = project.name if project is not None else str(alert.project_id)
    return summary_payload(
        event_uuid=summary.event_uuid or uuid7(),
        now=now,
        project=ProjectRef(alert.project_id, name, f"{base_url}/project/{alert.project_id}/error_tracking"),
        alert=AlertRef(alert.id, alert.name, alert.trigger),
        count=summary.summary_count,
        minutes=int((summary.payload or {}).get("minutes") or alert.throttle_minutes or 0),
        issues=issues,
    )


def prune_alert_state(db: Database, now: datetime) -> None:
    """Forget buckets the detector no longer looks at, cooldowns that ran out, and counts older
    than the longest window of the alerts that read them."""
    oldest = now - BUCKET_SIZE * (BUCKETS + 1)
    with db.session(write=True) as session:
        session.execute(delete(IssueBucket).where(IssueBucket.bucket_start < oldest))
        session.execute(delete(IssueSpikeCooldown).where(IssueSpikeCooldown.until < now))
        for trigger, counts in (("issue_frequency", FingerprintMinute), ("issue_users", FingerprintUser)):
            longest = session.scalar(select(func.max(Alert.window_minutes)).where(Alert.trigger == trigger)) or 0
            session.execute(delete(counts).where(counts.minute < now - timedelta(minutes=longest + 1)))
        session.commit()
