"""Uvicorn's HTTP protocol, with each response sent in one write.

Uvicorn writes a response's head when the app sends ``http.response.start`` and its body on
``http.response.body``: two writes, and on uvloop each is a ``send()`` at once. On a loopback
or LAN socket the kernel's work per send, and the client's wake-up per segment, is most of
what a small answer costs, and capture answers tens of thousands of small answers a second.
Here the protocol's writes are gathered until the event loop's current round of callbacks
ends, then sent together: the head and body of an answer (and the answers of pipelined
requests) go in one send. Measured with a bare ASGI app on this protocol, 64 connections on
2 cores: 28,300 to 29,100 requests/s against 23,000 to 24,100 with uvicorn's own, for the same
CPU time (``docs/SCALING.md``). An answer made whole (the direct path's, below) goes at once.

Nothing else changes: uvicorn parses, times out and closes as before. Closing sends what is
gathered first; a connection the peer closed drops it, as a send would have failed.

The protocol also answers ingestion's posts itself (``answering``: PostHog's capture and
Sentry's envelopes), without ASGI: uvicorn's scope, request cycle, events and messages cost
~13 us a request here (a bare ASGI app: 20 us a request; the same answer from a plain
httptools protocol: 5 to 8 us), a sixth of what a capture request costs in all. Only the
plain case goes this way: a POST to one of a handler's paths with a Content-Length within
its limit and uvicorn's flow-control mark, no ``Expect``, no upgrade, nothing pipelined
ahead of it, no access log. Everything else, including an ingestion request that is not
plain, takes uvicorn's way to the same handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from trapline.activity import Activity
from trapline.ingest.asgi import Answer, Answering, request_headers

__all__ = ["DirectHandler", "GatheredWrites", "HttpProtocol"]

log = logging.getLogger("trapline.http")

# Headers the direct path reads itself, besides the handler's: how the body is framed, and
# whether the client waits for a 100 (uvicorn's way answers those).
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"expect"})
# Past this many bytes gathered, send at once rather than at the round's end.
_SEND_AT = 64 * 1024


class DirectHandler(Answering, Protocol):
    """An ingestion endpoint that says which paths it answers (``Capture``, ``SentryIngest``)."""

    def takes_directly(self, path: str) -> bool: ...


class HttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through ``GatheredWrites``, and answering ``direct``'s
    plain posts itself (see the module's docstring)."""

    # Each handler, with the headers the direct path reads for it.
    direct: tuple[tuple[DirectHandler, frozenset[bytes]], ...] = ()

    # Told of every request begun (the idle worker runs only while none is).
    activity: Activity | None = None

    @classmethod
    def answering(cls, *handlers: DirectHandler, activity: Activity | None = None) -> type[HttpProtocol]:
        """This protocol, with ``handlers`` answering the plain posts to their paths directly,
        touching ``activity`` at every request."""
        direct = tuple((handler, handler.wanted_headers | _FRAMING) for handler in handlers)
        return type("DirectHttpProtocol", (cls,), {"direct": direct, "activity": activity})

    # When the connection last went idle, None while a request is being read or answered.
    _idle_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        self.gathered = GatheredWrites(transport, self.loop)
        super().connection_made(self.gathered)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def on_message_begin(self) -> None:
        # Uvicorn's, but for the ASGI scope (a dict of ten entries and a copy of the app's
        # state), which a request answered directly never reads: ``on_headers_complete``
        # makes it for the others.
        if self.activity is not None:
            self.activity.touch()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        cycle = self._direct_cycle() if self.direct else None
        if cycle is None:
            self._make_scope()
            super().on_headers_complete()
        else:
            self.cycle = cycle  # type: ignore[assignment]  # uvicorn reads the few fields it has

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept as they came: uvicorn lower-cases, trims and checks each one for Expect, and a
        # direct request reads only a few (``request_headers`` does that for those). Counted
        # with ``bench/capture_path_bench.py --opcodes``: 104 bytecodes a capture request for
        # uvicorn's, 44 for this. ``_make_scope`` does uvicorn's for a request that goes its way.
        self.headers.append((name, value))

    def _make_scope(self) -> None:
        """The scope uvicorn's ``on_message_begin`` makes, holding what was read since."""
        url, headers = self.url, self.headers
        super().on_message_begin()
        self.url = url
        for name, value in headers:
            super().on_header(name, value)  # into the scope's list, as uvicorn reads them

    # Keep-alive. Uvicorn arms a timer when an answer is complete and cancels it when the next
    # request's bytes arrive: a timer made and cancelled per request. Measured with the scope
    # made only when needed (above), interleaved: capture alone accepted 9,574-9,991 requests/s
    # against 8,694-9,207; with a worker beside it 8,512-9,279 against 8,449-8,797 (the two
    # share the cores then). Here an answer notes when the connection went idle, and one
    # timer per connection, armed again for the rest when it fires early, closes it once idle
    # for ``timeout_keep_alive``.

    def _unset_keepalive_if_required(self) -> None:
        # Uvicorn calls this when a request's bytes arrive: busy. (And from connection_lost,
        # where the override above cancels the timer.)
        self._idle_since = None

    def on_response_complete(self) -> None:
        # Uvicorn's, but for the keep-alive timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # a request is in hand: its answer arms the timer again
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _DirectCycle:
            cycle.chunks.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _DirectCycle:
            # A task, whose first step runs at the end of this round of the loop, after every
            # socket's reads: run at once instead (without a task), each request woke the
            # spool's thread on its own, flushes were smaller, and `make bench` accepted 15%
            # less (10,152 / 10,242 against 11,919 / 11,919 requests/s, interleaved).
            task = self.loop.create_task(self._answer(cycle))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)  # a graceful shutdown waits for it, as for uvicorn's own
        else:
            super().on_message_complete()

    def _direct_cycle(self) -> _DirectCycle | None:
        """The request whose head was just read, if it is one to answer directly."""
        parser = self.parser
        if (
            parser.get_method() != b"POST"
            or parser.should_upgrade()
            or (self.cycle is not None and not self.cycle.response_complete)  # uvicorn queues it
            or self.access_log
            or self.limit_concurrency is not None
            or self.root_path
        ):
            return None
        url = httptools.parse_url(self.url)
        if b"%" in url.path:
            return None
        path = url.path.decode("ascii")
        found = next(((handler, wanted) for handler, wanted in self.direct if handler.takes_directly(path)), None)
        if found is None:
            return None
        handler, wanted = found
        headers = request_headers(self.headers, wanted)
        length = headers.get("content-length", "")
        limit = min(handler.max_body_bytes, HIGH_WATER_LIMIT)
        if "transfer-encoding" in headers or "expect" in headers or not length.isdigit() or int(length) > limit:
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return _DirectCycle(handler, path, url.query or b"", headers, keep_alive)

    async def _answer(self, cycle: _DirectCycle) -> None:
        body = cycle.chunks[0] if len(cycle.chunks) == 1 else b"".join(cycle.chunks)
        try:
            answer = await cycle.handler.answer("POST", cycle.path, cycle.query, cycle.headers, body)
            if cycle.disconnected:
                return
            # Sent now, not at the round's end: it is the whole answer, and the round (the rest
            # of the tasks the spool woke, every socket's reads) would delay it ~0.6 ms (traced
            # under `make bench`), while the client waits to send its next request.
            self.gathered.send_now(_KEPT.encoded(answer, cycle.keep_alive, self.server_state.default_headers))
        except Exception:
            # A handler answers its own failures; this is one it could not, or the answer could
            # not be encoded. Uvicorn would answer 500 and close: closing alone tells the client
            # as much, and it sends again. (Left to the task, the connection would stay open
            # with nothing to answer it, and the error would surface only when the task is
            # collected.)
            log.exception("direct answer failed", extra={"path": cycle.path})
            self.transport.close()
            return
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()  # the next pipelined request, or the keep-alive timer


class _KeptAnswers:
    """Answers without headers of their own (capture's 200 to a server-side SDK), as sent: most
    direct requests get one of a few, and building each anew cost ~100 bytecodes a request
    (``bench/capture_path_bench.py --opcodes``). Kept while uvicorn's default headers (the
    date) stay the same list: a second."""

    # Past this many, answers are built each time: v1's per-event replies differ every time.
    MAX = 64

    def __init__(self) -> None:
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._answers: dict[tuple[int, bytes, bytes | None, bool], bytes] = {}

    def encoded(self, answer: Answer, keep_alive: bool, defaults: list[tuple[bytes, bytes]]) -> bytes:
        if answer.headers:
            return _encode_now(answer, keep_alive, defaults)
        if self._defaults is not defaults:
            self._answers.clear()
            self._defaults = defaults
        key = (answer.status, answer.body, answer.content_type, keep_alive)
        found = self._answers.get(key)
        if found is None:
            found = _encode_now(answer, keep_alive, defaults)
            if len(self._answers) < self.MAX:
                self._answers[key] = found
        return found


_KEPT = _KeptAnswers()


def _encode_now(answer: Answer, keep_alive: bool, defaults: list[tuple[bytes, bytes]]) -> bytes:
    head = [STATUS_LINE[answer.status]]
    for name, value in (*defaults, *answer.response_headers()):
        head += (name, b": ", value, b"\r\n")
    if not keep_alive:  # HTTP/1.0, Connection: close, or a shutdown meanwhile
        head.append(b"connection: close\r\n")
    head += (b"\r\n", answer.body)
    return b"".join(head)


class _Unused:
    """``message_event`` of a direct request: uvicorn sets it on a lost connection; nothing waits."""

    def set(self) -> None:
        pass


_UNUSED = _Unused()


class _DirectCycle:
    """A request answered directly, with the fields of uvicorn's cycle that its protocol reads."""

    __slots__ = ("chunks", "disconnected", "handler", "headers", "keep_alive", "path", "query", "response_complete")
    message_event = _UNUSED

    def __init__(
        self, handler: DirectHandler, path: str, query: bytes, headers: dict[str, str], keep_alive: bool
    ) -> None:
        self.handler = handler
        self.path = path
        self.query = query
        self.headers = headers
        self.keep_alive = keep_alive
        self.chunks: list[bytes] = []
        self.disconnected = False
        self.response_complete = False


class GatheredWrites(asyncio.Transport):
    """A transport that holds writes until the loop's current round ends, then sends them as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._send)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= _SEND_AT:
            self._send()  # a large body goes now: its memory, and uvicorn's flow control

    def send_now(self, data: bytes) -> None:
        """Send ``data`` at once, behind whatever is gathered (a whole answer needs no company)."""
        if self._pending:
            self._pending.append(data)
            self._send()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _send(self) -> None:
        pending, self._pending, self._size = self._pending, [], 0
        if not pending or self._transport.is_closing():
            return  # the peer is gone: a send now would fail too
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._size = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
