"""The capture endpoints over HTTP: paths, bodies, statuses, and what ends up in the queue."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.capture import PAYLOADS, drain, exception_count, exception_event, post_batch, replay
from tests.factories import Tenant
from trapline.app import create_app
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent, QueuedPayload
from trapline.settings import Settings, load_settings

CAPTURE_PATHS = ["/batch", "/e", "/i/v0/e", "/capture", "/track"]


def queued_events(database: Database) -> list[dict[str, Any]]:
    with database.queue.session(write=False) as session:
        payloads = session.scalars(select(QueuedPayload.payload).order_by(QueuedPayload.id)).all()
    return [event for payload in payloads for event in json.loads(payload)]


def stored_count(database: Database) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(ExceptionEvent)) or 0


@pytest.mark.parametrize("path", [p + slash for p in CAPTURE_PATHS for slash in ("", "/")])
def test_every_capture_path_queues_exceptions_and_answers_200(
    client: TestClient, tenant: Tenant, database: Database, path: str
):
    event = exception_event()
    response = post_batch(client, tenant.project_token, event, path=path)
    assert response.status_code == 200
    assert response.json() == {"status": 1}
    assert [e["uuid"] for e in queued_events(database)] == [event["uuid"]]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in PAYLOADS.glob("posthog-*.json") if "flags" not in p.name), ids=str
)
def test_real_sdk_requests_are_accepted_and_become_issues(
    client: TestClient, tenant: Tenant, database: Database, name: str
):
    response = replay(client, name, tenant.project_token)
    assert response.status_code == 200
    expected = exception_count(name)
    result = drain(database)
    assert (result.events, result.stored) == (expected, expected)
    assert stored_count(database) == expected
    issues = client.get(
        f"/api/projects/{tenant.project_id}/error_tracking/issues/?date_from=all", headers=tenant.headers()
    ).json()
    assert sum(issue["aggregations"]["occurrences"] for issue in issues["results"]) == expected


def golden_fingerprint(name: str) -> str:
    snapshot = Path(__file__).parents[1] / "golden" / "snapshots" / "cymbal-v1" / f"{name}.txt"
    line = next(line for line in snapshot.read_text().splitlines() if line.startswith("fingerprint: "))
    return line.removeprefix("fingerprint: ")


@pytest.mark.parametrize(
    ("payload", "golden"),
    [
        (
            "posthog-python-7.91.1_batch_capture_exception_gzip.json",
            "posthog-python-7.91.1_batch_capture_exception_gzip",
        ),
        (
            "posthog-js-1.449.2_i_v0_e_batch_3_exceptions_gzip.json",
            "posthog-js-1.449.2_i_v0_e_batch_3_exceptions_gzip__1",
        ),
    ],
)
def test_stored_fingerprints_are_the_golden_ones(
    client: TestClient, tenant: Tenant, database: Database, payload: str, golden: str
):
    replay(client, payload, tenant.project_token)
    drain(database)
    with database.session(write=False) as session:
        fingerprints = set(session.scalars(select(ExceptionEvent.fingerprint)))
    assert golden_fingerprint(golden) in fingerprints


def test_events_other_than_exceptions_are_accepted_and_not_stored(
    client: TestClient, tenant: Tenant, database: Database
):
    pageview = {"event": "$pageview", "distinct_id": "u1", "properties": {"$current_url": "https://x.test/"}}
    assert post_batch(client, tenant.project_token, pageview).status_code == 200
    assert (
        replay(client, "posthog-python-7.91.1_batch_plain_capture_gzip.json", tenant.project_token).status_code == 200
    )
    assert queued_events(database) == []


def test_one_event_object_and_a_bare_list_are_bodies_too(client: TestClient, tenant: Tenant, database: Database):
    single = exception_event(api_key=tenant.project_token)
    single["api_key"] = tenant.project_token
    assert client.post("/e/", json=single).status_code == 200
    listed = exception_event()
    listed["properties"]["token"] = tenant.project_token
    assert client.post("/e/", json=[listed]).status_code == 200
    assert [e["uuid"] for e in queued_events(database)] == [single["uuid"], listed["uuid"]]


def _body(token: str, event: dict[str, Any]) -> bytes:
    return json.dumps({"api_key": token, "batch": [event]}).encode()


@pytest.mark.parametrize(
    ("encode", "headers", "query"),
    [
        (gzip.compress, {"Content-Encoding": "gzip"}, ""),
        (gzip.compress, {"Content-Type": "text/plain"}, ""),  # posthog-js: magic bytes only
        (gzip.compress, {"Content-Type": "text/plain"}, "?compression=gzip-js"),  # older posthog-js
        (zlib.compress, {"Content-Encoding": "deflate"}, ""),
        (
            lambda raw: b"data=" + quote(base64.b64encode(raw)).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
            "?compression=base64",
        ),
    ],
    ids=["gzip-header", "gzip-magic", "gzip-js-hint", "deflate", "base64-form"],
)
def test_compressed_bodies(
    client: TestClient, tenant: Tenant, database: Database, encode: Any, headers: dict[str, str], query: str
):
    event = exception_event()
    response = client.post(f"/i/v0/e/{query}", content=encode(_body(tenant.project_token, event)), headers=headers)
    assert response.status_code == 200, response.text
    assert [e["uuid"] for e in queued_events(database)] == [event["uuid"]]


def test_v1_protocol_takes_the_bearer_token_and_answers_per_event(
    client: TestClient, tenant: Tenant, database: Database
):
    events = [exception_event(), exception_event()]
    response = client.post(
        "/i/v1/analytics/events",
        content=gzip.compress(json.dumps({"created_at": "2026-11-23T18:41:40Z", "batch": events}).encode()),
        headers={"Authorization": f"Bearer {tenant.project_token}", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.json() == {"results": {e["uuid"]: {"result": "ok"} for e in events}}
    assert len(queued_events(database)) == 2


def test_v1_events_get_their_library_from_the_sdk_info_header(client: TestClient, tenant: Tenant, database: Database):
    event = exception_event()
    del event["properties"]["$lib"], event["properties"]["$lib_version"]
    response = client.post(
        "/i/v1/analytics/events",
        json={"batch": [event]},
        headers={"Authorization": f"Bearer {tenant.project_token}", "PostHog-Sdk-Info": "posthog-python/7.91.1"},
    )
    assert response.status_code == 200
    [queued] = queued_events(database)
    assert (queued["properties"]["$lib"], queued["properties"]["$lib_version"]) == ("posthog-python", "7.91.1")


def test_v1_reports_oversized_events_as_dropped(tmp_path: Path, database: Database, tenant: Tenant):
    settings = load_settings(
        data_dir=tmp_path, database_url=str(database.engine.url), workers=0, ingest_event_max_size="2KiB"
    )
    small, big = exception_event(), exception_event(padding="x" * 4096)
    with TestClient(create_app(settings, database)) as client:
        response = client.post(
            "/i/v1/analytics/events/",
            json={"batch": [small, big]},
            headers={"Authorization": f"Bearer {tenant.project_token}"},
        )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[small["uuid"]] == {"result": "ok"}
    assert results[big["uuid"]]["result"] == "drop"
    assert "over the 2048-byte limit" in results[big["uuid"]]["details"]
    assert [e["uuid"] for e in queued_events(database)] == [small["uuid"]]


def error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}
    return body


def test_missing_token_is_401(client: TestClient, database: Database):
    response = client.post("/batch/", json={"batch": [exception_event()]})
    assert response.status_code == 401
    assert error(response)["code"] == "no_api_key"
    assert queued_events(database) == []


@pytest.mark.parametrize("token", ["phc_not_a_project", "phc_\x00"])  # PostgreSQL refuses NUL in a query
def test_unknown_token_is_401(client: TestClient, tenant: Tenant, database: Database, token: str):
    response = post_batch(client, token, exception_event())
    assert response.status_code == 401
    assert error(response)["code"] == "invalid_api_key"
    assert queued_events(database) == []


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"{not json", {"Content-Type": "application/json"}, "JSON"),
        (b"\x1f\x8b\x08\x00garbage", {"Content-Type": "text/plain"}, "gzip"),
        (b"plain text", {"Content-Encoding": "gzip"}, "gzip"),
        (b'"a string"', {"Content-Type": "application/json"}, "a string"),
    ],
    ids=["json", "gzip-magic", "gzip-header", "not-an-event"],
)
def test_undecodable_bodies_are_400_saying_why(
    client: TestClient, tenant: Tenant, body: bytes, headers: dict[str, str], message: str
):
    response = client.post("/batch/", content=body, headers=headers)
    assert response.status_code == 400
    detail = error(response)["detail"]
    assert message.lower() in detail.lower()


@pytest.fixture
def small_limits(tmp_path: Path, database: Database) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path,
        database_url=str(database.engine.url),
        workers=0,
        ingest_event_max_size="4KiB",
        ingest_body_max_size="16KiB",
        ingest_decompressed_max_size="64KiB",
    )
    with TestClient(create_app(settings, database)) as client:
        yield client


def test_body_over_the_limit_is_413(small_limits: TestClient, tenant: Tenant, database: Database):
    body = _body(tenant.project_token, exception_event(padding="x" * 20_000))
    response = small_limits.post("/batch/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "16384" in error(response)["detail"]
    assert queued_events(database) == []


def test_decompression_bomb_is_413(small_limits: TestClient, tenant: Tenant, database: Database):
    bomb = gzip.compress(b'{"batch": [' + b" " * 10_000_000 + b"]}")
    assert len(bomb) < 16 * 1024
    response = small_limits.post("/batch/", content=bomb, headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert queued_events(database) == []


def test_an_oversized_event_is_dropped_and_the_rest_kept(small_limits: TestClient, tenant: Tenant, database: Database):
    small, big = exception_event(), exception_event(padding="x" * 8000)
    assert post_batch(small_limits, tenant.project_token, small, big).status_code == 200
    assert [e["uuid"] for e in queued_events(database)] == [small["uuid"]]


def test_get_is_405_and_preflight_is_answered(client: TestClient):
    assert client.get("/batch/").status_code == 405
    response = client.options(
        "/i/v0/e/",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_browser_posts_get_cors_headers(client: TestClient, tenant: Tenant):
    response = client.post(
        "/e/", content=_body(tenant.project_token, exception_event()), headers={"Origin": "https://app.example"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_capture_needs_a_running_spool(settings: Settings, database: Database, tenant: Tenant):
    # Without the lifespan (no `with`), nothing can be made durable: refuse rather than lose.
    client = TestClient(create_app(settings, database))
    response = post_batch(client, tenant.project_token, exception_event())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "10"
    assert queued_events(database) == []
