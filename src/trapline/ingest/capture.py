"""PostHog's capture endpoints, answered on plain ASGI before the FastAPI app sees the request.

Capture is the hot path: SDKs send every event here, thousands per second. FastAPI's
middleware, routing, validation and telemetry checks would cost several times the work the
endpoint itself does, so the application hands these paths to ``Capture`` first (see
``app.py``) and serves everything else itself.

A request is answered 200 only after its ``$exception`` events are committed to the ingest
queue (see ``spool.py``); other events are accepted and dropped. Errors use PostHog's
statuses: 400 for a body that cannot be read, 401 for a missing or unknown project token,
413 for size limits, 503 when the queue cannot be written (SDKs retry those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from trapline.autocapture.controls import ControlsCache, signals_of
from trapline.db.types import utcnow
from trapline.diskspace import disk_full_error
from trapline.events.queue import NewDrop, NewRequest, NewSignal
from trapline.events.times import event_time, parse_timestamp
from trapline.ingest.asgi import (
    Answer,
    BodyTooLarge,
    ClientGone,
    cors_headers,
    preflight_headers,
    serve,
)
from trapline.ingest.decode import DecodedBatch, DecodeError, Limits, TooLarge, decode_capture
from trapline.ingest.pressure import Pressure, Refusal
from trapline.ingest.projects import ProjectTokens
from trapline.ingest.spool import Spool, SpoolClosed

__all__ = ["CAPTURE_PATHS", "DIRECT_PATHS", "V1_PATH", "WANTED_HEADERS", "Capture"]

log = logging.getLogger("trapline.ingest")

# Paths the PostHog SDKs post events to (posthog-python: /batch/; posthog-js: /e/, /i/v0/e/;
# older SDKs and libraries: /capture/, /track/), each with or without the trailing slash.
CAPTURE_PATHS = frozenset(p for base in ("/batch", "/e", "/i/v0/e", "/capture", "/track") for p in (base, base + "/"))
# posthog-python's opt-in v1 protocol: Bearer token, {"results": {...}} reply.
V1_PATH = "/i/v1/analytics/events"
_V1_PATHS = frozenset({V1_PATH, V1_PATH + "/"})
# The paths ``http_protocol`` may hand to ``Capture.answer`` directly (see there).
DIRECT_PATHS = CAPTURE_PATHS | _V1_PATHS
# Bodies this large are decoded in a thread so one big batch cannot stall every other request.
_DECODE_INLINE_LIMIT = 256 * 1024
EXCEPTION_EVENT = "$exception"
# The columns session signals are stored in (session_signal).
_SESSION_ID_MAX = 200
_SIGNAL_MAX = 300
_V0_REPLY = b'{"status":1}'
# What posthog-js reads from a refusal to pause capturing exceptions (for 60 s).
_QUOTA_LIMITED_EXCEPTIONS = ["exceptionEvent"]
_RETRY_SECONDS = b"10"
# The request headers capture reads; the others are not decoded at all.
WANTED_HEADERS = frozenset(
    {
        b"content-type", b"content-encoding", b"content-length", b"authorization", b"origin",
        b"access-control-request-headers", b"posthog-sdk-info",
    }
)  # fmt: skip


class Capture:
    """The capture endpoints: ``handles`` says which paths, calling it answers them."""

    wanted_headers = WANTED_HEADERS  # for http_protocol's direct path

    def __init__(
        self,
        *,
        spool: Spool,
        tokens: ProjectTokens,
        limits: Limits,
        controls: ControlsCache | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self.spool = spool
        self.tokens = tokens
        self.limits = limits
        self.controls = controls
        self.pressure = pressure

    @staticmethod
    def takes_directly(path: str) -> bool:
        """The paths ``answer`` takes (``http_protocol``'s direct path asks too)."""
        return path in DIRECT_PATHS

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["type"] == "http" and Capture.takes_directly(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(self, scope, receive, send)

    def unreadable(self, error: BodyTooLarge | ClientGone, cors: list[tuple[bytes, bytes]]) -> Answer:
        if isinstance(error, BodyTooLarge):
            return _rejected(_Reject(413, "invalid_request", "payload_too_large", str(error)), cors)
        return _rejected(_Reject(400, "invalid_request", "client_disconnected", "The client disconnected."), cors)

    async def answer(self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes) -> Answer:
        """The answer to a request to one of capture's paths, its ``body`` read whole; never raises.

        ``headers`` are the request's ``WANTED_HEADERS``. The ASGI app above calls this, and so
        does ``http_protocol``'s direct path, which answers capture's posts without ASGI.
        """
        cors = cors_headers(headers.get("origin"))
        if method == "OPTIONS":
            preflight = preflight_headers(headers.get("access-control-request-headers"))
            return Answer(200, b"", cors + preflight, content_type=None)
        if method != "POST":
            return _error(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.', cors)
        try:
            status, reply = await self._capture(body, query_string, headers, path in _V1_PATHS)
        except _Reject as reject:
            return _rejected(reject, cors)
        except Exception:
            # Outside FastAPI there is no handler of last resort but this one.
            log.exception("capture failed", extra={"path": path})
            return _error(500, "server_error", "error", "A server error occurred.", cors)
        return Answer(status, reply, cors)

    async def _capture(self, raw: bytes, query_string: bytes, headers: dict[str, str], v1: bool) -> tuple[int, bytes]:
        query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
        bearer = _bearer(headers) if v1 else None
        decode: Callable[[], Any] = lambda: decode_capture(  # noqa: E731 - reused below, inline or threaded
            raw,
            content_type=headers.get("content-type"),
            content_encoding=headers.get("content-encoding"),
            query=query,
            limits=self.limits,
            bearer_token=bearer,
        )
        try:
            batch = decode() if len(raw) <= _DECODE_INLINE_LIMIT else await asyncio.to_thread(decode)
        except TooLarge as exc:
            raise _Reject(413, "invalid_request", "payload_too_large", str(exc)) from exc
        except DecodeError as exc:
            raise _Reject(400, "validation_error", "invalid_payload", str(exc)) from exc

        if not batch.token:
            raise _Reject(
                401, "authentication_error", "no_api_key",
                "API key is required: send the project API token (phc_…) as api_key or token.",
            )  # fmt: skip
        project_id = await self.tokens.project_id(batch.token)
        if project_id is None:
            raise _Reject(
                401, "authentication_error", "invalid_api_key",
                "Project API key invalid. You can find your project API key in your project settings.",
            )  # fmt: skip

        if batch.dropped:
            log.warning(
                "oversized events dropped",
                extra={"project_id": project_id, "count": len(batch.dropped), "reason": batch.dropped[0].reason},
            )
        exceptions = [event for event in batch.events if event.get("event") == EXCEPTION_EVENT]
        if exceptions and self.pressure is not None:
            refusal = await self.pressure.refusal(project_id)
            if refusal is not None:
                await self._refuse(project_id, len(exceptions), refusal)
        if v1 and exceptions:
            _add_sdk_info(exceptions, headers.get("posthog-sdk-info"))
        reply = orjson.dumps({"results": _v1_results(batch)}) if v1 else _V0_REPLY
        received_at = utcnow()
        signals = await self._signals(project_id, batch, received_at)
        if exceptions or signals:
            requests = []
            if exceptions:
                requests.append(
                    NewRequest(
                        project_id=project_id,
                        received_at=received_at,
                        sent_at=batch.sent_at,
                        payload=orjson.dumps(exceptions),
                        event_count=len(exceptions),
                    )
                )
            # Only the encoded payload may live across the wait for the commit: decoded events
            # kept alive that long survive into the GC's oldest generation, and its full passes
            # over them cost more than everything else a request does.
            del batch, exceptions, raw
            try:
                await self.spool.append(requests, signals)
            except SpoolClosed as exc:
                raise _Reject(503, "server_error", "unavailable", "The server is shutting down; retry.") from exc
            except Exception as exc:
                full = disk_full_error(exc)
                if full is not None:
                    wait = [(b"retry-after", str(full.retry_after).encode())]
                    raise _Reject(503, "server_error", full.code, full.detail, wait) from exc
                raise _Reject(503, "server_error", "unavailable", "Events could not be stored; retry.") from exc
        return 200, reply

    async def _refuse(self, project_id: int, exceptions: int, refusal: Refusal) -> None:
        """Refuse a request with exceptions, the way PostHog's SDKs understand them (see
        README, "When Trapline refuses events")."""
        retry_after = [(b"retry-after", str(refusal.retry_after).encode())]
        if refusal.installation:
            # posthog-js, posthog-python and posthog-node all keep a batch answered 503 and
            # send it again later (posthog-python waits for Retry-After, up to 30 s).
            raise _Reject(503, "server_error", refusal.reason, refusal.detail, retry_after)
        # Over the project's limit: the events would be dropped by the pipeline anyway.
        # Count them; 429 makes posthog-python pause for Retry-After, and posthog-js stops
        # capturing exceptions for a minute on reading ``quota_limited``.
        with contextlib.suppress(Exception):
            await self.spool.append([], drops=[NewDrop(project_id, refusal.reason, exceptions)])
        raise _Reject(
            429, "throttled", refusal.reason, refusal.detail, retry_after, quota_limited=_QUOTA_LIMITED_EXCEPTIONS
        )

    async def _signals(self, project_id: int, batch: DecodedBatch, received_at: datetime) -> list[NewSignal]:
        """What this request's sessions did that the project's autocapture triggers wait for."""
        if self.controls is None:
            return []
        if self.controls.fresh(project_id):
            controls = self.controls.get(project_id)
        else:
            controls = await asyncio.to_thread(self.controls.get, project_id)
        if controls is None or not controls.records_signals:
            return []
        sent_at = parse_timestamp(batch.sent_at)
        found: list[NewSignal] = []
        for event in batch.events:
            kinds = signals_of(controls, event)
            properties = event.get("properties")
            session = properties.get("$session_id") if isinstance(properties, dict) else None
            if kinds and isinstance(session, str) and session and len(session) <= _SESSION_ID_MAX:
                at = event_time(event, received_at, sent_at)
                found += [NewSignal(project_id, session, kind[:_SIGNAL_MAX], at) for kind in kinds]
        return found


class _Reject(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        quota_limited: list[str] | None = None,
    ) -> None:
        self.status, self.type, self.code, self.detail = status, type_, code, detail
        self.headers = headers or []
        self.quota_limited = quota_limited


def _v1_results(batch: DecodedBatch) -> dict[str, dict[str, str]]:
    """posthog-python v1's per-event answer: ok, or drop with the reason (it does not retry those)."""
    results = {e["uuid"]: {"result": "ok"} for e in batch.events if isinstance(e.get("uuid"), str)}
    for dropped in batch.dropped:
        if dropped.uuid is not None:
            results[dropped.uuid] = {"result": "drop", "details": dropped.reason}
    return results


def _add_sdk_info(events: list[dict[str, Any]], sdk_info: str | None) -> None:
    """v1 events leave ``$lib``/``$lib_version`` to the ``PostHog-Sdk-Info: <lib>/<version>`` header."""
    lib, _, version = (sdk_info or "").strip().partition("/")
    if not lib:
        return
    for event in events:
        properties = event.get("properties")
        if not isinstance(properties, dict):
            properties = event["properties"] = {}
        properties.setdefault("$lib", lib)
        if version:
            properties.setdefault("$lib_version", version)


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _rejected(reject: _Reject, cors: list[tuple[bytes, bytes]]) -> Answer:
    return _error(reject.status, reject.type, reject.code, reject.detail, cors + reject.headers, reject.quota_limited)


def _error(
    status: int,
    type_: str,
    code: str,
    detail: str,
    extra: list[tuple[bytes, bytes]],
    quota_limited: list[str] | None = None,
) -> Answer:
    fields: dict[str, object] = {"type": type_, "code": code, "detail": detail, "attr": None}
    if quota_limited is not None:
        fields["quota_limited"] = quota_limited
    body = orjson.dumps(fields)
    # posthog-python retries a 503 three times, Retry-After apart: give a restarting server time.
    wait = status == 503 and not any(name == b"retry-after" for name, _ in extra)
    retry = [(b"retry-after", _RETRY_SECONDS)] if wait else []
    return Answer(status, body, extra + retry)
