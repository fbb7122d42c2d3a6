"""The server's idle worker: it processes the queue while the server is quiet, and only then."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import pytest
from sqlalchemy import func, select

from tests.capture import exception_event
from tests.factories import Tenant
from trapline.activity import Activity
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.models import ExceptionEvent, QueuedRequest
from trapline.idle_worker import IdleWorker
from trapline.worker import Worker, WorkerOptions


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def enqueue_events(database: Database, project_id: int, count: int) -> None:
    queue.enqueue(
        database,
        [
            queue.NewRequest(
                project_id=project_id, received_at=utcnow(), sent_at=None, payload=orjson.dumps([exception_event()])
            )
            for _ in range(count)
        ],
    )


def stored(database: Database) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(ExceptionEvent)) or 0


def queued(database: Database) -> int:
    with database.queue.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(QueuedRequest)) or 0


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def idle_worker(database: Database, activity: Activity) -> Iterator[IdleWorker]:
    options = WorkerOptions(batch_size=3, batch_events=3, idle_wait_seconds=0.02)
    worker = IdleWorker(Worker(database, options), activity, quiet_seconds=0.2)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10)


def test_the_server_is_quiet_once_no_request_began_for_the_quiet_time():
    clock = Clock()
    activity = Activity(clock)
    assert activity.quiet_in(0.2) == pytest.approx(0.2)
    clock.now += 0.15
    assert activity.quiet_in(0.2) == pytest.approx(0.05)
    clock.now += 0.06
    assert activity.quiet_in(0.2) == 0
    activity.touch()  # a request begins: quiet again only a full quiet time later
    assert activity.quiet_in(0.2) == pytest.approx(0.2)
    clock.now += 10
    assert activity.quiet_in(0.2) == 0


def test_a_quiet_server_processes_the_queue_in_small_batches(database: Database, tenant: Tenant):
    enqueue_events(database, tenant.project_id, 10)
    clock = Clock()
    activity = Activity(clock)
    clock.now += 1  # quiet for a second already
    with idle_worker(database, activity):
        assert wait_until(lambda: stored(database) == 10)
        assert wait_until(lambda: queued(database) == 0)


def test_a_busy_server_leaves_the_queue_to_the_worker_processes(database: Database, tenant: Tenant):
    enqueue_events(database, tenant.project_id, 10)
    clock = Clock()
    activity = Activity(clock)  # a request just began, and the clock stands still: never quiet
    with idle_worker(database, activity):
        time.sleep(0.6)  # three quiet times, had the server been quiet
        assert stored(database) == 0
        assert queued(database) == 10
        clock.now += 0.25  # the last request began a quiet time ago
        assert wait_until(lambda: stored(database) == 10)


def test_a_request_stops_the_idle_worker_between_batches(database: Database, tenant: Tenant):
    enqueue_events(database, tenant.project_id, 300)  # a hundred batches: more than the test waits for
    clock = Clock()
    activity = Activity(clock)
    clock.now += 1
    with idle_worker(database, activity):
        assert wait_until(lambda: stored(database) >= 3)
        activity.touch()  # a request begins
        time.sleep(0.1)  # the batch in progress finishes
        held = stored(database)
        time.sleep(0.5)
        # At most the batch under way when the request came in, none after it.
        assert stored(database) == held < 300
