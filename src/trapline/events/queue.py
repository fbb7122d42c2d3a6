"""The durable ingest queue: enqueue accepted requests, lease batches to workers, ack them.

Guarantees:

* ``enqueue`` has committed when it returns, before the capture endpoint answers 200.
* ``claim`` leases up to N rows (and up to M events) to one worker; on PostgreSQL ``FOR UPDATE
  SKIP LOCKED`` lets many workers (on many machines) claim disjoint batches, on SQLite the
  write lock does. An idle worker looks before it claims, so polling an empty queue never
  takes SQLite's write lock away from ingestion.
* ``ack`` deletes the rows in the caller's transaction, the one that stores the processed
  events, and fails with ``LeaseLost`` if another worker has taken them over (this worker
  was too slow): the caller rolls back and nothing is stored twice. With the queue in a
  SQLite file of its own (``queue_file.py``), ``ack`` marks them done in that transaction
  instead and ``acked`` deletes them after it commits; a claim drops rows marked done.
* A lease that runs out (the worker died) makes the rows claimable again, so a restart
  resumes where the crashed process stopped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from trapline.db.engine import Database
from trapline.db.leases import release_dead_holders
from trapline.db.types import sqlite_datetime, utcnow
from trapline.events import door_drops
from trapline.events.models import QueuedPayload, QueuedRequest
from trapline.events.queue_file import NEXT_ID_NEVER_REUSED
from trapline.events.sqlite_lock import SqliteWriter, write_transaction

__all__ = [
    "SIGNAL_LIFETIME",
    "Claimed",
    "LeaseLost",
    "NewDrop",
    "NewRequest",
    "NewSignal",
    "SqliteWriter",
    "ack",
    "acked",
    "claim",
    "claim_cut",
    "enqueue",
    "record_failure",
    "release",
    "release_dead",
    "requeue_failed",
]


class LeaseLost(Exception):
    """Another worker took over some of the claimed rows; this worker's results must be dropped."""


@dataclass(slots=True)  # not frozen: a frozen init sets each field the slow way, per request
class NewRequest:
    project_id: int
    received_at: datetime
    sent_at: str | None
    payload: bytes
    event_count: int = 1


@dataclass(frozen=True)
class NewSignal:
    """A browser session did something an autocapture trigger waits for (see SessionSignal)."""

    project_id: int
    session_id: str
    signal: str
    at: datetime


# A posthog-js session lasts at most a day: what it did is kept that long after it happened.
SIGNAL_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class NewDrop:
    """Accepted at the door but not stored (a Sentry envelope's sessions, a project over its
    limit, …): counted in ``dropped_events`` like the pipeline's drops (see ``door_drops``)."""

    project_id: int
    reason: str
    count: int
    detail: str | None = None


@dataclass(frozen=True)
class Claimed:
    id: int
    project_id: int
    received_at: datetime
    sent_at: str | None
    payload: bytes
    attempts: int


def enqueue(
    db: Database,
    requests: Sequence[NewRequest],
    signals: Sequence[NewSignal] = (),
    drops: Sequence[NewDrop] = (),
    *,
    writer: SqliteWriter | None = None,
) -> None:
    """Add accepted requests (and session signals, and drop counts), and commit: when this
    returns, they survive a crash. Signals go in the same transaction, so a worker never sees
    an exception without what its session did before it.

    This runs for every capture request, so it talks to the driver directly: SQLAlchemy's
    session and statement machinery cost several times the inserts themselves. ``writer`` is
    capture's own SQLite connection (see ``SqliteWriter``); without it one is taken from the pool.
    A writer's commit does not wait for the disk: its owner calls ``writer.sync()`` before it
    counts the rows as durable (the spool syncs while it commits the next flush).
    """
    if not requests and not signals and not drops:
        return
    signals, drops = _merged(signals), _merged_drops(drops)
    if db.queue_apart:
        requests = [*requests, *_drops_queued(drops)]  # counted by a worker: see door_drops
        if not requests and not signals:
            return
        if writer is None:  # signals go with their requests: see queue_file
            _with_raw(db.queue, lambda c: _enqueue_sqlite(c, requests, signals, [], ids_never_reused=True))
            return
        _enqueue_sqlite(writer.connection, requests, signals, [], writer.timeout_ms, ids_never_reused=True)
        return
    if writer is not None:
        _enqueue_sqlite(writer.connection, requests, signals, drops, writer.timeout_ms)
        return
    if db.is_sqlite:
        _with_raw(db, lambda connection: _enqueue_sqlite(connection, requests, signals, drops))
    else:
        _with_raw(db, lambda connection: _enqueue_postgres(connection, requests, signals, drops))


def _with_raw(db: Database, write: Callable[[Any], None]) -> None:
    """``write`` on a driver connection from ``db``'s pool."""
    with db.engine.raw_connection() as connection:
        write(connection)


def _merged(signals: Sequence[NewSignal]) -> list[NewSignal]:
    """One row per session and signal (the earliest), in one order: no upsert meets itself."""
    first: dict[tuple[int, str, str], NewSignal] = {}
    for signal in signals:
        key = (signal.project_id, signal.session_id, signal.signal)
        if key not in first or signal.at < first[key].at:
            first[key] = signal
    return [first[key] for key in sorted(first)]


def _merged_drops(drops: Sequence[NewDrop]) -> list[NewDrop]:
    """One row per project and reason, in one order (concurrent upserts lock rows alike)."""
    merged: dict[tuple[int, str], NewDrop] = {}
    for drop in drops:
        key = (drop.project_id, drop.reason)
        seen = merged.get(key)
        merged[key] = (
            drop if seen is None else NewDrop(drop.project_id, drop.reason, seen.count + drop.count, drop.detail)
        )
    return [merged[key] for key in sorted(merged)]


def _drops_queued(drops: Sequence[NewDrop]) -> list[NewRequest]:
    """Drops as requests with no events, one per project (``drops`` merged and sorted)."""
    by_project: dict[int, list[door_drops.Counted]] = {}
    for drop in drops:
        by_project.setdefault(drop.project_id, []).append((drop.reason, drop.count, drop.detail))
    now = utcnow()
    return [
        NewRequest(project_id, now, None, door_drops.encode(counted), event_count=0)
        for project_id, counted in by_project.items()
    ]


_UPSERT_DROP = (
    "INSERT INTO dropped_events (project_id, reason, count, last_dropped_at, last_detail) VALUES ({p}) "
    "ON CONFLICT (project_id, reason) DO UPDATE SET count = dropped_events.count + excluded.count, "
    "last_dropped_at = excluded.last_dropped_at, last_detail = excluded.last_detail"
)

# Drops at the door count in the day's usage too (see trapline.usage).
_UPSERT_USAGE = (
    "INSERT INTO usage_day (project_id, day, outcome, count) VALUES ({p}) "
    "ON CONFLICT (project_id, day, outcome) DO UPDATE SET count = usage_day.count + excluded.count"
)

_UPSERT_SIGNAL = (
    "INSERT INTO session_signal (project_id, session_id, signal, first_at, expires_at) VALUES ({p}) "
    "ON CONFLICT (project_id, session_id, signal) DO UPDATE SET "
    "first_at = {least}(session_signal.first_at, excluded.first_at), "
    "expires_at = {greatest}(session_signal.expires_at, excluded.expires_at)"
)


_NEXT_ID = "SELECT coalesce(max(id), 0) + 1 FROM ingest_queue"


def _enqueue_sqlite(
    connection: Any,
    requests: Sequence[NewRequest],
    signals: Sequence[NewSignal],
    drops: Sequence[NewDrop],
    timeout_ms: int | None = None,
    *,
    ids_never_reused: bool = False,
) -> None:
    with write_transaction(connection, timeout_ms) as cursor:
        if drops:
            now = sqlite_datetime(utcnow())
            cursor.executemany(
                _UPSERT_DROP.format(p="?, ?, ?, ?, ?"),
                [(d.project_id, d.reason, d.count, now, d.detail) for d in drops],
            )
            today = utcnow().date().isoformat()
            cursor.executemany(
                _UPSERT_USAGE.format(p="?, ?, ?, ?"), [(d.project_id, today, d.reason, d.count) for d in drops]
            )
        if signals:
            cursor.executemany(
                _UPSERT_SIGNAL.format(p="?, ?, ?, ?, ?", least="min", greatest="max"),
                [
                    (
                        s.project_id,
                        s.session_id,
                        s.signal,
                        sqlite_datetime(s.at),
                        sqlite_datetime(s.at + SIGNAL_LIFETIME),
                    )
                    for s in signals
                ],
            )
        if not requests:
            return
        # Under the write lock nobody else inserts: ids are handed out from the current
        # maximum, in arrival order (the queue's own file: past every id it ever gave).
        first = cursor.execute(NEXT_ID_NEVER_REUSED if ids_never_reused else _NEXT_ID).fetchone()[0]
        ids = range(first, first + len(requests))
        cursor.executemany(
            "INSERT INTO ingest_queue (id, project_id, received_at, sent_at, event_count, attempts) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            [
                (
                    row_id,
                    r.project_id,
                    sqlite_datetime(r.received_at),
                    r.sent_at,
                    r.event_count,
                )
                for row_id, r in zip(ids, requests, strict=True)
            ],
        )
        cursor.executemany(
            "INSERT INTO ingest_payload (id, payload) VALUES (?, ?)",
            [(row_id, r.payload) for row_id, r in zip(ids, requests, strict=True)],
        )


def _enqueue_postgres(
    connection: Any, requests: Sequence[NewRequest], signals: Sequence[NewSignal], drops: Sequence[NewDrop]
) -> None:
    cursor = connection.cursor()
    try:
        if drops:
            now = utcnow()
            cursor.executemany(
                _UPSERT_DROP.format(p="%s, %s, %s, %s, %s"),
                [(d.project_id, d.reason, d.count, now, d.detail) for d in drops],
            )
            cursor.executemany(
                _UPSERT_USAGE.format(p="%s, %s, %s, %s"), [(d.project_id, now.date(), d.reason, d.count) for d in drops]
            )
        if signals:
            cursor.executemany(
                _UPSERT_SIGNAL.format(p="%s, %s, %s, %s, %s", least="LEAST", greatest="GREATEST"),
                [(s.project_id, s.session_id, s.signal, s.at, s.at + SIGNAL_LIFETIME) for s in signals],
            )
        if not requests:
            connection.commit()
            return
        cursor.executemany(
            "INSERT INTO ingest_queue (project_id, received_at, sent_at, event_count, attempts) "
            "VALUES (%s, %s, %s, %s, 0) RETURNING id",
            [(r.project_id, r.received_at, r.sent_at, r.event_count) for r in requests],
            returning=True,
        )
        ids = []
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                break
        cursor.executemany(
            "INSERT INTO ingest_payload (id, payload) VALUES (%s, %s)",
            [(row_id, r.payload) for row_id, r in zip(ids, requests, strict=True)],
        )
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _available(now: datetime) -> ColumnElement[bool]:
    return and_(
        QueuedRequest.failed_at.is_(None),
        or_(QueuedRequest.claimed_until.is_(None), QueuedRequest.claimed_until < now),
    )


def claim_cut(candidates: Iterable[tuple[int, int]], max_events: int | None) -> list[int]:
    """The ids a claim takes from (id, event count) candidates, oldest first: as many as fit in
    ``max_events``, but always the first, so a request larger than a batch still moves."""
    ids: list[int] = []
    events = 0
    for row_id, count in candidates:
        if ids and max_events is not None and events + count > max_events:
            break
        ids.append(row_id)
        events += count
    return ids


def claim(
    db: Database, worker_id: str, limit: int, lease: timedelta, *, max_events: int | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` waiting rows, holding at most ``max_events`` events, to ``worker_id``.

    Oldest first; the first row is taken whatever its size, so a large request still moves.
    """
    now = utcnow()
    if db.queue_apart:
        while True:
            claimed = _claim_sqlite(db.queue, worker_id, limit, lease, max_events, now)
            fresh = _not_done(db, claimed)
            if fresh or not claimed:  # a batch found all done says nothing of the rows after it
                return fresh
    if db.is_sqlite:
        return _claim_sqlite(db, worker_id, limit, lease, max_events, now)
    with db.session(write=False) as session:
        if session.scalar(select(QueuedRequest.id).where(_available(now)).limit(1)) is None:
            return []
    with db.session(write=True) as session:
        candidates = session.execute(
            select(QueuedRequest.id, QueuedRequest.event_count)
            .where(_available(now))
            .order_by(QueuedRequest.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        ids = claim_cut(candidates, max_events)
        if not ids:
            return []
        leased = session.execute(
            update(QueuedRequest)
            .where(QueuedRequest.id.in_(ids))
            .values(claimed_by=worker_id, claimed_until=now + lease, attempts=QueuedRequest.attempts + 1)
            .returning(
                QueuedRequest.id,
                QueuedRequest.project_id,
                QueuedRequest.received_at,
                QueuedRequest.sent_at,
                QueuedRequest.attempts,
            )
        ).all()
        payload_rows = session.execute(select(QueuedPayload.id, QueuedPayload.payload).where(QueuedPayload.id.in_(ids)))
        payloads: dict[int, bytes] = {row.id: row.payload for row in payload_rows}
        session.commit()
    claimed = [
        Claimed(row_id, project, received, sent, payloads[row_id], attempts)
        for row_id, project, received, sent, attempts in leased
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


_SQLITE_AVAILABLE = "failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)"


def _claim_sqlite(
    db: Database, worker_id: str, limit: int, lease: timedelta, max_events: int | None, now: datetime
) -> list[Claimed]:
    """``claim`` on SQLite, through the driver: SQLAlchemy's statement and row machinery cost
    more than the queries (a worker claims for every batch, one row per request)."""
    now_text = sqlite_datetime(now)
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        # A look without the write lock: an idle worker never takes it from ingestion.
        cursor.execute("BEGIN")
        try:
            waiting = cursor.execute(f"SELECT id FROM ingest_queue WHERE {_SQLITE_AVAILABLE} LIMIT 1", (now_text,))
            found = waiting.fetchone() is not None
        finally:
            cursor.execute("COMMIT")
        if not found:
            return []
        cursor.execute("BEGIN IMMEDIATE")
        try:
            candidates = cursor.execute(
                f"SELECT id, event_count FROM ingest_queue WHERE {_SQLITE_AVAILABLE} ORDER BY id LIMIT ?",
                (now_text, limit),
            ).fetchall()
            ids = claim_cut(candidates, max_events)
            if not ids:
                cursor.execute("COMMIT")
                return []
            marks = ", ".join("?" * len(ids))
            leased = cursor.execute(
                "UPDATE ingest_queue SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 "
                f"WHERE id IN ({marks}) RETURNING id, project_id, received_at, sent_at, attempts",
                (worker_id, sqlite_datetime(now + lease), *ids),
            ).fetchall()
            cursor.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        # Read once the write lock is given back: capture's flushes wait for it, and reading a
        # batch's payloads (megabytes) was most of the time a claim held it. The rows are this
        # worker's now; only a worker whose lease on them ran out may still remove them, once
        # it has stored them: those are left out below, as done.
        payloads = _payloads(cursor, ids)
    finally:
        connection.close()
    claimed = [
        Claimed(row_id, project, _sqlite_moment(received), sent, payloads[row_id], attempts)
        for row_id, project, received, sent, attempts in leased
        if row_id in payloads
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def _payloads(cursor: Any, ids: Sequence[int]) -> dict[int, bytes]:
    # One statement, outside any transaction: it reads one snapshot of the file by itself.
    found = cursor.execute(f"SELECT id, payload FROM ingest_payload WHERE id IN ({', '.join('?' * len(ids))})", ids)
    return dict(found.fetchall())


def _sqlite_moment(text: str) -> datetime:
    """A datetime column as SQLite holds it (``sqlite_datetime``), aware, as the ORM reads it."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ack(db: Database, session: Session, worker_id: str, ids: Sequence[int]) -> None:
    """Delete processed rows in the caller's transaction; raise LeaseLost if any is not ours.

    With the queue in a file of its own, mark them done in the caller's transaction instead,
    and delete them with ``acked`` once it has committed.
    """
    if not ids:
        return
    if db.queue_apart:
        _mark_done(db, session, worker_id, ids)
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # Through the driver: one statement per batch, but SQLAlchemy's IN expansion costs
        # more than the delete.
        driver = connection.connection.driver_connection
        assert driver is not None
        deleted = driver.execute(
            f"DELETE FROM ingest_queue WHERE claimed_by = ? AND id IN ({', '.join('?' * len(ids))})",
            (worker_id, *ids),
        ).rowcount
    else:
        deleted = connection.execute(
            delete(QueuedRequest).where(QueuedRequest.id.in_(list(ids)), QueuedRequest.claimed_by == worker_id)
        ).rowcount
    if deleted != len(ids):
        raise LeaseLost(f"{len(ids) - deleted} of {len(ids)} rows were claimed by another worker")
    # Their payloads go with them (ON DELETE CASCADE).


def _mark_done(db: Database, session: Session, worker_id: str, ids: Sequence[int]) -> None:
    marks = ", ".join("?" * len(ids))
    with db.queue.engine.raw_connection() as queue_connection:
        held, floor = queue_connection.execute(
            f"SELECT (SELECT count(*) FROM ingest_queue WHERE claimed_by = ? AND id IN ({marks})), "
            "(SELECT min(id) FROM ingest_queue)",
            (worker_id, *ids),
        ).fetchone()
    if held != len(ids):
        raise LeaseLost(f"{len(ids) - held} of {len(ids)} rows were claimed by another worker")
    driver = session.connection().connection.driver_connection
    assert driver is not None
    # Marks below the oldest queued row are of rows already deleted from the queue: no claim
    # can meet them again (ids are never reused there).
    driver.execute("DELETE FROM ingest_done WHERE queue_id < ?", (floor,))
    try:
        driver.executemany("INSERT INTO ingest_done (queue_id) VALUES (?)", [(row_id,) for row_id in ids])
    except sqlite3.IntegrityError as exc:
        raise LeaseLost("another worker stored some of these rows") from exc


def acked(db: Database, ids: Sequence[int]) -> None:
    """After the transaction that ``ack`` marked ``ids`` done in has committed: remove them
    from the queue's own file (nothing to do when the queue is in the database).

    The database's log is synced first: the queue's deletions are synced by capture's next
    commit, and must never survive a power cut that the batch they stand for did not.
    """
    if not db.queue_apart or not ids:
        return
    db.sync_log()
    _delete_sqlite(db.queue, ids)


def _not_done(db: Database, claimed: list[Claimed]) -> list[Claimed]:
    """Claimed rows less those a batch has stored already (it committed, then its process
    stopped before it removed them from the queue): removed now, not processed again."""
    if not claimed:
        return claimed
    ids = [row.id for row in claimed]
    with db.engine.raw_connection() as connection:
        found = connection.execute(
            f"SELECT queue_id FROM ingest_done WHERE queue_id IN ({', '.join('?' * len(ids))})", ids
        )
        done = {row_id for (row_id,) in found}
    if not done:
        return claimed
    _delete_sqlite(db.queue, sorted(done))
    return [row for row in claimed if row.id not in done]


def _delete_sqlite(queue_db: Database, ids: Sequence[int]) -> None:
    with queue_db.engine.raw_connection() as connection, write_transaction(connection) as cursor:
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start : start + _DELETE_CHUNK]
            cursor.execute(f"DELETE FROM ingest_queue WHERE id IN ({', '.join('?' * len(chunk))})", chunk)


# SQLite binds at most 32,766 parameters a statement.
_DELETE_CHUNK = 10_000


def record_failure(db: Database, worker_id: str, ids: Sequence[int], error: str, *, max_attempts: int) -> int:
    """Release rows whose processing failed; rows out of attempts are parked, not deleted.

    Returns how many rows were parked. A parked row stays in the table with ``failed_at``
    set until ``requeue_failed`` puts it back, so an event that got a 200 is never lost to
    a bug in processing.
    """
    now = utcnow()
    with db.queue.session(write=True) as session:
        mine = (QueuedRequest.id.in_(list(ids))) & (QueuedRequest.claimed_by == worker_id)
        parked = session.execute(
            update(QueuedRequest)
            .where(mine, QueuedRequest.attempts >= max_attempts)
            .values(failed_at=now, last_error=error[:2000], claimed_by=None, claimed_until=None)
        ).rowcount  # type: ignore[attr-defined]
        session.execute(
            update(QueuedRequest).where(mine).values(last_error=error[:2000], claimed_by=None, claimed_until=None)
        )
        session.commit()
    return int(parked or 0)


def release(db: Database, worker_id: str, ids: Sequence[int]) -> int:
    """Give claimed rows back as if they had not been claimed, their attempt undone.

    For a batch that failed for the installation's reason rather than its own (the disk is
    full): it must not count towards parking. Returns how many rows were still this worker's.
    """
    with db.queue.session(write=True) as session:
        count = session.execute(
            update(QueuedRequest)
            .where(QueuedRequest.id.in_(list(ids)), QueuedRequest.claimed_by == worker_id)
            .values(claimed_by=None, claimed_until=None, attempts=QueuedRequest.attempts - 1)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(count or 0)


def requeue_failed(db: Database) -> int:
    """Make every parked row claimable again, with a fresh attempt count."""
    with db.queue.session(write=True) as session:
        count = session.execute(
            update(QueuedRequest)
            .where(QueuedRequest.failed_at.is_not(None))
            .values(failed_at=None, attempts=0, claimed_by=None, claimed_until=None)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(count or 0)


def release_dead(db: Database, is_dead: Callable[[str], bool]) -> int:
    """Release the rows of workers known to be dead, without waiting for their leases to end
    (a live worker wrongly released fails its ``ack``, and the rows are processed once)."""
    return release_dead_holders(db.queue, QueuedRequest, is_dead)
