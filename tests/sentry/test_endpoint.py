"""``/api/<id>/envelope/`` and ``/api/<id>/store/`` through the app: auth, encodings, limits,
items that are not events, and the events processed into issues."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import brotli
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.capture import drain
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent, QueuedRequest
from trapline.projects.models import Project

PAYLOADS = Path(__file__).parent.parent / "ingest" / "payloads"
ENVELOPE = "application/x-sentry-envelope"


def sentry_key(database: Database, tenant: Tenant) -> str:
    with database.session(write=False) as session:
        key = session.scalar(select(Project.sentry_public_key).where(Project.id == tenant.project_id))
    assert key is not None
    return key


def auth(key: str) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0"}


def captured(name: str) -> bytes:
    return (PAYLOADS / f"sentry-python-2.75.0_envelope_{name}_event.envelope.txt").read_bytes()


def envelope(*items: tuple[dict[str, Any], bytes], **headers: Any) -> bytes:
    lines = [orjson.dumps(headers)]
    for item_headers, payload in items:
        lines += [orjson.dumps(item_headers), payload]
    return b"\n".join(lines) + b"\n"


def event_item(**event: Any) -> tuple[dict[str, Any], bytes]:
    return {"type": "event"}, orjson.dumps(event)


def stored(database: Database, tenant: Tenant) -> list[ExceptionEvent]:
    with database.session(write=False) as session:
        return list(session.scalars(select(ExceptionEvent).where(ExceptionEvent.project_id == tenant.project_id)))


def queued(database: Database) -> int:
    """Events queued (a queue may also hold counts of drops, which have none)."""
    with database.queue.session(write=False) as session:
        return session.scalar(select(func.coalesce(func.sum(QueuedRequest.event_count), 0)))


def drops(client: TestClient, tenant: Tenant) -> dict[str, int]:
    response = client.get(f"/api/projects/{tenant.project_id}/error_tracking/dropped_events", headers=tenant.headers())
    return {row["reason"]: row["count"] for row in response.json()["results"]}


@pytest.mark.parametrize("name", ["exception", "message"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", None])
def test_the_captured_envelopes_are_accepted_and_processed(
    client: TestClient, tenant: Tenant, database: Database, name: str, encoding: str | None
):
    body = captured(name)
    compress = {"gzip": gzip.compress, "br": brotli.compress, "deflate": zlib.compress, None: lambda b: b}[encoding]
    headers = {"Content-Type": ENVELOPE, **auth(sentry_key(database, tenant))}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = client.post(f"/api/{tenant.project_id}/envelope/", content=compress(body), headers=headers)
    assert response.status_code == 200, response.text
    event_id = json.loads(body.split(b"\n")[0])["event_id"]
    assert response.json() == {"id": event_id}
    drain(database)
    [event] = stored(database, tenant)
    assert event.uuid.hex == event_id
    types = event.properties["$exception_types"]
    assert types == (["ValueError", "ZeroDivisionError"] if name == "exception" else ["Info"])
    assert event.properties["$lib"] == "sentry.python"
    assert event.properties["$exception_issue_id"]


def test_the_key_may_come_in_the_query_or_the_envelope_header(client: TestClient, tenant: Tenant, database: Database):
    key = sentry_key(database, tenant)
    body = envelope(event_item(message="by query"), event_id="0" * 32)
    by_query = client.post(f"/api/{tenant.project_id}/envelope/?sentry_key={key}&sentry_version=7", content=body)
    assert by_query.status_code == 200, by_query.text
    tunneled = envelope(event_item(message="tunneled"), dsn=f"https://{key}@trapline.example/{tenant.project_id}")
    assert client.post(f"/api/{tenant.project_id}/envelope", content=tunneled).status_code == 200
    old_style = client.post(
        f"/api/{tenant.project_id}/envelope/",
        content=envelope(event_item(message="authorization header")),
        headers={"Authorization": f"Sentry sentry_key={key}, sentry_secret=ignored"},
    )
    assert old_style.status_code == 200
    assert old_style.json() != {}
    drain(database)
    assert sorted(e.properties["$exception_values"][0] for e in stored(database, tenant)) == [
        "authorization header",
        "by query",
        "tunneled",
    ]


def test_refusals_say_why_in_relays_shape(client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database):
    body = envelope(event_item(message="m"))
    path = f"/api/{tenant.project_id}/envelope/"
    missing = client.post(path, content=body)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "missing authorization information"}
    wrong = client.post(path, content=body, headers=auth(sentry_key(database, other_tenant)))
    assert wrong.status_code == 403
    assert "not the DSN key of project" in wrong.json()["detail"]
    unknown_project = client.post("/api/999999/envelope/", content=body, headers=auth("0" * 32))
    assert unknown_project.status_code == 403
    assert client.get(path, headers=auth(sentry_key(database, tenant))).status_code == 405
    assert queued(database) == 0


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"not json\n", None, "The envelope header is not valid JSON"),
        (b'{}\n{"type":"event"}\n{broken\n', None, "the event item is not valid JSON"),
        (b'{}\n{"type":"event"}\n[1]\n', None, "the event item must be a JSON object"),
        (b"\x1f\x8b\x08\x00garbage", "gzip", "is not valid gzip"),
        (b"{}", "compress", "Content-Encoding 'compress' is not supported"),
    ],
)
def test_bad_bodies_are_400_with_the_reason(
    client: TestClient, tenant: Tenant, database: Database, body: bytes, encoding: str | None, message: str
):
    headers = auth(sentry_key(database, tenant))
    if encoding:
        headers["Content-Encoding"] = encoding
    response = client.post(f"/api/{tenant.project_id}/envelope/", content=body, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert queued(database) == 0


def test_relays_size_limits(client: TestClient, tenant: Tenant, database: Database):
    headers = auth(sentry_key(database, tenant))
    path = f"/api/{tenant.project_id}/envelope/"
    big_event = envelope(event_item(message="x" * (1024 * 1024)))
    response = client.post(path, content=big_event, headers=headers)
    assert response.status_code == 413
    assert "over the 1048576-byte limit" in response.json()["detail"]
    # 100 MiB once decompressed: a small gzip bomb is stopped there.
    bomb = gzip.compress(b"{}\n" + b"\n" * (101 * 1024 * 1024), compresslevel=1)
    response = client.post(path, content=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    too_big = client.post(path, content=b"x" * (20 * 1024 * 1024 + 1), headers=headers)
    assert too_big.status_code == 413
    assert queued(database) == 0


def test_items_that_are_not_events_are_accepted_and_counted(client: TestClient, tenant: Tenant, database: Database):
    attachment = b"\x00\x01 binary"
    body = envelope(
        ({"type": "transaction"}, b'{"type":"transaction"}'),
        ({"type": "session"}, b'{"sid":"1"}'),
        ({"type": "session"}, b'{"sid":"2"}'),
        ({"type": "client_report"}, b"{}"),
        ({"type": "attachment", "length": len(attachment)}, attachment),
        event_item(message="the one event", event_id="a" * 32),
    )
    response = client.post(
        f"/api/{tenant.project_id}/envelope/", content=body, headers=auth(sentry_key(database, tenant))
    )
    assert response.status_code == 200
    assert response.json() == {"id": "a" * 32}
    only_sessions = envelope(({"type": "session"}, b"{}"))
    answer = client.post(
        f"/api/{tenant.project_id}/envelope/", content=only_sessions, headers=auth(sentry_key(database, tenant))
    )
    assert answer.status_code == 200 and answer.json() == {}
    assert queued(database) == 1
    drain(database)
    assert len(stored(database, tenant)) == 1
    assert drops(client, tenant) == {
        "sentry_attachment": 1,
        "sentry_client_report": 1,
        "sentry_session": 3,
        "sentry_transaction": 1,
    }


def test_the_store_endpoint_takes_one_event(client: TestClient, tenant: Tenant, database: Database):
    key = sentry_key(database, tenant)
    event = {
        "event_id": "b" * 32,
        "platform": "python",
        "exception": {"values": [{"type": "KeyError", "value": "'sku'"}]},
    }
    response = client.post(f"/api/{tenant.project_id}/store/", json=event, headers=auth(key))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": "b" * 32}
    # Very old SDKs: base64 of zlib. And without an event_id, one is made up and answered.
    import base64

    packed = base64.b64encode(zlib.compress(orjson.dumps({"message": "legacy"})))
    legacy = client.post(f"/api/{tenant.project_id}/store", content=packed, headers=auth(key))
    assert legacy.status_code == 200
    made_up = legacy.json()["id"]
    assert len(made_up) == 32
    drain(database)
    found = {e.uuid.hex: e.properties["$exception_types"] for e in stored(database, tenant)}
    assert found == {"b" * 32: ["KeyError"], made_up: ["Error"]}  # no level: an error, as in Sentry


def test_browsers_may_call_from_other_origins(client: TestClient, tenant: Tenant, database: Database):
    origin = {"Origin": "https://shop.example.com"}
    preflight = client.options(
        f"/api/{tenant.project_id}/envelope/",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "retry-after" in preflight.headers["access-control-expose-headers"]
    key = sentry_key(database, tenant)
    posted = client.post(
        f"/api/{tenant.project_id}/envelope/?sentry_key={key}",
        content=envelope(event_item(message="m")),
        headers={**origin, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == "https://shop.example.com"
    refused = client.post(f"/api/{tenant.project_id}/envelope/", content=b"{}", headers=origin)
    assert refused.headers["access-control-allow-origin"] == "https://shop.example.com"


def test_a_rotated_key_stops_working(client: TestClient, tenant: Tenant, database: Database, app: Any):
    old = sentry_key(database, tenant)
    body = envelope(event_item(message="m"))
    assert client.post(f"/api/{tenant.project_id}/envelope/", content=body, headers=auth(old)).status_code == 200
    rotated = client.patch(f"/api/projects/{tenant.project_id}/reset_sentry_key", headers=tenant.headers())
    assert rotated.status_code == 200
    app.sentry.keys.clear()  # the cache gives a rotated key a few seconds
    assert client.post(f"/api/{tenant.project_id}/envelope/", content=body, headers=auth(old)).status_code == 403
    new = sentry_key(database, tenant)
    assert new in rotated.json()["sentry_dsn"]
    assert client.post(f"/api/{tenant.project_id}/envelope/", content=body, headers=auth(new)).status_code == 200


def test_a_sentry_fingerprint_with_default_splits_the_default_group(
    client: TestClient, tenant: Tenant, database: Database
):
    def send(**event: Any) -> None:
        body = envelope(event_item(platform="python", exception={"values": [{"type": "E", "value": "v"}]}, **event))
        response = client.post(
            f"/api/{tenant.project_id}/envelope/", content=body, headers=auth(sentry_key(database, tenant))
        )
        assert response.status_code == 200

    send()
    send(fingerprint=["{{ default }}"])
    send(fingerprint=["{{ default }}", "eu"])
    send(fingerprint=["{{ default }}", "us"])
    send(fingerprint=["{{ default }}", "eu"])
    send(fingerprint=["checkout"])
    drain(database)
    events = stored(database, tenant)
    by_issue: dict[str, int] = {}
    for event in events:
        by_issue[str(event.issue_id)] = by_issue.get(str(event.issue_id), 0) + 1
    assert sorted(by_issue.values()) == [1, 1, 2, 2]  # default, default+us, default+eu, checkout
    checkout = next(
        e for e in events if e.properties.get("$sentry_fingerprint") is None and e.fingerprint == "checkout"
    )
    assert checkout.properties["$exception_fingerprint_record"] == [{"type": "manual"}]
