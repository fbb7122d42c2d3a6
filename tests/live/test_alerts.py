"""Alerts from a live ``trapline serve``, driven by the real posthog-python, heard by a local
webhook receiver; and the outbox surviving a worker killed with SIGKILL, on both backends.

The spike story needs an hour of quiet history, which a test cannot wait for: the issue's
earlier 5-minute buckets are written into ``issue_bucket`` directly (2 events in each), which
is what an hour of 2 exceptions per 5 minutes would have left there.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from posthog import Posthog
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.alerts.receiver import Answer, Receiver, receiving
from tests.live.conftest import Backend
from tests.live.support import Api, Project, bootstrap, poll, start_worker, workers
from tests.server import Server, running_server

pytestmark = pytest.mark.slow

OPEN = {"TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS": "true", "TRAPLINE_ALERTS_POLL_SECONDS": "0.2"}


class CheckoutFailed(Exception):
    pass


class PaymentBurst(Exception):
    pass


class SlowQuery(Exception):
    pass


def _raise(kind: type[Exception], message: str) -> None:
    raise kind(message)


def capture(client: Posthog, kind: type[Exception], message: str = "boom", times: int = 1) -> None:
    for n in range(times):
        try:
            _raise(kind, message)
        except Exception as exc:
            client.capture_exception(exc, distinct_id=f"buyer-{n % 3}")
    client.flush()


def alert(api: Api, name: str, trigger: dict[str, Any], url: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "trigger": trigger, "destination": {"type": "webhook", "url": url}, **extra}
    response = httpx.post(f"{api.base}/alerts/", json=body, headers=api.headers, timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def of_type(kind: type[Exception]) -> dict[str, Any]:
    """Filters: the event's exception is of this type."""
    return {"type": "AND", "values": [{"key": "$exception_types", "type": "event", "operator": "exact",
                                       "value": [kind.__name__]}]}  # fmt: skip


def by_path(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [request.json() for request in receiver.received() if request.path == path]


def settle(receiver: Receiver, seconds: float = 1.5) -> None:
    """Give anything still on its way time to arrive, so that "no second message" means it."""
    time.sleep(seconds)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("alerts") / "data", OPEN) as live:
        yield live


def test_posthog_python_errors_reach_a_webhook_as_created_reopened_spiking_and_frequency(server: Server):
    project = bootstrap(server.data_dir, "alerts-story")
    api = Api(server.url, project)
    client = Posthog(project.token, host=server.url, max_retries=0)
    config = httpx.patch(f"{api.base}/spike_detection_config/update_config/", json={"threshold": 10},
                         headers=api.headers, timeout=10)  # fmt: skip
    assert config.status_code == 200, config.text
    with receiving() as receiver:
        alert(api, "new", {"type": "issue_created"}, receiver.url + "/created", filters=of_type(CheckoutFailed))
        alert(api, "back", {"type": "issue_reopened"}, receiver.url + "/reopened")
        alert(api, "spikes", {"type": "issue_spiking"}, receiver.url + "/spiking")
        alert(api, "often", {"type": "issue_frequency", "threshold": 5, "window_minutes": 10},
              receiver.url + "/frequency", filters=of_type(SlowQuery))  # fmt: skip

        # A new exception: one "created", in PostHog's shape.
        capture(client, CheckoutFailed, "card declined")
        [created] = poll(lambda: by_path(receiver, "/created"), lambda found: len(found) >= 1, "created message")
        [issue] = api.issues()
        assert created["event"]["event"] == "$error_tracking_issue_created"
        assert created["event"]["distinct_id"] == issue["id"]
        properties = created["event"]["properties"]
        assert (properties["name"], properties["description"]) == ("CheckoutFailed", "card declined")
        assert properties["exception_props"]["$lib"] == "posthog-python"
        assert properties["exception_props"]["$exception_issue_id"] == issue["id"]
        assert created["event"]["url"] == f"{server.url}/project/{project.id}/error_tracking/{issue['id']}"
        assert created["project"]["id"] == project.id

        # Resolved in the API, then the same exception again: one "reopened".
        resolved = httpx.patch(f"{api.base}/issues/{issue['id']}/", json={"status": "resolved"},
                               headers=api.headers, timeout=10)  # fmt: skip
        assert resolved.status_code in (200, 204), resolved.text
        capture(client, CheckoutFailed, "card declined")
        [reopened] = poll(lambda: by_path(receiver, "/reopened"), lambda found: len(found) >= 1, "reopened message")
        assert reopened["event"]["event"] == "$error_tracking_issue_reopened"
        assert reopened["event"]["distinct_id"] == issue["id"]

        # A quiet hour, then a burst: one "spiking", and no second one within the cooldown.
        capture(client, PaymentBurst, "gateway timeout")
        burst_issue = poll(
            lambda: [i for i in api.issues() if i["name"] == "PaymentBurst"], lambda found: len(found) == 1, "issue"
        )[0]
        _quiet_hour(server, project, burst_issue["id"])
        capture(client, PaymentBurst, "gateway timeout", times=30)
        [spiking] = poll(lambda: by_path(receiver, "/spiking"), lambda found: len(found) >= 1, "spiking message")
        assert spiking["event"]["event"] == "$error_tracking_issue_spiking"
        assert spiking["event"]["distinct_id"] == burst_issue["id"]
        assert spiking["event"]["properties"]["computed_baseline"] == 2.0
        assert spiking["event"]["properties"]["current_bucket_value"] > 20
        capture(client, PaymentBurst, "gateway timeout", times=60)
        poll(api.issues, lambda found: _occurrences(found, "PaymentBurst") == 91, "second burst stored")
        settle(receiver)
        assert len(by_path(receiver, "/spiking")) == 1

        # A frequency alert fires once at its threshold, not before and not again.
        capture(client, SlowQuery, "timeout", times=5)
        poll(api.issues, lambda found: _occurrences(found, "SlowQuery") == 5, "5 slow queries")
        settle(receiver)
        assert by_path(receiver, "/frequency") == []
        capture(client, SlowQuery, "timeout")
        [frequent] = poll(lambda: by_path(receiver, "/frequency"), lambda found: len(found) >= 1, "frequency message")
        assert frequent["event"]["properties"]["count"] == 6
        capture(client, SlowQuery, "timeout", times=5)
        poll(api.issues, lambda found: _occurrences(found, "SlowQuery") == 11, "more slow queries")
        settle(receiver)
        assert len(by_path(receiver, "/frequency")) == 1
        assert len(by_path(receiver, "/created")) == 1  # the filters kept the other issues out
    client.shutdown()

    log = httpx.get(f"{api.base}/alerts/deliveries/", headers=api.headers, timeout=10).json()
    assert {d["status"] for d in log["results"]} == {"delivered"}
    assert sorted(d["kind"] for d in log["results"]) == sorted(
        ["issue_created", "issue_reopened", "issue_spiking", "issue_frequency"]
    )


def _occurrences(issues: list[dict[str, Any]], name: str) -> int:
    return sum(int(i["aggregations"]["occurrences"]) for i in issues if i["name"] == name)


def _quiet_hour(server: Server, project: Project, issue_id: str) -> None:
    seconds = int(time.time())
    current = datetime.fromtimestamp(seconds - seconds % 300, UTC)
    engine = create_engine(f"sqlite:///{server.data_dir / 'trapline.db'}", poolclass=NullPool)
    with engine.begin() as connection:
        for n in range(1, 12):
            start = (current - timedelta(minutes=5 * n)).strftime("%Y-%m-%d %H:%M:%S.%f")
            connection.execute(
                text("INSERT INTO issue_bucket (issue_id, bucket_start, project_id, count) VALUES (:i, :s, :p, 2)"),
                {"i": uuid.UUID(issue_id).hex, "s": start, "p": project.id},
            )
    engine.dispose()


# --- the outbox and a worker killed with SIGKILL -----------------------------------------------------


@contextmanager
def tarpit() -> Iterator[int]:
    """A port that takes connections (the kernel completes them) and never reads a byte: a
    request sent there has left the worker but reached no receiver."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def _leased(backend: Backend) -> bool:
    engine = create_engine(backend.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return bool(connection.execute(text("SELECT count(*) FROM alert_delivery WHERE claimed_by IS NOT NULL"))
                        .scalar_one())  # fmt: skip
    finally:
        engine.dispose()


CRASH_ENV = {**OPEN, "TRAPLINE_ALERTS_TIMEOUT_SECONDS": "30"}


def _new_issue_alerting(server: Server, project: Project, hook: str) -> None:
    alert(Api(server.url, project), "crash", {"type": "issue_created"}, hook)
    client = Posthog(project.token, host=server.url, max_retries=0)
    capture(client, CheckoutFailed, "card declined")
    client.shutdown()


def _delivered_after_restart(backend: Backend, project: Project, tmp_path: Path, started: list[Any]) -> None:
    env = {**backend.env, **CRASH_ENV}
    with running_server(backend.data_dir, {**env, "TRAPLINE_WORKERS": "0"}) as server:
        started.append(start_worker(backend.data_dir, tmp_path / "worker-2.log", env))
        api = Api(server.url, project)
        poll(
            lambda: httpx.get(f"{api.base}/alerts/deliveries/", headers=api.headers, timeout=10).json()["results"],
            lambda found: [d["status"] for d in found] == ["delivered"],
            "the notification delivered after the restart",
        )


def test_a_worker_killed_after_the_commit_and_before_the_send_delivers_it_once_after_restart(
    backend: Backend, tmp_path: Path
):
    env = {**backend.env, **CRASH_ENV}
    project = bootstrap(backend.data_dir, "alerts-crash", env)
    with workers([]) as started:
        with running_server(backend.data_dir, {**env, "TRAPLINE_WORKERS": "0"}) as server, tarpit() as port:
            _new_issue_alerting(server, project, f"http://127.0.0.1:{port}/hook")
            first = start_worker(backend.data_dir, tmp_path / "worker-1.log", env)
            started.append(first)
            # Committed and leased; its request sits unread in the tarpit, received by no one.
            poll(lambda: _leased(backend), bool, "the notification leased by the worker")
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
        # What was written to the tarpit went with it; a real receiver takes its port.
        with receiving(Answer(200), port=port) as receiver:
            _delivered_after_restart(backend, project, tmp_path, started)
            settle(receiver)
            requests = receiver.received()
    assert len(requests) == 1
    assert requests[0].json()["event"]["properties"]["name"] == "CheckoutFailed"


def test_a_worker_killed_mid_send_resends_with_the_same_idempotency_key(backend: Backend, tmp_path: Path):
    env = {**backend.env, **CRASH_ENV}
    project = bootstrap(backend.data_dir, "alerts-crash", env)
    # The first send hangs (the worker dies in it); the second is answered.
    with workers([]) as started, receiving(Answer(200, delay=60), Answer(200)) as receiver:
        with running_server(backend.data_dir, {**env, "TRAPLINE_WORKERS": "0"}) as server:
            _new_issue_alerting(server, project, receiver.url + "/hook")
            first = start_worker(backend.data_dir, tmp_path / "worker-1.log", env)
            started.append(first)
            poll(lambda: len(receiver.received()), lambda n: n >= 1, "the first send under way")
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
        _delivered_after_restart(backend, project, tmp_path, started)
        settle(receiver)
        requests = receiver.received()
    assert len(requests) == 2
    assert len({request.headers["idempotency-key"] for request in requests}) == 1, "one message, twice"
