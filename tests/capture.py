"""Sending events the way the PostHog SDKs do, and processing them, for tests.

``exception_event`` builds a ``$exception`` event shaped like posthog-python's
``capture_exception``; ``replay`` sends one of the captured SDK requests in
``tests/ingest/payloads`` as the SDK sent it (same path, headers, compression), with the
project token swapped in; ``drain`` runs the worker until the queue is empty.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from trapline.db.engine import Database
from trapline.pipeline import BatchResult
from trapline.worker import Worker

PAYLOADS = Path(__file__).parent / "ingest" / "payloads"
# The token the SDKs were pointed at when the payloads were captured.
CAPTURED_TOKEN = "phc_testtoken123"


def python_frame(function: str, *, filename: str = "app/orders.py", lineno: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "python",
        "filename": filename,
        "abs_path": f"/srv/{filename}",
        "function": function,
        "module": filename.removesuffix(".py").replace("/", "."),
        "lineno": lineno,
        "context_line": f"    {function}()",
        "pre_context": [],
        "post_context": [],
        "in_app": True,
        **extra,
    }


def exception(
    type_: str = "ValueError", value: str = "bad quantity", frames: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": type_,
        "value": value,
        "mechanism": {"type": "generic", "handled": True, "synthetic": False, "exception_id": 0},
        "module": None,
        **extra,
    }
    if frames is None:
        frames = [python_frame("handle", lineno=5), python_frame("parse_order", lineno=9)]
    if frames:
        entry["stacktrace"] = {"type": "raw", "frames": frames}
    return entry


def exception_event(
    *exceptions: dict[str, Any],
    distinct_id: str = "user-1",
    event_uuid: str | None = None,
    timestamp: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A ``$exception`` event; with no exceptions given, one ValueError with two frames."""
    event: dict[str, Any] = {
        "event": "$exception",
        "distinct_id": distinct_id,
        "uuid": event_uuid or str(uuid.uuid4()),
        "properties": {
            "$exception_list": list(exceptions) or [exception()],
            "$exception_level": "error",
            "$lib": "posthog-python",
            "$lib_version": "7.91.1",
            **properties,
        },
    }
    if timestamp is not None:
        event["timestamp"] = timestamp
    return event


def post_batch(client: TestClient, token: str, *events: dict[str, Any], path: str = "/batch/") -> Response:
    """POST events as posthog-python's default (v0) protocol does."""
    return client.post(path, json={"api_key": token, "batch": list(events), "historical_migration": False})


def load_payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return data


def replay(client: TestClient, name: str, token: str) -> Response:
    """Send a captured SDK request again, as the SDK sent it, to ``token``'s project."""
    payload = load_payload(name)
    text = json.dumps(payload["body_decoded"]).replace(CAPTURED_TOKEN, token).encode()
    headers = {k: v.replace(CAPTURED_TOKEN, token) for k, v in payload["headers"].items()}
    for hop in ("Host", "Content-Length", "Connection", "Accept-Encoding"):
        headers.pop(hop, None)
    gzipped = payload["raw_body_first_bytes_hex"].startswith("1f8b")
    body = gzip.compress(text) if gzipped else text
    return client.request(payload["method"], payload["path"], content=body, headers=headers)


def exception_count(name: str) -> int:
    """How many ``$exception`` events a captured request holds."""
    body = load_payload(name)["body_decoded"]
    events = body if isinstance(body, list) else body.get("batch", [body])
    return sum(event.get("event") == "$exception" for event in events)


def drain(database: Database) -> BatchResult:
    """Process everything queued, as a worker does."""
    return Worker(database).drain()
