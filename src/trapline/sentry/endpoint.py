"""Sentry's ingestion endpoints, ``POST /api/<project id>/envelope/`` and ``/store/``, answered on
plain ASGI before the FastAPI app sees the request, like PostHog's capture (``ingest/capture.py``).

A request is checked against the project's DSN key, its events are mapped to ``$exception``
events (``mapping.py``) and committed to the same ingest queue before the answer, 200
``{"id": "<event id>"}``: what got a 200 survives a crash. Envelope items that are not events
(transactions, sessions, client reports, attachments, …) are accepted and counted in
``dropped_events`` as ``sentry_<type>``.

Limits are Relay's: 20 MiB as sent, 100 MiB for an envelope once decompressed, 1 MiB for one
event; beyond them, 413. Errors answer ``{"detail": …}`` as Relay does: 400 for a body that
cannot be read, 401 without a key, 403 for a key that is not the project's, 503 when the queue
cannot be written (SDKs retry those).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from trapline.db.types import utcnow
from trapline.diskspace import disk_full_error
from trapline.events.queue import NewDrop, NewRequest
from trapline.ingest.asgi import (
    Answer,
    BodyTooLarge,
    ClientGone,
    cors_headers,
    preflight_headers,
    serve,
)
from trapline.ingest.decode import DecodeError, TooLarge, decompress
from trapline.ingest.pressure import Pressure, Refusal
from trapline.ingest.projects import SentryKeys
from trapline.ingest.spool import Spool, SpoolClosed
from trapline.sentry.auth import key_from_dsn, key_from_headers
from trapline.sentry.envelope import EnvelopeError, parse_envelope
from trapline.sentry.mapping import to_posthog_event

__all__ = ["WANTED_HEADERS", "SentryIngest", "SentryLimits"]

log = logging.getLogger("trapline.ingest")

_PATH = re.compile(r"^/api/(\d{1,18})/(envelope|store)/?$")
WANTED_HEADERS = frozenset(
    {
        b"content-type", b"content-encoding", b"content-length", b"x-sentry-auth", b"authorization", b"origin",
        b"access-control-request-headers",
    }
)  # fmt: skip
# Decoded in a thread above this size, so one big envelope cannot stall every other request.
_INLINE_LIMIT = 256 * 1024
_ITEM_TYPE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class SentryLimits:
    """Relay's defaults."""

    max_body_bytes: int = 20 * 1024 * 1024
    max_envelope_bytes: int = 100 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024


class _Reject(Exception):
    def __init__(self, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status, self.detail, self.headers = status, detail, headers or []


@dataclass(frozen=True)
class _Parsed:
    """What one request carries, decoded."""

    key: str | None
    event_id: str | None
    sent_at: str | None
    events: list[dict[str, Any]]
    ignored: dict[str, int]


class SentryIngest:
    """``handles`` says which paths, calling it answers them."""

    wanted_headers = WANTED_HEADERS  # for http_protocol's direct path

    def __init__(
        self,
        *,
        spool: Spool,
        keys: SentryKeys,
        limits: SentryLimits | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self.spool = spool
        self.keys = keys
        self.limits = limits or SentryLimits()
        self.pressure = pressure

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["type"] == "http" and SentryIngest.takes_directly(scope["path"])

    @staticmethod
    def takes_directly(path: str) -> bool:
        """The paths ``answer`` takes (``http_protocol``'s direct path asks too)."""
        return path.startswith("/api/") and _PATH.match(path) is not None

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(self, scope, receive, send)

    def unreadable(self, error: BodyTooLarge | ClientGone, cors: list[tuple[bytes, bytes]]) -> Answer:
        if isinstance(error, BodyTooLarge):
            return _error(413, str(error), cors)
        return _error(400, "the client disconnected", cors)

    async def answer(self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes) -> Answer:
        """The answer to a request to one of the paths, its ``body`` read whole; never raises.

        ``headers`` are the request's ``WANTED_HEADERS``. The ASGI app above calls this, and so
        does ``http_protocol``'s direct path, which answers plain posts without ASGI.
        """
        cors = cors_headers(headers.get("origin"))
        if method == "OPTIONS":
            preflight = preflight_headers(
                headers.get("access-control-request-headers"), expose=b"retry-after, x-sentry-rate-limits"
            )
            return Answer(200, b"", cors + preflight, content_type=None)
        if method != "POST":
            return _error(405, f"method {method} is not allowed: send POST", cors)
        match = _PATH.match(path)
        assert match is not None
        project_id, kind = int(match.group(1)), match.group(2)
        try:
            event_id = await self._ingest(body, query_string, headers, project_id, kind)
        except _Reject as reject:
            return _error(reject.status, reject.detail, cors + reject.headers)
        except Exception:
            log.exception("sentry ingestion failed", extra={"path": path})
            return _error(500, "internal server error", cors)
        reply = orjson.dumps({"id": event_id}) if event_id else b"{}"
        return Answer(200, reply, cors)

    async def _ingest(
        self, raw: bytes, query_string: bytes, headers: dict[str, str], project_id: int, kind: str
    ) -> str | None:
        query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
        key = key_from_headers(headers, query)
        if key is None and not raw:
            raise _Reject(401, "missing authorization information")

        def decode() -> _Parsed:
            return self._decode(raw, headers.get("content-encoding"), kind, key)

        parsed = decode() if len(raw) <= _INLINE_LIMIT else await asyncio.to_thread(decode)
        if parsed.key is None:
            raise _Reject(401, "missing authorization information")
        expected = await self.keys.key_of(project_id)
        if expected is None or parsed.key != expected:
            raise _Reject(403, f"event submission rejected: that key is not the DSN key of project {project_id}")

        # Only envelopes with events are judged: client reports and the rest are not what a
        # limit or the queue bounds, and sentry-sdk would drop a refused report for nothing.
        refusal = await self.pressure.refusal(project_id) if self.pressure is not None and parsed.events else None
        if refusal is not None:
            await self._refuse(project_id, parsed, refusal)

        received_at = utcnow()
        requests = []
        if parsed.events:
            requests.append(
                NewRequest(
                    project_id=project_id,
                    received_at=received_at,
                    sent_at=parsed.sent_at,
                    payload=orjson.dumps(parsed.events),
                    event_count=len(parsed.events),
                )
            )
        drops = [
            NewDrop(project_id, f"sentry_{item_type}", count, f"Sentry {item_type} items are accepted, not stored")
            for item_type, count in sorted(parsed.ignored.items())
        ]
        if requests or drops:
            try:
                await self.spool.append(requests, drops=drops)
            except SpoolClosed as exc:
                raise _Reject(503, "the server is shutting down; retry") from exc
            except Exception as exc:
                full = disk_full_error(exc)
                if full is not None and full.retry_after is not None:
                    # Told as a refusal of the whole installation: nothing is sent for a while.
                    refusal = Refusal(full.code, full.retry_after, full.detail)
                    raise _Reject(503, full.detail, sentry_rate_limit_headers(refusal)) from exc
                raise _Reject(503, "events could not be stored; retry") from exc
        return parsed.event_id

    async def _refuse(self, project_id: int, parsed: _Parsed, refusal: Refusal) -> None:
        """Answer with Relay's headers, which sentry-sdk obeys: it sends nothing of the named
        categories until the time is up (it never sends refused events again)."""
        if not refusal.installation and parsed.events:
            # The SDK drops what it is refused: count it, as the pipeline counts its drops.
            with contextlib.suppress(Exception):
                await self.spool.append([], drops=[NewDrop(project_id, refusal.reason, len(parsed.events))])
        raise _Reject(503 if refusal.installation else 429, refusal.detail, sentry_rate_limit_headers(refusal))

    def _decode(self, raw: bytes, content_encoding: str | None, kind: str, key: str | None) -> _Parsed:
        limit = self.limits.max_envelope_bytes if kind == "envelope" else self.limits.max_event_bytes
        try:
            body = decompress(raw, content_encoding, limit)
        except TooLarge as exc:
            raise _Reject(413, str(exc)) from exc
        except DecodeError as exc:
            raise _Reject(400, str(exc)) from exc
        if len(body) > limit:
            raise _Reject(413, f"the {kind} is {len(body)} bytes, over the {limit}-byte limit")
        if kind == "store":
            event = _store_event(body, limit)
            return _Parsed(key, _event_id(event), None, [to_posthog_event(event)], {})
        try:
            envelope = parse_envelope(body)
        except EnvelopeError as exc:
            raise _Reject(400, str(exc)) from exc
        if key is None:
            # Through a tunnel, the DSN travels in the envelope header.
            tunneled = key_from_dsn(envelope.headers.get("dsn"))
            key = tunneled[0] if tunneled else None
        events: list[dict[str, Any]] = []
        ignored: dict[str, int] = {}
        header_id = envelope.headers.get("event_id")
        event_id: str | None = None
        for item in envelope.items:
            if item.type != "event":
                name = _ITEM_TYPE.sub("_", item.type.lower())[:40] or "unknown"
                ignored[name] = ignored.get(name, 0) + 1
                continue
            if len(item.payload) > self.limits.max_event_bytes:
                raise _Reject(
                    413, f"an event is {len(item.payload)} bytes, over the {self.limits.max_event_bytes}-byte limit"
                )
            event = _json_object(item.payload, "the event item")
            if "event_id" not in event and isinstance(header_id, str):
                event["event_id"] = header_id
            this_id = _event_id(event)  # gives the event one if it has none
            event_id = event_id or this_id
            events.append(to_posthog_event(event))
        if event_id is None and isinstance(header_id, str):
            event_id = header_id
        sent_at = envelope.headers.get("sent_at")
        return _Parsed(key, event_id, sent_at if isinstance(sent_at, str) else None, events, ignored)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _Reject(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _Reject(400, f"{what} must be a JSON object")
    return value


def _store_event(body: bytes, limit: int) -> dict[str, Any]:
    """``/store/`` takes one event as JSON; very old SDKs sent it base64-encoded and zlib-compressed."""
    stripped = body.lstrip()
    if stripped.startswith(b"{") or not stripped:
        return _json_object(body, "the event")
    try:
        packed = base64.b64decode(stripped, validate=False)
        return _json_object(decompress(packed, "deflate", limit), "the event")
    except (binascii.Error, DecodeError, TooLarge):
        return _json_object(body, "the event")


def _event_id(event: dict[str, Any]) -> str:
    """The event's id as Sentry writes it (32 hex digits); one is made up when it has none."""
    value = event.get("event_id")
    if isinstance(value, str):
        try:
            return uuid.UUID(value).hex
        except ValueError:
            pass
    made = uuid.uuid4().hex
    event["event_id"] = made
    return made


def sentry_rate_limit_headers(refusal: Refusal) -> list[tuple[bytes, bytes]]:
    """``Retry-After`` and ``X-Sentry-Rate-Limits: <seconds>:<categories>:<scope>:<reason>``.

    A project over its limit stops sending error events (the ``error`` category: naming none
    would also stop the SDK's reports of what it dropped) until its bucket ends; an
    installation in trouble (queue backed up, disk low) stops every category (an empty list
    means all) for the time given. Whole seconds: sentry-sdk ignores a fraction.
    """
    seconds = str(refusal.retry_after)
    if refusal.installation:
        limit = f"{seconds}::organization:{refusal.reason}"
    else:
        limit = f"{seconds}:error:project:{refusal.reason}"
    return [(b"retry-after", seconds.encode()), (b"x-sentry-rate-limits", limit.encode())]


def _error(status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> Answer:
    retry = [(b"retry-after", b"10")] if status == 503 and not any(k == b"retry-after" for k, _ in extra) else []
    return Answer(status, orjson.dumps({"detail": detail}), extra + retry)
