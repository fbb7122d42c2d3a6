"""`trapline serve`'s idle worker, live: the server turns queued events into issues by itself
once it is quiet, with no worker process at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from posthog import Posthog

from tests.live.conftest import Backend
from tests.live.support import Api, bootstrap, poll
from tests.server import running_server

pytestmark = pytest.mark.slow


def _fail(order: int) -> None:
    raise KeyError(f"order {order}")


def test_a_server_without_worker_processes_processes_events_while_quiet(backend: Backend):
    project = bootstrap(backend.data_dir, "idle", backend.env)
    env = {**backend.env, "TRAPLINE_WORKERS": "0", "TRAPLINE_IDLE_WORKER": "true"}
    with running_server(backend.data_dir, env) as server:
        errors: list[Exception] = []
        client = Posthog(project.token, host=server.url, on_error=lambda e, batch: errors.append(e), max_retries=0)
        for order in range(5):
            try:
                _fail(order)
            except KeyError as exc:
                client.capture_exception(exc, distinct_id="buyer-1")
        client.shutdown()  # flushed
        assert errors == []
        api = Api(server.url, project)
        # Polled slowly: each poll is a request, and the idle worker waits for a quiet server.
        issues = poll(
            api.issues, lambda found: sum(i["aggregations"]["occurrences"] for i in found) == 5, "5 events", every=0.5
        )
        assert [issue["name"] for issue in issues] == ["KeyError"]
        assert "idle worker started" in server.logs()


def test_a_server_without_worker_processes_has_no_idle_worker_unless_asked(tmp_path: Path):
    data_dir = tmp_path / "data"
    bootstrap(data_dir, "no-idle")
    with running_server(data_dir, {"TRAPLINE_WORKERS": "0"}) as server:
        assert server.stop() == 0
        assert "idle worker started" not in server.logs()
