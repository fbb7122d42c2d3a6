"""A flood against live processes: rate limits hold across worker processes, and what is
refused at the door is told to back off.

The server only queues (TRAPLINE_WORKERS=0); two ``trapline worker`` processes share the
queue, so on PostgreSQL they race for the same budget rows. Every bucket stores exactly
min(limit, what reached it): the counters in ``rate_limit_counter`` say what reached each
bucket, so the check is exact even when the flood crosses a minute.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.live.conftest import Backend
from tests.live.support import (
    Api,
    Load,
    StoredState,
    bootstrap,
    exception_event,
    poll,
    post_batch,
    start_worker,
    stored_state,
    workers,
)
from tests.server import running_server

pytestmark = pytest.mark.slow

PROJECT_LIMIT = 100
ISSUE_LIMIT = 30


def test_a_flood_stores_each_budget_once_with_two_workers(backend: Backend, tmp_path: Path):
    flooded = bootstrap(backend.data_dir, "flooded", backend.env)
    noisy = bootstrap(backend.data_dir, "noisy-issues", backend.env)
    with (
        running_server(backend.data_dir, {**backend.env, "TRAPLINE_WORKERS": "0"}) as server,
        stored_state(backend.database_url) as state,
        workers([]) as started,
    ):
        Api(server.url, flooded).update_settings(
            project_rate_limit_value=PROJECT_LIMIT, project_rate_limit_bucket_size_minutes=1
        )
        Api(server.url, noisy).update_settings(
            per_issue_rate_limit_value=ISSUE_LIMIT, per_issue_rate_limit_bucket_size_minutes=1
        )
        env = {**backend.env, "TRAPLINE_WORKER_BATCH_SIZE": "10"}
        for n in range(2):
            started.append(start_worker(backend.data_dir, tmp_path / f"worker-{n}.log", env, "--threads", "1"))

        floods = [
            Load(server.url, flooded.token, threads=4, events_per_request=5, kinds=5, requests_per_thread=250),
            Load(server.url, noisy.token, threads=2, events_per_request=5, kinds=4, requests_per_thread=100),
        ]
        for load in floods:
            load.start()
        for load in floods:
            load.join(timeout=120)
        flood, issues = floods
        assert flood.unanswered == [] and issues.unanswered == []
        assert all(status == 429 for status, _ in flood.refused), flood.refused[:3]
        assert issues.refused == []
        # Once the bucket is spent, capture says so (429 + Retry-After) instead of queueing. A
        # flood quicker than the workers may end before the door learns it: keep knocking.
        knocks: list[int] = []

        def knock() -> int:
            answer = post_batch(server.url, flooded.token, [exception_event(n) for n in range(5)])
            knocks.append(answer.status_code)
            assert answer.status_code in (200, 429), answer.text
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
            return answer.status_code

        if not flood.refused:
            poll(knock, lambda status: status == 429, "capture refusing the spent project", timeout=30)
        sent = {flooded.id: 5000 + 5 * len(knocks), noisy.id: 1000}

        def settled() -> tuple[int, int]:
            return state.queue_length(), _accounted(state, flooded.id) + _accounted(state, noisy.id)

        poll(settled, lambda seen: seen == (0, sum(sent.values())), "every event stored or counted", timeout=120)

        # The project's budget: each bucket stored min(100, what the pipeline saw in it).
        budgets = _counters(state, flooded.id, "scope = ''")
        assert budgets, "no bucket was counted"
        assert _stored(state, flooded.id) == sum(min(PROJECT_LIMIT, count) for count in budgets)
        assert _stored(state, flooded.id) <= PROJECT_LIMIT * len(budgets)
        assert _dropped(state, flooded.id) == {"rate_limited_project": sent[flooded.id] - _stored(state, flooded.id)}

        # Each issue's budget likewise; the project without a project limit has no such row.
        per_issue = _counters(state, noisy.id, "scope <> ''")
        assert _counters(state, noisy.id, "scope = ''") == []
        assert _stored(state, noisy.id) == sum(min(ISSUE_LIMIT, count) for count in per_issue)
        assert _dropped(state, noisy.id) == {"rate_limited_issue": 1000 - _stored(state, noisy.id)}
        # Issue totals count what was stored, nothing else.
        assert all(total == stored for total, stored in state.occurrence_totals().values())

        for worker in started:
            worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            assert worker.process.wait(timeout=60) == 0, worker.log_path.read_text()


def _stored(state: StoredState, project_id: int) -> int:
    return state.scalar(f"SELECT count(*) FROM exception_event WHERE project_id = {project_id}")


def _accounted(state: StoredState, project_id: int) -> int:
    dropped = state.scalar(f"SELECT coalesce(sum(count), 0) FROM dropped_events WHERE project_id = {project_id}")
    return _stored(state, project_id) + dropped


def _dropped(state: StoredState, project_id: int) -> dict[str, int]:
    rows = state.rows(f"SELECT reason, count FROM dropped_events WHERE project_id = {project_id}")
    return {reason: int(count) for reason, count in rows}


def _counters(state: StoredState, project_id: int, where: str) -> list[int]:
    rows = state.rows(f"SELECT count FROM rate_limit_counter WHERE project_id = {project_id} AND {where}")
    return [int(count) for (count,) in rows]
