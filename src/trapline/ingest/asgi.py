"""Plain-ASGI plumbing shared by the ingestion endpoints answered ahead of FastAPI
(PostHog's capture, Sentry's envelope and store): reading a bounded body, CORS, answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Receive, Scope, Send

__all__ = [
    "Answer",
    "Answering",
    "BodyTooLarge",
    "ClientGone",
    "cors_headers",
    "preflight_headers",
    "read_body",
    "request_headers",
    "respond",
    "serve",
]


@dataclass(slots=True)  # not frozen: a frozen init sets each field the slow way, per request
class Answer:
    """An answer, whichever way it is sent (ASGI's messages, or ``http_protocol``'s direct path)."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    content_type: bytes | None = b"application/json"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """All its headers, as both ways send them: the length, ``headers``, the type."""
        headers = [(b"content-length", str(len(self.body)).encode()), *self.headers]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type))
        return headers


class BodyTooLarge(Exception):
    """The request body is over the limit (answer 413)."""


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


class Answering(Protocol):
    """An ingestion endpoint (capture, Sentry's): answers a request from its whole body."""

    wanted_headers: frozenset[bytes]  # lower-case names of the headers ``answer`` reads

    @property
    def max_body_bytes(self) -> int: ...

    def unreadable(self, error: BodyTooLarge | ClientGone, cors: list[tuple[bytes, bytes]]) -> Answer:
        """The answer to a body over ``max_body_bytes``, or one the client left before sending."""
        ...

    async def answer(self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes) -> Answer:
        """The answer, with ``headers`` the request's ``wanted_headers``; never raises."""
        ...


async def serve(endpoint: Answering, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request on ASGI: its body read whole (bounded), then ``endpoint``'s answer.
    (``http_protocol`` answers plain requests without ASGI, from the same ``answer``.)"""
    await respond(send, await _answer(endpoint, scope, receive))


async def _answer(endpoint: Answering, scope: Scope, receive: Receive) -> Answer:
    headers = request_headers(scope["headers"], endpoint.wanted_headers)
    method = scope["method"]
    body = b""
    if method == "POST":
        try:
            body = await read_body(receive, headers.get("content-length"), endpoint.max_body_bytes)
        except (BodyTooLarge, ClientGone) as exc:
            return endpoint.unreadable(exc, cors_headers(headers.get("origin")))
    return await endpoint.answer(method, scope["path"], scope.get("query_string", b""), headers, body)


def request_headers(headers: Iterable[tuple[bytes, bytes]], wanted: frozenset[bytes]) -> dict[str, str]:
    """The ``wanted`` headers (lower-case names) of a request's ``headers`` (an ASGI scope's,
    or as the client sent them: ``http_protocol``); the others are not decoded at all."""
    # ASGI servers give lower-case names (uvicorn does); lower() covers any other. A loop, not
    # a generator: this runs for every header of every capture request.
    found: dict[str, str] = {}
    for name, value in headers:
        if name in wanted or (name := name.lower()) in wanted:
            # Trailing blanks trimmed as uvicorn does (the direct path reads headers as sent).
            found[name.decode("latin-1")] = value.decode("latin-1").rstrip(" \t")
    return found


async def read_body(receive: Receive, declared_length: str | None, limit: int) -> bytes:
    """The whole request body, refusing (``BodyTooLarge``) as soon as it is known to be over ``limit``."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
        if chunk:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def cors_headers(origin: str | None) -> list[tuple[bytes, bytes]]:
    # Browsers post events from the app's own origin; echo it (with credentials allowed, as
    # PostHog does) so the SDK can read our answer instead of treating it as a failure.
    if not origin:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        # On the answer itself (not the preflight): how long a refused SDK should wait.
        (b"access-control-expose-headers", b"retry-after, x-sentry-rate-limits"),
        (b"vary", b"Origin"),
    ]


def preflight_headers(requested: str | None, *, expose: bytes = b"") -> list[tuple[bytes, bytes]]:
    headers = [
        (b"access-control-allow-methods", b"POST, OPTIONS"),
        (b"access-control-allow-headers", (requested or "content-type").encode("latin-1")),
        (b"access-control-max-age", b"86400"),
    ]
    if expose:
        headers.append((b"access-control-expose-headers", expose))
    return headers


async def respond(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.response_headers()})
    await send({"type": "http.response.body", "body": answer.body})
