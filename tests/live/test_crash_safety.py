"""Durability: a 200 means the event is kept, whatever kills the process afterwards.

The server (or a worker) is SIGKILLed in the middle of real load; after a restart on the same
data dir the queue must drain with every accepted event stored exactly once, no event stored
that was never sent, and every fingerprint's running occurrence total equal to its stored
events. Requests that got no answer are sent again, as an SDK retries them, and must not be
counted twice.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.live.conftest import Backend
from tests.live.support import (
    Api,
    Load,
    assert_exactly_once,
    bootstrap,
    occurrences,
    poll,
    post_batch,
    sqlite_url,
    start_worker,
    stored_state,
    workers,
)
from tests.server import running_server

pytestmark = pytest.mark.slow

# Leases far longer than the tests: a restarted process must take over what a killed one of
# this machine held at once, not when the lease runs out.
LONG_LEASE = {"TRAPLINE_WORKER_LEASE_SECONDS": "3600"}


def test_server_killed_under_load_keeps_every_accepted_event(tmp_path: Path):
    data_dir = tmp_path / "data"
    project = bootstrap(data_dir, "crash")
    with running_server(data_dir, LONG_LEASE) as server:
        load = Load(server.url, project.token, threads=4, events_per_request=5)
        load.start()
        poll(load.accepted_count, lambda n: n >= 300, "300 accepted requests")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        load.join()
    assert load.refused == []
    assert len(load.accepted) >= 300

    with running_server(data_dir, LONG_LEASE) as server, stored_state(sqlite_url(data_dir)) as state:
        # SDKs send again what got no answer; those events may or may not have been queued already.
        for batch in load.unanswered:
            assert post_batch(server.url, project.token, batch).status_code == 200
        poll(state.queue_length, lambda n: n == 0, "the queue to drain after the restart")
        sent = load.sent_uuids()
        assert_exactly_once(state, must=sent, may=sent)
        issues = Api(server.url, project).issues()
        assert len(issues) == load.kinds
        assert occurrences(issues) == len(sent)


def test_worker_killed_mid_drain_stores_each_event_once(backend: Backend, tmp_path: Path):
    project = bootstrap(backend.data_dir, "worker-crash", backend.env)
    with running_server(backend.data_dir, {**backend.env, "TRAPLINE_WORKERS": "0"}) as server:
        load = Load(server.url, project.token, threads=4, events_per_request=5, requests_per_thread=150)
        load.run()
        assert server.stop() == 0
    assert (len(load.accepted), load.unanswered, load.refused) == (600, [], [])
    accepted = load.accepted_uuids()

    # Small batches: many transactions, so that a kill lands in the middle of the drain.
    env = {**backend.env, **LONG_LEASE, "TRAPLINE_WORKER_BATCH_SIZE": "4"}
    with stored_state(backend.database_url) as state, workers([]) as started:
        assert state.queue_length() == 600
        for round_ in range(3):
            before = state.stored_count()
            worker = start_worker(backend.data_dir, tmp_path / f"worker-{round_}.log", env)
            started.append(worker)
            poll(state.stored_count, lambda n, before=before: n >= before + 150, f"worker {round_} to make progress")
            worker.process.send_signal(signal.SIGKILL)
            assert worker.process.wait(timeout=10) == -signal.SIGKILL
            assert state.queue_length() > 0, "the worker finished before it could be killed"

        last = start_worker(backend.data_dir, tmp_path / "worker-last.log", env)
        started.append(last)
        # In batches of four, with the rest of the suite running beside it on two cores, the
        # last ~150 requests once took over 30 s to drain (PostgreSQL, CI).
        poll(state.queue_length, lambda n: n == 0, "the last worker to drain the queue", timeout=120)
        last.process.send_signal(signal.SIGTERM)
        assert last.process.wait(timeout=30) == 0
        assert_exactly_once(state, must=accepted, may=accepted)
