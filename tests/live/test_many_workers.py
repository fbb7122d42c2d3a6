"""Several ``trapline worker`` processes drain one queue, and no two take the same request.

The server only queues (TRAPLINE_WORKERS=0). Three workers are started first, and only once
each says it is running does the load begin, so that they all claim from the queue while it
fills (started after it had filled, one worker could drain it before a slow machine had even
started the next). Small batches make their claims interleave. Each worker reports what it
processed when it stops: the requests add up to those queued (a request taken twice would be
counted twice, and its second processing would end in a "taken over" warning), and every
accepted event is stored exactly once, in one issue per fingerprint.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.live.conftest import Backend
from tests.live.support import (
    Api,
    Load,
    WorkerProcess,
    assert_exactly_once,
    bootstrap,
    poll,
    start_worker,
    stored_state,
    workers,
)
from tests.server import running_server

pytestmark = pytest.mark.slow

WORKERS = 3
KINDS = 40  # distinct fingerprints: the workers race to create the same issues


def test_workers_share_one_queue_without_overlap(backend: Backend, tmp_path: Path):
    project = bootstrap(backend.data_dir, "many-workers", backend.env)
    env = {**backend.env, "TRAPLINE_WORKER_BATCH_SIZE": "5"}
    with (
        running_server(backend.data_dir, {**backend.env, "TRAPLINE_WORKERS": "0"}) as server,
        stored_state(backend.database_url) as state,
        workers([]) as started,
    ):
        for n in range(WORKERS):
            started.append(start_worker(backend.data_dir, tmp_path / f"worker-{n}.log", env, "--threads", "1"))
        poll(lambda: [_said(worker, "worker started") for worker in started], all, "every worker running")

        load = Load(server.url, project.token, threads=4, events_per_request=5, kinds=KINDS, requests_per_thread=150)
        load.run()
        assert (len(load.accepted), load.unanswered, load.refused) == (600, [], [])
        accepted = load.accepted_uuids()
        assert len(accepted) == 3000
        poll(lambda: (state.queue_length(), state.stored_count()), lambda seen: seen == (0, 3000), "queue drained")

        for worker in started:
            worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            assert worker.process.wait(timeout=60) == 0, worker.log_path.read_text()

        logs = [worker.log_entries() for worker in started]
        trouble = [entry for entries in logs for entry in entries if entry["level"] not in {"debug", "info"}]
        assert trouble == []
        done = [_stopped_report(entries) for entries in logs]
        assert all(report["requests"] > 0 for report in done), done  # they did run side by side
        assert sum(report["requests"] for report in done) == 600
        assert sum(report["events"] for report in done) == 3000
        assert sum(report["stored"] for report in done) == 3000
        assert_exactly_once(state, must=accepted, may=accepted)

        per_kind = Counter(event["properties"]["$exception_list"][0]["type"] for b in load.accepted for event in b)
        issues = Api(server.url, project).issues()
        assert {issue["name"]: issue["aggregations"]["occurrences"] for issue in issues} == dict(per_kind)


def _said(worker: WorkerProcess, message: str) -> bool:
    # The raw text, not parsed lines: the worker may be halfway through writing its next one.
    return f'"{message}"' in worker.log_path.read_text()


def _stopped_report(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What a worker says it processed over its life, when it stops: requests, events, stored."""
    [report] = [entry for entry in entries if entry["msg"] == "worker stopped"]
    return report
