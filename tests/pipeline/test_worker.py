"""Workers and the queue: exactly-once processing with many workers, leases, poisonous requests."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from tests.capture import exception, exception_event
from tests.factories import Tenant
from trapline import pipeline
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.events.models import ExceptionEvent, QueuedRequest
from trapline.issues.models import Issue, IssueFingerprint
from trapline.worker import Worker, WorkerOptions


def enqueue(database: Database, project_id: int, *requests: Sequence[dict[str, Any]]) -> None:
    queue.enqueue(
        database,
        [
            queue.NewRequest(project_id=project_id, received_at=utcnow(), sent_at=None, payload=orjson.dumps(events))
            for events in requests
        ],
    )


def count(database: Database, model: Any) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stored_uuids(database: Database) -> list[str]:
    with database.session(write=False) as session:
        return [str(u) for u in session.scalars(select(ExceptionEvent.uuid))]


def test_many_workers_process_every_event_exactly_once(database: Database, tenant: Tenant):
    types = ["KeyError", "TypeError", "ValueError", "OSError"]
    requests = [[exception_event(exception(types[(r + e) % 4])) for e in range(3)] for r in range(120)]
    enqueue(database, tenant.project_id, *requests)
    workers = [Worker(database, WorkerOptions(batch_size=7)) for _ in range(4)]
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            worker.drain()
        except BaseException as exc:  # a failing thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    sent = sorted(event["uuid"] for events in requests for event in events)
    assert sorted(stored_uuids(database)) == sent
    assert count(database.queue, QueuedRequest) == 0
    # Four exception types, racing workers: still one issue, and one fingerprint row, each.
    assert count(database, Issue) == 4
    assert count(database, IssueFingerprint) == 4
    with database.session(write=False) as session:
        assert session.scalar(select(func.sum(IssueFingerprint.occurrences))) == len(sent)


def test_a_worker_whose_lease_ran_out_stores_nothing(database: Database, tenant: Tenant):
    event = exception_event()
    enqueue(database, tenant.project_id, [event])
    slow = Worker(database)
    claimed = queue.claim(database, slow.id, 10, timedelta(seconds=60))
    # The slow worker stalls past its lease; another takes the request over and finishes it.
    with database.queue.session(write=True) as session:
        session.execute(update(QueuedRequest).values(claimed_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert Worker(database).drain().stored == 1
    with pytest.raises(queue.LeaseLost):
        pipeline.process_batch(database, slow.id, claimed)
    assert stored_uuids(database) == [event["uuid"]]
    assert count(database, Issue) == 1


def test_a_claimed_request_is_not_claimed_again_while_leased(database: Database, tenant: Tenant):
    enqueue(database, tenant.project_id, [exception_event()], [exception_event()])
    first = queue.claim(database, "a", 1, timedelta(seconds=60))
    second = queue.claim(database, "b", 10, timedelta(seconds=60))
    assert len(first) == len(second) == 1
    assert first[0].id != second[0].id
    assert queue.claim(database, "c", 10, timedelta(seconds=60)) == []


def test_a_request_that_keeps_failing_is_parked_not_lost(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    good, poison = exception_event(), exception_event()
    enqueue(database, tenant.project_id, [good], [poison], [exception_event()])
    real = pipeline.process_batch

    def failing(
        db: Database, worker_id: str, claimed: Sequence[queue.Claimed], resolver: Any = None, **options: Any
    ) -> Any:
        if any(poison["uuid"].encode() in row.payload for row in claimed):
            raise RuntimeError("bug in processing")
        return real(db, worker_id, claimed, resolver, **options)

    monkeypatch.setattr("trapline.worker.process_batch", failing)
    worker = Worker(database, WorkerOptions(max_attempts=2))
    first = worker.drain()
    assert first.stored == 2
    assert poison["uuid"] not in stored_uuids(database)
    # Released for another attempt, then parked: kept in the queue, no longer claimed.
    worker.drain()
    with database.queue.session(write=False) as session:
        [parked] = session.scalars(select(QueuedRequest))
    assert parked.failed_at is not None
    assert "bug in processing" in (parked.last_error or "")
    assert worker.drain().requests == 0

    monkeypatch.setattr("trapline.worker.process_batch", real)
    assert queue.requeue_failed(database) == 1
    assert worker.drain().stored == 1
    assert poison["uuid"] in stored_uuids(database)
    assert count(database.queue, QueuedRequest) == 0


def test_a_database_error_mid_batch_leaves_the_queue_as_it_was(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    enqueue(database, tenant.project_id, [exception_event()])

    def broken_store(*args: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("trapline.pipeline.store_events", broken_store)
    result = Worker(database, WorkerOptions(max_attempts=3)).drain()
    assert result.stored == 0
    # Nothing of the failed batch was written: no issue, no event; the request waits.
    assert count(database, Issue) == 0
    assert count(database, ExceptionEvent) == 0
    assert count(database.queue, QueuedRequest) == 1
    monkeypatch.undo()
    with database.queue.session(write=True) as session:
        session.execute(update(QueuedRequest).values(failed_at=None, claimed_until=None))
        session.commit()
    assert Worker(database).drain().stored == 1


def test_an_empty_queue_is_an_empty_result(database: Database):
    assert Worker(database).drain() == pipeline.BatchResult()


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


@pytest.mark.parametrize(
    ("holder", "taken_over"),
    [
        ("crashed process of this machine", True),
        ("earlier process with this pid", True),  # a container's pid 1 after a restart
        ("process of another machine", False),  # cannot tell: wait for its lease to end
        ("live worker of this process", False),
    ],
)
def test_requests_of_a_dead_local_worker_are_taken_over_at_once(
    database: Database, tenant: Tenant, holder: str, taken_over: bool
):
    host = socket.gethostname()[:30]
    worker_id = {
        "crashed process of this machine": f"{host}:{dead_pid()}:0000",
        "earlier process with this pid": f"{host}:{os.getpid()}:0000",
        "process of another machine": f"elsewhere:{dead_pid()}:0000",
        "live worker of this process": Worker(database).id,
    }[holder]
    enqueue(database, tenant.project_id, [exception_event()])
    queue.claim(database, worker_id, 10, timedelta(hours=1))
    assert Worker(database).drain().stored == (1 if taken_over else 0)
