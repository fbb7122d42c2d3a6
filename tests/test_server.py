"""The real `trapline serve` process: start-up, probes, logs, shutdown, and the seed examples.

The seed pages (PostHog's API reference) show each endpoint as a curl command; here those
commands run, with curl, against a live server. Placeholders (`:project_id`, `:id`, the key,
and the `-d field=undefined` stand-ins of the doc generator) are replaced by real values;
everything else is sent as the page shows it, including a form body under a JSON
Content-Type.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server import Server, run_trapline, running_server, trapline_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    data_dir = tmp_path_factory.mktemp("live") / "data"
    with running_server(data_dir) as live:
        yield live


@pytest.fixture(scope="module")
def creds(server: Server) -> dict[str, object]:
    result = run_trapline(
        "bootstrap", "--email", "seed@example.com", "--password", "password123",
        "--organization", "Seed", "--project", "Seed", "--json",
        env=trapline_env(server.data_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    creds: dict[str, object] = json.loads(result.stdout)
    return creds


def test_health_and_readiness(server: Server):
    assert httpx.get(f"{server.url}/_health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/_readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
        "accepting_events": True,
        "refusing": None,
        "queue": {"events_waiting": 0, "oldest_wait_seconds": 0.0},
        "disk": "ok",
    }


def test_openapi_schema_and_docs_are_served(server: Server):
    # The schema is built on the first request: seconds on a loaded machine.
    schema = httpx.get(f"{server.url}/api/schema/", timeout=30).json()
    assert schema["openapi"].startswith("3.")
    assert "/api/environments/{project_id}/error_tracking/grouping_rules" in schema["paths"]
    assert httpx.get(f"{server.url}/api/schema/swagger-ui/", timeout=30).status_code == 200


def test_logs_are_json_lines(server: Server):
    httpx.get(f"{server.url}/_health")
    lines = [line for line in server.logs().splitlines() if line.strip()]
    assert lines
    entries = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    assert any(entry["msg"] == "serving" for entry in entries)


def curl(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=30, check=True
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


AUTOCAPTURE_FIELDS = {
    "id", "library", "match_type", "sample_rate", "linked_feature_flag", "event_triggers", "url_triggers",
    "url_blocklist",
}  # fmt: skip
TYPE_ERROR = {"key": "$exception_types", "type": "event", "value": ["TypeError"], "operator": "exact"}
FILTERS = json.dumps({"type": "AND", "values": [TYPE_ERROR]})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_examples_with_curl(server: Server, creds: dict[str, object]):
    host, key, pid = server.url, str(creds["personal_api_key"]), creds["project_id"]
    auth = ["-H", f"Authorization: Bearer {key}"]
    env_base = f"{host}/api/environments/{pid}/error_tracking"

    # Autocapture controls: create (a form body under a JSON content type, as printed), retrieve, update, delete.
    status, body = curl(
        "-H", "Content-Type: application/json", *auth, f"{env_base}/autocapture_controls/", "-d", "library=undefined"
    )
    assert status == 201
    created = json.loads(body)
    assert set(created) == AUTOCAPTURE_FIELDS
    assert created["library"] == "web"
    controls_id = created["id"]
    status, body = curl(*auth, f"{env_base}/autocapture_controls/{controls_id}/")
    assert status == 200 and set(json.loads(body)) == AUTOCAPTURE_FIELDS
    status, body = curl(
        "-X", "PATCH", *auth, f"{env_base}/autocapture_controls/{controls_id}/", "-d", "library=undefined"
    )
    assert status == 200 and set(json.loads(body)) == AUTOCAPTURE_FIELDS
    status, body = curl("-X", "DELETE", *auth, f"{env_base}/autocapture_controls/{controls_id}/")
    assert (status, body) == (204, "")

    # Grouping rules: create (real filters for the doc's placeholders), list.
    status, body = curl(
        "-H", "Content-Type: application/json", *auth, f"{env_base}/grouping_rules/",
        "-d", json.dumps({"filters": json.loads(FILTERS), "order_key": 1}),
    )  # fmt: skip
    assert status == 201
    rule = json.loads(body)
    assert {"id", "filters", "assignee", "order_key", "disabled_data"} <= set(rule)
    status, body = curl(*auth, f"{env_base}/grouping_rules/")
    page = json.loads(body)
    assert status == 200 and set(page) == {"count", "next", "previous", "results"}
    assert {"id", "filters", "assignee", "order_key", "disabled_data"} <= set(page["results"][0])

    # Assignment rules: create, list, retrieve, update (204), reorder (200), delete (204).
    assignee = json.dumps({"type": "user", "id": 1})
    status, body = curl(
        "-H", "Content-Type: application/json", *auth, f"{env_base}/assignment_rules/",
        "-d", json.dumps({"filters": json.loads(FILTERS), "assignee": json.loads(assignee)}),
    )  # fmt: skip
    assert status == 201, body
    assignment = json.loads(body)
    fields = {"id", "filters", "assignee", "order_key", "disabled_data", "created_at", "updated_at"}
    assert set(assignment) == fields
    assert assignment["assignee"] == {"type": "user", "id": 1}
    status, body = curl(*auth, f"{env_base}/assignment_rules/")
    assert status == 200 and set(json.loads(body)["results"][0]) == fields
    status, body = curl(*auth, f"{env_base}/assignment_rules/{assignment['id']}/")
    assert status == 200 and set(json.loads(body)) == fields
    status, body = curl(
        "-X", "PATCH", *auth, f"{env_base}/assignment_rules/{assignment['id']}/", "-d", f"filters={FILTERS}"
    )
    assert (status, body) == (204, "")
    status, body = curl(
        "-X", "PATCH", *auth, f"{env_base}/assignment_rules/reorder/",
        "-H", "Content-Type: application/json", "-d", json.dumps({"orders": {assignment["id"]: 3}}),
    )  # fmt: skip
    assert (status, body) == (200, "")
    status, body = curl(*auth, f"{env_base}/assignment_rules/{assignment['id']}/")
    assert json.loads(body)["order_key"] == 3
    status, body = curl("-X", "DELETE", *auth, f"{env_base}/assignment_rules/{assignment['id']}/")
    assert (status, body) == (204, "")

    # Fingerprints: list, retrieve (none exist yet, so a random id is 404), delete is 405.
    status, body = curl(*auth, f"{env_base}/fingerprints/")
    assert status == 200 and json.loads(body) == {"count": 0, "next": None, "previous": None, "results": []}
    status, _ = curl(*auth, f"{env_base}/fingerprints/01a209de-b7fe-7c0a-a311-7fc721487129/")
    assert status == 404
    status, body = curl("-X", "DELETE", *auth, f"{env_base}/fingerprints/01a209de-b7fe-7c0a-a311-7fc721487129/")
    assert (status, body) == (405, "")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_migrates_a_fresh_data_dir_and_stops_cleanly(tmp_path: Path, sig: int):
    with running_server(tmp_path / "fresh") as live:
        assert httpx.get(f"{live.url}/_readyz").status_code == 200
        assert (tmp_path / "fresh" / "trapline.db").exists()
        assert live.stop(sig, timeout=20) == 0
    messages = [json.loads(line)["msg"] for line in live.logs().splitlines() if line.strip()]
    assert any("Shutting down" in message for message in messages)
    assert any("Finished server process" in message for message in messages)
    assert messages[-1] == "stopped"


def test_serve_refuses_unsafe_settings(tmp_path: Path):
    result = run_trapline("serve", env=trapline_env(tmp_path, {"TRAPLINE_SECRET_KEY": "changeme"}))
    assert result.returncode == 2
    assert "TRAPLINE_SECRET_KEY is too weak" in result.stderr


def test_serve_on_postgresql(tmp_path: Path, postgres_admin_url: str):
    from tests.conftest import create_postgres_database, drop_postgres_database

    url = create_postgres_database(postgres_admin_url)
    try:
        with running_server(tmp_path / "pg", {"TRAPLINE_DATABASE_URL": url}) as live:
            assert httpx.get(f"{live.url}/_readyz").json()["migrations"] == "ok"
            assert live.stop() == 0
    finally:
        drop_postgres_database(postgres_admin_url, url)


def _exchange(server: Server, head: str, body: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Send one request over a socket (Connection: close); its status line, headers and body."""
    import socket

    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    status_and_headers, _, answer = received.partition(b"\r\n\r\n")
    status, *headers = status_and_headers.split(b"\r\n")
    return status, sorted(h.lower() for h in headers if not h.lower().startswith(b"date:")), answer


@pytest.mark.parametrize(
    ("path", "content_type", "body", "status"),
    [
        ("/i/v0/e/", "application/json", '{"api_key": "@token", "event": "$exception", "properties": {}}', 200),
        ("/batch/", "application/json", '{"api_key": "phc_nobody", "batch": []}', 401),
        ("/e/?ip=1", "application/json", "{not json", 400),
        ("/api/@project/envelope/", "application/x-sentry-envelope", '{"dsn": "https://wrong@host/1"}\n', 403),
    ],
)
def test_ingestion_answers_alike_whether_the_protocol_answers_it_directly_or_through_asgi(
    server: Server, creds: dict[str, object], path: str, content_type: str, body: str, status: int
):
    # A Content-Length body is answered by the server's protocol itself; a chunked one (not
    # "plain") goes through uvicorn's ASGI cycle to the same handler.
    data = body.replace("@token", str(creds["project_api_token"])).encode()
    path = path.replace("@project", str(creds["project_id"]))
    common = f"POST {path} HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\nContent-Type: {content_type}\r\n"
    direct = _exchange(server, f"{common}Content-Length: {len(data)}\r\nConnection: close\r\n\r\n", data)
    chunked = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    through_asgi = _exchange(server, f"{common}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", chunked)
    assert direct == through_asgi
    assert direct[0].startswith(f"HTTP/1.1 {status} ".encode())
    assert b"access-control-allow-origin: https://app.example" in direct[1]
