"""Retention on both backends: what goes, what stays, in bounded steps, once, with totals kept."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event, func, select, update

from tests.concurrency import run_together
from tests.factories import Tenant, make_issue, make_project
from trapline.alerts.models import Alert, AlertDelivery
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.models import ExceptionEvent, QueuedPayload, QueuedRequest
from trapline.ids import uuid7
from trapline.issues.models import IssueFingerprint
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.retention import Purged, Retention, RetentionOptions, purge_pass
from trapline.retention import purge as statements
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.usage.models import UsageDay
from trapline.worker import Worker, WorkerOptions

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def add_events(
    database: Database, project_id: int, fingerprint: str, times: Sequence[datetime], issue_id: uuid.UUID | None = None
) -> list[int]:
    """Stored events of ``fingerprint``, with the fingerprint's running totals bumped as the
    pipeline would."""
    with database.session(write=True) as session:
        row = session.scalars(
            select(IssueFingerprint).where(
                IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint == fingerprint
            )
        ).one()
        events = [
            ExceptionEvent(
                project_id=project_id,
                uuid=uuid.uuid4(),
                timestamp=moment,
                distinct_id="user",
                fingerprint=fingerprint,
                issue_id=issue_id or row.issue_id,
                properties={"$exception_types": ["TypeError"]},
            )
            for moment in times
        ]
        session.add_all(events)
        row.occurrences += len(times)
        row.first_seen = min([*times, *([row.first_seen] if row.first_seen else [])])
        row.last_seen = max([*times, *([row.last_seen] if row.last_seen else [])])
        session.commit()
        return [e.id for e in events]


def remaining(database: Database, project_id: int | None = None) -> list[datetime]:
    with database.session(write=False) as session:
        query = select(ExceptionEvent.timestamp).order_by(ExceptionEvent.timestamp)
        if project_id is not None:
            query = query.where(ExceptionEvent.project_id == project_id)
        return list(session.scalars(query))


def totals(database: Database) -> list[tuple[str, int, datetime | None, datetime | None]]:
    with database.session(write=False) as session:
        rows = session.execute(
            select(
                IssueFingerprint.fingerprint,
                IssueFingerprint.occurrences,
                IssueFingerprint.first_seen,
                IssueFingerprint.last_seen,
            ).order_by(IssueFingerprint.fingerprint)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def count(database: Database, model: Any) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def run(database: Database, batch_size: int = 2000, **options: Any) -> Purged:
    retention = Retention(database, RetentionOptions(batch_size=batch_size, **options), clock=lambda: NOW)
    return retention.run(paced=False)


def test_expired_events_go_and_recent_ones_stay_with_the_issue_totals_unchanged(database: Database, tenant: Tenant):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp-a"])
    add_events(database, tenant.project_id, "fp-a", [days_ago(120), days_ago(91), days_ago(89), days_ago(1)])
    before = totals(database)

    purged = run(database)

    assert purged.events_expired == 2
    assert remaining(database) == [days_ago(89), days_ago(1)]
    assert totals(database) == before
    assert before[0][1:] == (4, days_ago(120), days_ago(1))
    # Nothing more to do on the next pass.
    assert run(database).rows == 0


def test_a_project_setting_overrides_the_installation_default(database: Database, tenant: Tenant):
    with database.session(write=True) as session:
        short = make_project(session, tenant.organization_id, "short").id
        unset = make_project(session, tenant.organization_id, "unset").id
        session.add(ErrorTrackingSettings(project_id=short, retention_days=7))
        # A settings row (rate limits, say) without retention_days keeps the default.
        session.add(ErrorTrackingSettings(project_id=unset, project_rate_limit_value=100))
        session.commit()
        for project_id in (tenant.project_id, short, unset):
            make_issue(session, project_id, ["fp"])
    for project_id in (tenant.project_id, short, unset):
        add_events(database, project_id, "fp", [days_ago(40), days_ago(8), days_ago(6)])

    purged = run(database, days=30)

    assert purged.events_expired == 4
    assert remaining(database, tenant.project_id) == [days_ago(8), days_ago(6)]
    assert remaining(database, short) == [days_ago(6)]
    assert remaining(database, unset) == [days_ago(8), days_ago(6)]


def test_the_cap_keeps_an_issues_newest_events_across_its_merged_fingerprints(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    with database.session(write=True) as session:
        merged = make_issue(session, tenant.project_id, ["fp-a", "fp-b"])
        small = make_issue(session, tenant.project_id, ["fp-c"])
        session.add(ErrorTrackingSettings(project_id=tenant.project_id, max_events_per_issue=3))
        session.commit()
    a = add_events(database, tenant.project_id, "fp-a", [days_ago(10), days_ago(8), days_ago(2), days_ago(1)])
    # Two at the same instant on either side of the cap: the one with the higher id stays.
    b = add_events(database, tenant.project_id, "fp-b", [days_ago(9), days_ago(5), days_ago(5)])
    add_events(database, tenant.project_id, "fp-c", [days_ago(30), days_ago(20), days_ago(10)])
    before = totals(database)
    looks: list[str] = []
    newest_events = statements.newest_events

    def counted(session: Any, project_id: int, fingerprint: str, n: int) -> list[tuple[datetime, int]]:
        looks.append(fingerprint)
        return newest_events(session, project_id, fingerprint, n)

    monkeypatch.setattr(statements, "newest_events", counted)
    retention = Retention(database, RetentionOptions(), clock=lambda: NOW)

    assert retention.run(paced=False).events_capped == 4

    with database.session(write=False) as session:
        kept = set(session.scalars(select(ExceptionEvent.id).where(ExceptionEvent.issue_id == merged.id)))
        assert len(session.scalars(select(ExceptionEvent.id).where(ExceptionEvent.issue_id == small.id)).all()) == 3
    assert kept == {a[3], a[2], b[2]}
    assert totals(database) == before
    # Only the issue over the cap was looked at (fp-c's total is 3).
    assert sorted(looks) == ["fp-a", "fp-b"]

    # An issue at its cap is not looked at again until it grows; then its oldest goes.
    looks.clear()
    assert retention.run(paced=False).events_capped == 0
    assert looks == []
    add_events(database, tenant.project_id, "fp-b", [days_ago(3)])
    assert retention.run(paced=False).events_capped == 1
    assert len(remaining(database)) == 6


def test_parked_requests_go_with_their_payloads_only_when_old(
    database: Database, tenant: Tenant, caplog: pytest.LogCaptureFixture
):
    queue.enqueue(
        database,
        [
            queue.NewRequest(
                project_id=tenant.project_id, received_at=utcnow(), sent_at=None, payload=orjson.dumps([n])
            )
            for n in range(3)
        ],
    )
    with database.queue.session(write=True) as session:
        old, recent, waiting = sorted(session.scalars(select(QueuedRequest.id)))
        for queue_id, failed_at in ((old, days_ago(31)), (recent, days_ago(29))):
            session.execute(
                update(QueuedRequest)
                .where(QueuedRequest.id == queue_id)
                .values(failed_at=failed_at, attempts=5, last_error="boom")
            )
        session.commit()

    with caplog.at_level(logging.WARNING, logger="trapline.retention"):
        purged = run(database)

    assert purged.parked_requests == 1
    with database.queue.session(write=False) as session:
        assert sorted(session.scalars(select(QueuedRequest.id))) == [recent, waiting]
        assert sorted(session.scalars(select(QueuedPayload.id))) == [recent, waiting]
    logged = [r for r in caplog.records if r.getMessage() == "parked requests deleted"]
    assert [row["id"] for row in logged[0].requests] == [old]  # type: ignore[attr-defined]
    assert logged[0].requests[0]["last_error"] == "boom"  # type: ignore[attr-defined]


def make_alert(database: Database, project_id: int) -> uuid.UUID:
    with database.session(write=True) as session:
        alert = Alert(
            project_id=project_id,
            name="a",
            trigger="issue_created",
            filters={},
            destination_type="webhook",
            destination={"url": "https://example.com/hook"},
        )
        session.add(alert)
        session.commit()
        return alert.id


def delivery(project_id: int, alert_id: uuid.UUID, status: str, created_at: datetime, **more: Any) -> AlertDelivery:
    return AlertDelivery(
        id=uuid7(),
        project_id=project_id,
        alert_id=alert_id,
        kind=more.pop("kind", "issue_created"),
        event_uuid=uuid7(),
        payload={},
        status=status,
        created_at=created_at,
        **more,
    )


def test_finished_deliveries_go_when_old_and_pending_ones_stay(database: Database, tenant: Tenant):
    alert_id = make_alert(database, tenant.project_id)
    pid = tenant.project_id
    with database.session(write=True) as session:
        pending_summary = delivery(pid, alert_id, "pending", days_ago(40), kind="summary")
        sent_summary = delivery(pid, alert_id, "delivered", days_ago(40), kind="summary")
        rows = {
            "delivered": delivery(pid, alert_id, "delivered", days_ago(31)),
            "failed": delivery(pid, alert_id, "failed", days_ago(31)),
            "recent": delivery(pid, alert_id, "delivered", days_ago(29)),
            "pending": delivery(pid, alert_id, "pending", days_ago(31)),
            "held": delivery(pid, alert_id, "throttled", days_ago(39), summary_id=pending_summary.id),
            "summed_up": delivery(pid, alert_id, "throttled", days_ago(39), summary_id=sent_summary.id),
            "pending_summary": pending_summary,
            "sent_summary": sent_summary,
        }
        session.add_all(rows.values())
        session.commit()

    assert run(database).deliveries == 4

    with database.session(write=False) as session:
        left = set(session.scalars(select(AlertDelivery.id)))
    assert left == {rows[name].id for name in ("recent", "pending", "held", "pending_summary")}


def test_unused_placeholders_go_with_their_failed_frames(database: Database, tenant: Tenant):
    pid = tenant.project_id
    with database.session(write=True) as session:
        sets = {
            "unused": SymbolSet(project_id=pid, ref="chunk-unused", created_at=days_ago(200), last_used=days_ago(95)),
            "never_used": SymbolSet(project_id=pid, ref="chunk-never", created_at=days_ago(95)),
            "in_use": SymbolSet(project_id=pid, ref="chunk-used", created_at=days_ago(200), last_used=days_ago(2)),
            "uploaded": SymbolSet(
                project_id=pid, ref="chunk-up", storage_ptr="symbols/x", content_hash="h", created_at=days_ago(200)
            ),
            "new": SymbolSet(project_id=pid, ref="chunk-new", created_at=days_ago(1)),
        }
        session.add_all(sets.values())
        session.flush()
        for name, symbol_set in sets.items():
            session.add(
                StackFrame(project_id=pid, raw_id=f"{name}-f", symbol_set_id=symbol_set.id, contents={}, resolved=False)
            )
        session.add(
            StackFrame(project_id=pid, raw_id="ok", symbol_set_id=sets["unused"].id, contents={}, resolved=True)
        )
        session.commit()

    purged = run(database)

    assert (purged.placeholders, purged.stack_frames) == (2, 2)
    with database.session(write=False) as session:
        assert set(session.scalars(select(SymbolSet.ref))) == {"chunk-used", "chunk-up", "chunk-new"}
        frames = dict(session.execute(select(StackFrame.raw_id, StackFrame.symbol_set_id)).all())
    assert set(frames) == {"in_use-f", "uploaded-f", "new-f", "ok"}
    assert frames["ok"] is None  # resolved frames stay, as when a user deletes a set


def test_ended_rate_limit_counters_and_old_usage_go(database: Database, tenant: Tenant):
    pid = tenant.project_id
    hour = timedelta(hours=1)
    with database.session(write=True) as session:
        for scope, ended in (("", NOW - 2 * hour), ("ab", NOW - hour / 2)):
            session.add(
                RateLimitCounter(project_id=pid, scope=scope, bucket_start=ended - hour, bucket_end=ended, count=1)
            )
        for day in (date(2024, 4, 1), date(2024, 5, 20)):
            session.add(UsageDay(project_id=pid, day=day, outcome="stored", count=5))
        session.commit()

    purged = run(database)

    assert (purged.rate_limit_counters, purged.usage_days) == (1, 1)
    with database.session(write=False) as session:
        assert session.scalars(select(RateLimitCounter.scope)).all() == ["ab"]
        assert session.scalars(select(UsageDay.day)).all() == [date(2024, 5, 20)]


@pytest.fixture
def deletes(database: Database) -> Iterator[list[int]]:
    """The row counts of the DELETEs of exception_event run while the test runs."""
    counts: list[int] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM EXCEPTION_EVENT"):
            counts.append(cursor.rowcount)

    event.listen(database.engine, "after_cursor_execute", after)
    yield counts
    event.remove(database.engine, "after_cursor_execute", after)


def test_events_go_in_bounded_batches_one_transaction_each(database: Database, tenant: Tenant, deletes: list[int]):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
    add_events(database, tenant.project_id, "fp", [days_ago(100) + n * timedelta(minutes=1) for n in range(35)])
    add_events(database, tenant.project_id, "fp", [days_ago(1)])
    the_pass = purge_pass(database, RetentionOptions(batch_size=10), NOW, {})
    deletes_by_step: list[int] = []
    for _ in the_pass:
        deletes_by_step.append(len(deletes))
    assert deletes == [10, 10, 10, 5]  # 35 expired
    # The pass yields after every transaction: the worker's own batches run in between.
    assert deletes_by_step[:4] == [1, 2, 3, 4]
    assert remaining(database) == [days_ago(1)]


def test_two_passes_at_once_delete_each_row_once(database: Database, tenant: Tenant):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
    add_events(database, tenant.project_id, "fp", [days_ago(100) + n * timedelta(seconds=1) for n in range(300)])
    add_events(database, tenant.project_id, "fp", [days_ago(1)])
    results: list[Purged] = []
    errors = run_together(lambda: results.append(run(database, batch_size=7)), 2)
    assert errors == []
    assert sum(r.events_expired for r in results) == 300
    assert remaining(database) == [days_ago(1)]


def test_the_statements_alone_delete_each_row_once_when_raced(database: Database, tenant: Tenant):
    # Without the pass's lock (say it were lost): each row still goes exactly once.
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
    add_events(database, tenant.project_id, "fp", [days_ago(100) + n * timedelta(seconds=1) for n in range(300)])
    deleted: list[int] = []

    def delete_all() -> None:
        while True:
            with database.session(write=True) as session:
                n = statements.expired_events(session, tenant.project_id, days_ago(90), 7)
                session.commit()
            deleted.append(n)
            if n == 0:
                return

    assert run_together(delete_all, 3) == []
    assert sum(deleted) == 300
    assert max(deleted) <= 7
    assert remaining(database) == []


def test_a_pass_in_progress_makes_others_skip_theirs(database: Database, tenant: Tenant):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
    add_events(database, tenant.project_id, "fp", [days_ago(100) + n * timedelta(seconds=1) for n in range(20)])
    first = purge_pass(database, RetentionOptions(batch_size=5), NOW, {})
    next(first)  # holds the lock now, one batch done
    assert run(database).rows == 0
    first.close()  # a worker that stops mid-pass lets the lock go
    assert run(database).events_expired == 15


def test_a_worker_runs_retention_between_its_batches(database: Database, tenant: Tenant):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
    add_events(database, tenant.project_id, "fp", [utcnow() - 100 * DAY, utcnow() - DAY])
    worker = Worker(database, WorkerOptions(retention=RetentionOptions(), idle_wait_seconds=0.01))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(remaining(database)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert len(remaining(database)) == 1
