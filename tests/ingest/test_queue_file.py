"""SQLite's ingest queue in a file of its own: capture never waits for a worker's batch, and
processing stays exactly-once across the two commits (see trapline.events.queue_file)."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from tests.capture import exception_event
from tests.factories import Tenant, make_tenant
from trapline import pipeline
from trapline.db import engine, migrate, vacuum
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import sqlite_datetime, utcnow
from trapline.events import queue
from trapline.events.models import ExceptionEvent, QueueDone, QueuedRequest
from trapline.events.queue_file import queue_path
from trapline.issues.models import IssueFingerprint
from trapline.retention import Retention, RetentionOptions
from trapline.usage.models import UsageDay
from trapline.worker import Worker, WorkerOptions


@pytest.fixture
def apart(database: Database) -> Database:
    if not database.queue_apart:
        pytest.skip("PostgreSQL keeps the queue in the database: its batch and ack commit together")
    return database


def enqueue(database: Database, project_id: int, *events: dict[str, Any]) -> None:
    queue.enqueue(
        database,
        [
            queue.NewRequest(project_id=project_id, received_at=utcnow(), sent_at=None, payload=orjson.dumps([event]))
            for event in events
        ],
    )


def scalar(database: Database, statement: Any) -> Any:
    with database.session(write=False) as session:
        return session.scalar(statement)


def queued_ids(database: Database) -> list[int]:
    with database.queue.session(write=False) as session:
        return list(session.scalars(select(QueuedRequest.id).order_by(QueuedRequest.id)))


def test_the_queue_file_sits_beside_a_sqlite_file_only() -> None:
    assert queue_path("sqlite:////data/trapline.db") == Path("/data/trapline.queue.db")
    assert queue_path("sqlite:////data/events") == Path("/data/events.queue.db")
    assert queue_path("sqlite://") is None
    assert queue_path("sqlite:///:memory:") is None
    assert queue_path("postgresql+psycopg://postgres@127.0.0.1/trapline") is None


def test_requests_are_queued_in_the_queue_file_not_the_database(apart: Database, tenant: Tenant):
    enqueue(apart, tenant.project_id, exception_event())
    assert len(queued_ids(apart)) == 1
    with apart.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM ingest_queue").scalar_one() == 0


# Signals too: they go with their requests into the queue's file (kept in the database, they
# waited for its lock), and so do the counts of drops at the door (see door_drops).
@pytest.mark.parametrize(
    ("signals", "drops"), [(0, 0), (1, 0), (0, 1)], ids=["requests", "with a session signal", "with a refusal's count"]
)
def test_capture_commits_while_a_worker_holds_the_database_write_lock(tmp_path: Path, signals: int, drops: int):
    db = open_database(f"sqlite:///{tmp_path / 'trapline.db'}", busy_timeout_seconds=0.5)
    try:
        migrate.upgrade(db.engine)
        writer = queue.SqliteWriter(db.queue)
        holder = sqlite3.connect(tmp_path / "trapline.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # what a worker storing a batch holds
        try:
            started = time.monotonic()
            request = queue.NewRequest(project_id=1, received_at=utcnow(), sent_at=None, payload=b"[]")
            signal = queue.NewSignal(1, "session-1", "url", utcnow())
            drop = queue.NewDrop(1, "rate_limited_project", 5, "over its limit")
            queue.enqueue(db, [request], [signal] * signals, [drop] * drops, writer=writer)
            # With one file this waited out the busy timeout and failed (database is locked).
            assert time.monotonic() - started < 0.4
        finally:
            holder.execute("COMMIT")
            holder.close()
            writer.close()
        with db.queue.session(write=False) as session:
            events = list(session.scalars(select(QueuedRequest.event_count).order_by(QueuedRequest.id)))
        assert events == [1] + [0] * drops  # a count of drops is queued as a request without events
        assert signal_count(db.queue) == signals
    finally:
        db.dispose()


def test_a_batch_stored_before_its_process_died_is_not_processed_again(
    apart: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    event = exception_event()
    enqueue(apart, tenant.project_id, event)
    # The worker commits its batch, then dies before it removes the request from the queue.
    monkeypatch.setattr(queue, "acked", lambda db, ids: None)
    assert Worker(apart).drain().stored == 1
    monkeypatch.undo()
    [left] = queued_ids(apart)
    assert scalar(apart, select(QueueDone.queue_id)) == left
    with apart.queue.session(write=True) as session:  # its lease runs out
        session.execute(update(QueuedRequest).values(claimed_until=utcnow() - timedelta(seconds=1)))
        session.commit()

    enqueue(apart, tenant.project_id, exception_event())

    # One request a claim: the first claim finds only the done one, and draining goes on.
    again = Worker(apart, WorkerOptions(batch_size=1)).drain()

    assert (again.requests, again.stored) == (1, 1)  # the done one was removed, not processed
    assert queued_ids(apart) == []
    assert scalar(apart, select(func.count()).select_from(ExceptionEvent)) == 2
    assert scalar(apart, select(func.sum(IssueFingerprint.occurrences))) == 2
    assert scalar(apart, select(func.sum(UsageDay.count)).where(UsageDay.outcome == "stored")) == 2


def test_two_workers_storing_one_request_store_it_once(apart: Database, tenant: Tenant):
    enqueue(apart, tenant.project_id, exception_event())
    slow, fast = Worker(apart), Worker(apart)
    claimed = queue.claim(apart, slow.id, 10, timedelta(seconds=60))
    with apart.queue.session(write=True) as session:  # the slow worker's lease runs out
        session.execute(update(QueuedRequest).values(claimed_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    taken = queue.claim(apart, fast.id, 10, timedelta(seconds=60))
    assert [row.id for row in taken] == [row.id for row in claimed]

    # The slow worker is first to commit; the fast one's lease is then the one that counts.
    with pytest.raises(queue.LeaseLost):
        pipeline.process_batch(apart, slow.id, claimed)
    assert pipeline.process_batch(apart, fast.id, taken).stored == 1
    assert queued_ids(apart) == []
    assert scalar(apart, select(func.count()).select_from(ExceptionEvent)) == 1


def test_a_claim_leaves_out_requests_removed_before_it_read_them(
    apart: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    enqueue(apart, tenant.project_id, exception_event(), exception_event())
    first, second = queued_ids(apart)
    read = queue._payloads

    def removed_meanwhile(cursor: Any, ids: list[int]) -> dict[int, bytes]:
        # A worker whose lease on it ran out stored it and removes it, between this claim's
        # commit and its read of the payloads.
        queue._delete_sqlite(apart.queue, [first])
        return read(cursor, ids)

    monkeypatch.setattr(queue, "_payloads", removed_meanwhile)
    claimed = queue.claim(apart, "w", 10, timedelta(seconds=60))
    assert [row.id for row in claimed] == [second]
    assert orjson.loads(claimed[0].payload)[0]["event"] == "$exception"


def test_the_database_log_is_synced_before_the_queue_forgets_a_batch(
    apart: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    enqueue(apart, tenant.project_id, exception_event())
    synced: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(engine, "sync_log", lambda path: synced.append((path, queued_ids(apart))))
    assert Worker(apart).drain().stored == 1
    [(path, queued_then)] = synced
    # Synced while the request was still queued: a power cut cannot keep the deletion alone.
    assert path == apart.path
    assert len(queued_then) == 1
    assert queued_ids(apart) == []


def test_queue_ids_are_never_handed_out_twice(apart: Database, tenant: Tenant):
    enqueue(apart, tenant.project_id, exception_event(), exception_event())
    first = queued_ids(apart)
    Worker(apart).drain()
    assert queued_ids(apart) == []
    enqueue(apart, tenant.project_id, exception_event())
    [later] = queued_ids(apart)
    assert later > max(first)


def test_done_marks_of_rows_gone_from_the_queue_are_forgotten(apart: Database, tenant: Tenant):
    ids: list[int] = []
    for _ in range(3):
        enqueue(apart, tenant.project_id, exception_event())
        ids += queued_ids(apart)
        Worker(apart).drain()
    # Each batch forgets the marks below the oldest queued row: only the last batch's is left.
    with apart.session(write=False) as session:
        assert list(session.scalars(select(QueueDone.queue_id))) == [ids[-1]]


def migrated(path: Path) -> tuple[Database, Tenant]:
    """A database file at ``path``, migrated, with a tenant: what an older version left there."""
    db = open_database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    with db.session(write=True) as session:
        return db, make_tenant(session)


def test_requests_an_older_version_left_in_the_database_move_to_the_queue_file(tmp_path: Path):
    path = tmp_path / "trapline.db"
    db, tenant = migrated(path)
    db.dispose()
    events = [exception_event(), exception_event()]
    old = sqlite3.connect(path, isolation_level=None)
    at = sqlite_datetime(utcnow())
    for n, event in enumerate(events, start=1):
        old.execute(
            "INSERT INTO ingest_queue (id, project_id, received_at, event_count, attempts, failed_at, last_error) "
            "VALUES (?, ?, ?, 1, ?, ?, ?)",
            (n, tenant.project_id, at, 5 * (n - 1), at if n == 2 else None, "boom" if n == 2 else None),
        )
        old.execute("INSERT INTO ingest_payload (id, payload) VALUES (?, ?)", (n, orjson.dumps([event])))
    old.close()

    db = open_database(f"sqlite:///{path}")
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM ingest_queue").scalar_one() == 0
        with db.queue.session(write=False) as session:
            rows = list(session.scalars(select(QueuedRequest).order_by(QueuedRequest.id)))
        assert [(row.attempts, row.last_error, row.failed_at is not None) for row in rows] == [
            (0, None, False),
            (5, "boom", True),
        ]
        assert Worker(db).drain().stored == 1  # the parked one waits for `trapline requeue`
        assert queue.requeue_failed(db) == 1
        assert Worker(db).drain().stored == 1
        with db.session(write=False) as session:
            stored = sorted(str(u) for u in session.scalars(select(ExceptionEvent.uuid)))
        assert stored == sorted(event["uuid"] for event in events)
    finally:
        db.dispose()


def test_session_signals_are_queued_with_their_request_in_one_transaction(apart: Database, tenant: Tenant):
    request = queue.NewRequest(project_id=tenant.project_id, received_at=utcnow(), sent_at=None, payload=b"[]")
    queue.enqueue(apart, [request], [queue.NewSignal(tenant.project_id, "session-1", "url", utcnow())])
    assert len(queued_ids(apart)) == 1
    assert signal_count(apart.queue) == 1
    assert signal_count(apart) == 0

    # A request that cannot be queued (its payload is written last) takes its signal with it:
    # a worker never sees a signal of a request that was answered with an error, nor the reverse.
    unwritable = queue.NewRequest(
        project_id=tenant.project_id,
        received_at=utcnow(),
        sent_at=None,
        payload=None,  # type: ignore[arg-type]
    )
    with pytest.raises(sqlite3.IntegrityError):
        queue.enqueue(apart, [unwritable], [queue.NewSignal(tenant.project_id, "session-2", "url", utcnow())])
    assert len(queued_ids(apart)) == 1
    assert signal_count(apart.queue) == 1


def test_session_signals_an_older_version_kept_in_the_database_move_to_the_queue_file(tmp_path: Path):
    path = tmp_path / "trapline.db"
    db, tenant = migrated(path)
    now = utcnow()
    queue.enqueue(db, [], [queue.NewSignal(tenant.project_id, "s1", "url", now)])  # already in the queue file
    db.dispose()
    old = sqlite3.connect(path, isolation_level=None)
    insert = "INSERT INTO session_signal (project_id, session_id, signal, first_at, expires_at) VALUES (?, ?, ?, ?, ?)"
    earlier, later = sqlite_datetime(now - timedelta(minutes=5)), sqlite_datetime(now + timedelta(days=3))
    old.execute(insert, (tenant.project_id, "s1", "url", earlier, later))
    old.execute(insert, (tenant.project_id, "s2", "event:checkout", earlier, later))
    old.close()

    db = open_database(f"sqlite:///{path}")
    try:
        assert signal_count(db) == 0
        with db.queue.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT session_id, signal, first_at, expires_at FROM session_signal ORDER BY session_id"
            ).all()
        # Merged with what the queue file had: the earliest time, the latest expiry.
        assert [tuple(row) for row in rows] == [("s1", "url", earlier, later), ("s2", "event:checkout", earlier, later)]
    finally:
        db.dispose()


def signal_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM session_signal").scalar_one())


def test_retention_gives_back_the_space_a_drained_backlog_took(apart: Database, tenant: Tenant):
    padded = orjson.dumps([{"event": "$exception", "padding": "x" * 3500}])
    backlog = [
        queue.NewRequest(project_id=tenant.project_id, received_at=utcnow(), sent_at=None, payload=padded)
        for _ in range(6000)
    ]
    queue.enqueue(apart, backlog)
    with apart.queue.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ingest_queue")  # processed: the pages are free now

    assert vacuum.free_bytes(apart.queue.engine) > 20_000_000
    purged = Retention(apart, RetentionOptions()).run(paced=False)
    assert purged.bytes_freed > 15_000_000
    assert vacuum.free_bytes(apart.queue.engine) <= 4 * 1024 * 1024  # SQLite keeps a little for the next inserts


def test_a_new_queue_file_does_not_inherit_the_done_marks_of_a_deleted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = f"sqlite:///{tmp_path / 'trapline.db'}"
    db = open_database(url)
    migrate.upgrade(db.engine)
    with db.session(write=True) as session:
        tenant = make_tenant(session)
    enqueue(db, tenant.project_id, exception_event())
    with monkeypatch.context() as patched:
        patched.setattr(queue, "acked", lambda db, ids: None)  # a done mark is left behind
        assert Worker(db).drain().stored == 1
    db.dispose()
    for leftover in tmp_path.glob("trapline.queue.db*"):
        leftover.unlink()

    db = open_database(url)
    try:
        later = exception_event()
        enqueue(db, tenant.project_id, later)  # id 1 again, in the new file
        assert Worker(db).drain().stored == 1
        with db.session(write=False) as session:
            assert str(later["uuid"]) in {str(u) for u in session.scalars(select(ExceptionEvent.uuid))}
    finally:
        db.dispose()


def test_the_queue_file_does_not_zero_what_it_deletes_at_the_cost_of_extra_writes(apart: Database):
    # 2 = FAST: deleted rows are zeroed only on pages written anyway (Debian's default, 1,
    # rewrote every payload's pages when its request left the queue).
    writer = queue.SqliteWriter(apart.queue)
    try:
        assert writer.connection.execute("PRAGMA secure_delete").fetchone()[0] == 2
    finally:
        writer.close()
    with apart.engine.connect() as connection:  # the database keeps SQLite's setting
        assert (
            connection.exec_driver_sql("PRAGMA secure_delete").scalar_one()
            == sqlite3.connect(":memory:").execute("PRAGMA secure_delete").fetchone()[0]
        )
