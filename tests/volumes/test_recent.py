"""Each fingerprint's events over the last week, kept on its row for lists by occurrences:
what it must hold, that lists read the same order from it as from the day rows, and that a
worker rolls the windows to a new day."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.capture import post_batch
from tests.factories import Tenant
from tests.volumes.support import assert_rollups_match, assert_windows_match, expected, windows
from tests.volumes.test_rollups import NOW, send, spread
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.issues import queries
from trapline.issues.models import IssueFingerprint
from trapline.retention import Retention, RetentionOptions
from trapline.volumes import counts, recent
from trapline.volumes.buckets import DAY, day_of, touched
from trapline.worker import Worker, WorkerOptions


@pytest.fixture
def filled(client: TestClient, tenant: Tenant, database: Database) -> None:
    # Six kinds over the last 10 days: some fingerprints have events only before the window.
    send(client, tenant, database, spread(500, kinds=6))


def listed(database: Database, project_id: int, start: datetime, end: datetime) -> dict[str, int]:
    """What an issue list ordered by occurrences reads: fingerprint -> value, the same in both
    spellings (one pass, and PostgreSQL's two branches), either of which runs on both backends."""
    found = []
    for postgresql in (False, True):
        with database.session(write=False) as session:
            statement = select(counts.order_values(project_id, start, end, "occurrences", postgresql=postgresql))
            rows = session.execute(statement).all()
        assert len({row.fingerprint for row in rows}) == len(rows)  # once each, whichever source
        found.append({row.fingerprint: row.value for row in rows})
    assert found[0] == found[1]
    return found[0]


def oracle(database: Database, start: datetime, end: datetime) -> dict[str, int]:
    """The same from the stored events: the touched days of fingerprints with events in the range."""
    _, first, last = touched(start, end)
    _, days = expected(database)
    with database.session(write=False) as session:
        seen = dict(session.execute(select(IssueFingerprint.fingerprint, IssueFingerprint.last_seen)).all())
    want: dict[str, int] = {}
    for (_, fingerprint, day), n in days.items():
        if first <= day <= last and seen[fingerprint] >= start:  # type: ignore[operator]
            want[fingerprint] = want.get(fingerprint, 0) + n
    return want


def set_windows(database: Database, **values: Any) -> None:
    with database.session(write=True) as session:
        session.execute(update(IssueFingerprint).values(**values))
        session.commit()


def test_the_pipeline_keeps_every_window_to_today(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    kept = windows(database)
    today = day_of(utcnow())
    assert kept and {day for day, _ in kept.values()} == {today}
    assert_rollups_match(database)


def test_a_list_of_the_last_week_reads_the_windows_and_the_day_rows_alike(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    start, end = NOW - timedelta(days=7), NOW
    want = oracle(database, start, end)
    assert len(want) >= 3
    assert listed(database, tenant.project_id, start, end) == want  # every window kept
    set_windows(database, recent_day=None, recent_events=0)
    assert listed(database, tenant.project_id, start, end) == want  # none kept: the day rows
    # Some kept, some a day behind with a wrong count (the column must not be read for them).
    recent.roll(database, NOW)
    with database.session(write=True) as session:
        some = session.scalars(select(IssueFingerprint.fingerprint).limit(3)).all()
        session.execute(
            update(IssueFingerprint)
            .where(IssueFingerprint.fingerprint.in_(some))
            .values(recent_day=day_of(NOW) - DAY, recent_events=10**6)
        )
        session.commit()
    assert listed(database, tenant.project_id, start, end) == want
    # The kept ones are read from the column, not summed again.
    fresh = next(f for f in want if f not in some)
    with database.session(write=True) as session:
        session.execute(
            update(IssueFingerprint)
            .where(IssueFingerprint.fingerprint == fresh)
            .values(recent_events=IssueFingerprint.recent_events + 1000)
        )
        session.commit()
    assert listed(database, tenant.project_id, start, end) == {**want, fresh: want[fresh] + 1000}
    set_windows(database, recent_day=None, recent_events=0)
    # Other ranges never read the windows.
    for days in (3, 8, 30):
        other = NOW - timedelta(days=days)
        assert listed(database, tenant.project_id, other, end) == oracle(database, other, end)


def test_the_inbox_by_occurrences_orders_the_same_with_and_without_windows(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    flt = queries.IssueFilter(start=NOW - timedelta(days=7), end=NOW)

    def order() -> list[object]:
        with database.session(write=False) as session:
            ids = list(
                session.scalars(queries.issue_order(tenant.project_id, flt, order_by="occurrences", session=session))
            )
            summaries = queries.summarize(session, tenant.project_id, flt, ids)
        return [(s.aggregates.occurrences, s.issue.id) for s in summaries]

    kept = order()
    set_windows(database, recent_day=None, recent_events=0)
    assert order() == kept
    assert [n for n, _ in kept] == sorted((n for n, _ in kept), reverse=True)


def test_a_roll_moves_the_windows_with_recent_events_to_the_new_day(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    tomorrow = utcnow() + DAY
    moved = recent.roll(database, tomorrow)
    kept = windows(database)
    assert moved == sum(1 for day, _ in kept.values() if day == day_of(tomorrow))
    assert moved > 0
    assert_windows_match(database)
    assert recent.roll(database, tomorrow) == 0  # nothing left behind
    # Nine days on, no fingerprint has events in the window: nothing to move.
    assert recent.roll(database, utcnow() + 9 * DAY) == 0


def test_retention_and_rebuilds_keep_the_windows(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    Retention(database, RetentionOptions(days=5, batch_size=37)).run(paced=False)
    assert_rollups_match(database)
    assert windows(database)  # retention's deletes recounted the windows of today
    from trapline.volumes.rebuild import rebuild

    with database.session(write=True) as session:
        rebuild(session.connection())
        session.commit()
    assert_rollups_match(database)


def test_events_arriving_add_to_the_windows_or_recount_those_behind(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    # Windows a day behind (as after midnight, before a roll) are recounted by the new events.
    set_windows(database, recent_day=None, recent_events=0)
    recent.roll(database, utcnow() - DAY)
    assert {day for day, _ in windows(database).values()} == {day_of(utcnow()) - DAY}
    send(client, tenant, database, spread(120, kinds=6, seed=3))
    assert {day for day, _ in windows(database).values()} == {day_of(utcnow())}
    assert_rollups_match(database)


def test_a_worker_rolls_the_windows_when_it_starts(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    set_windows(database, recent_day=None, recent_events=0)
    stop = threading.Event()
    thread = threading.Thread(target=Worker(database).run_forever, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not windows(database) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert windows(database)
    assert_windows_match(database)


def test_workers_and_rolls_running_together_keep_every_window(
    client: TestClient, tenant: Tenant, database: Database, filled: None
) -> None:
    """Batches that add to windows at today or recount those behind, and rolls moving them,
    all at once (concurrent transactions on the same rows): no change lost."""
    if database.engine.dialect.name == "sqlite":
        # One writer at a time: nothing can interleave, and a roll in a loop only starves the
        # workers of the write lock.
        pytest.skip("SQLite has one writer")
    recent.roll(database, utcnow() - DAY)  # every window a day behind, as just after midnight
    events = spread(600, kinds=6, seed=11)
    for start in range(0, len(events), 10):  # small requests, so that the workers share them
        assert post_batch(client, tenant.project_token, *events[start : start + 10]).status_code == 200
    options = WorkerOptions(batch_size=3, batch_events=30)
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            Worker(database, options).drain()
        except BaseException as exc:
            errors.append(exc)

    def roll() -> None:
        try:
            while not done.is_set():
                recent.roll(database, utcnow())
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    roller = threading.Thread(target=roll)
    for thread in [*workers, roller]:
        thread.start()
    for thread in workers:
        thread.join(120)
    done.set()
    roller.join(30)
    assert not errors
    assert {day for day, _ in windows(database).values()} == {day_of(utcnow())}
    assert_rollups_match(database)
