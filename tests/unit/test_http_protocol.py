"""The server's HTTP protocol sends each answer in one write, and loses nothing by waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from trapline import http_protocol
from trapline.http_protocol import GatheredWrites, HttpProtocol
from trapline.ingest.asgi import Answer

Message = dict[str, Any]


class RecordingTransport(asyncio.Transport):
    """What reached the socket, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_write_buffer_size(self) -> int:
        return 0


async def app(scope: Message, receive: Any, send: Any) -> None:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = b"got " + body
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(answer)).encode())]}
    )
    await send({"type": "http.response.body", "body": answer})


async def serve(data: bytes, *, wait_for: int = 1) -> RecordingTransport:
    protocol = HttpProtocol(Config(app, lifespan="off", log_config=None), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(data)
    for _ in range(200):
        if b"".join(transport.writes).count(b"HTTP/1.1 ") >= wait_for:
            break
        await asyncio.sleep(0.005)
    protocol.connection_lost(None)
    return transport


def request(body: bytes, *headers: str) -> bytes:
    head = ["POST /i/v0/e/ HTTP/1.1", "Host: trapline", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.mark.anyio
async def test_an_answer_is_sent_in_one_write():
    transport = await serve(request(b"{}"))
    [answer] = transport.writes  # uvicorn's own protocol writes the head and the body apart
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\ngot {}")


@pytest.mark.anyio
async def test_pipelined_requests_are_answered_in_order():
    transport = await serve(request(b"one") + request(b"two"), wait_for=2)
    sent = b"".join(transport.writes)
    assert sent.count(b"HTTP/1.1 200 OK") == 2
    assert sent.index(b"got one") < sent.index(b"got two")


@pytest.mark.anyio
async def test_closing_sends_what_is_gathered_first():
    transport = await serve(request(b"bye", "Connection: close"))
    assert transport.closed
    assert b"".join(transport.writes).endswith(b"got bye")


def gathering() -> tuple[RecordingTransport, GatheredWrites]:
    transport = RecordingTransport()
    return transport, GatheredWrites(transport, asyncio.get_running_loop())


@pytest.mark.anyio
async def test_writes_wait_for_the_round_and_a_large_body_goes_at_once():
    transport, gathered = gathering()
    gathered.write(b"head")
    gathered.write(b"body")
    assert transport.writes == [] and gathered.get_write_buffer_size() == 8
    await asyncio.sleep(0)
    assert transport.writes == [b"headbody"]
    large = b"x" * (64 * 1024)
    gathered.write(large)
    assert transport.writes == [b"headbody", large]  # memory stays bounded, flow control sees it
    await asyncio.sleep(0)
    assert len(transport.writes) == 2


@pytest.mark.anyio
async def test_a_whole_answer_goes_at_once_behind_what_is_gathered():
    transport, gathered = gathering()
    gathered.send_now(b"answer")
    assert transport.writes == [b"answer"]  # not held for the round's end
    gathered.write(b"head")
    gathered.send_now(b"next")
    assert transport.writes == [b"answer", b"headnext"]  # in order, in one write
    await asyncio.sleep(0)
    assert len(transport.writes) == 2
    transport.closed = True
    gathered.send_now(b"late")
    assert len(transport.writes) == 2


@pytest.mark.anyio
async def test_a_peer_that_left_gets_nothing():
    transport, gathered = gathering()
    gathered.write(b"late")
    transport.closed = True  # the peer closed the connection meanwhile
    await asyncio.sleep(0)
    assert transport.writes == []


class Handler:
    """A direct handler that answers with what it was given, once ``release`` is set."""

    def takes_directly(self, path: str) -> bool:
        return path == "/i/v0/e/"

    wanted_headers = frozenset({b"origin", b"content-length"})
    max_body_bytes = 1000

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes, dict[str, str], bytes]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def answer(self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes) -> Answer:
        self.calls.append((method, path, query_string, headers, body))
        await self.release.wait()
        return Answer(200, b"direct " + body, [(b"x-origin", headers.get("origin", "").encode())])


def connect(*handlers: Handler, access_log: bool = False) -> tuple[HttpProtocol, RecordingTransport]:
    state = ServerState()
    state.default_headers = [(b"date", b"today")]
    protocol = HttpProtocol.answering(*handlers)(Config(app, lifespan="off", log_config=None), state, {})
    protocol.access_log = access_log  # as `trapline serve` has it unless TRAPLINE_ACCESS_LOG is on
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def answers(transport: RecordingTransport, count: int) -> bytes:
    for _ in range(200):
        if b"".join(transport.writes).count(b"HTTP/1.1 ") >= count:
            break
        await asyncio.sleep(0.005)
    return b"".join(transport.writes)


@pytest.mark.anyio
async def test_a_plain_post_to_a_direct_path_is_answered_by_the_handler_and_the_connection_kept():
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(request(b"one", "Origin: https://shop.example").replace(b"/i/v0/e/", b"/i/v0/e/?ver=1"))
    sent = await answers(transport, 1)
    assert handler.calls == [
        ("POST", "/i/v0/e/", b"ver=1", {"origin": "https://shop.example", "content-length": "3"}, b"one")
    ]
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, body = sent.partition(b"\r\n\r\n")
    assert body == b"direct one"
    lines = head.split(b"\r\n")[1:]
    assert sorted(lines) == sorted(
        [b"date: today", b"content-length: 10", b"x-origin: https://shop.example", b"content-type: application/json"]
    )
    assert len(transport.writes) == 1 and not transport.closed
    protocol.data_received(request(b"two"))  # the same connection, the next request
    assert (await answers(transport, 2)).endswith(b"direct two")
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(request(b"one", "Connection: close"), id="Connection: close"),
        pytest.param(request(b"one").replace(b"HTTP/1.1", b"HTTP/1.0"), id="HTTP/1.0"),
    ],
)
@pytest.mark.anyio
async def test_a_direct_answer_closes_the_connection_the_client_does_not_keep(data: bytes):
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(data)
    sent = await answers(transport, 1)
    assert b"\r\nconnection: close\r\n" in sent and sent.endswith(b"direct one")
    assert transport.closed


@pytest.mark.parametrize(
    ("data", "access_log"),
    [
        pytest.param(request(b"one").replace(b"POST", b"PUT"), False, id="not a POST"),
        pytest.param(request(b"one").replace(b"/i/v0/e/", b"/other/"), False, id="another path"),
        pytest.param(request(b"one").replace(b"/i/v0/e/", b"/i/v0/%65/"), False, id="an escaped path"),
        pytest.param(request(b"x" * 1001), False, id="over the handler's limit"),
        pytest.param(request(b"one", "Expect: 100-continue"), False, id="Expect"),
        pytest.param(
            b"POST /i/v0/e/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n",
            False,
            id="chunked",
        ),
        # The access log is uvicorn's: every request goes its way then, to be logged.
        pytest.param(request(b"one"), True, id="with an access log"),
    ],
)
@pytest.mark.anyio
async def test_what_is_not_a_plain_post_goes_to_the_asgi_app(data: bytes, access_log: bool):
    handler = Handler()
    protocol, transport = connect(handler, access_log=access_log)
    protocol.data_received(data)
    sent = await answers(transport, 1)
    protocol.connection_lost(None)
    assert handler.calls == []
    assert b"\r\n\r\ngot " in sent


@pytest.mark.anyio
async def test_pipelined_direct_and_asgi_requests_are_answered_in_order():
    handler = Handler()
    handler.release.clear()
    protocol, transport = connect(handler)
    other = request(b"two").replace(b"/i/v0/e/", b"/other/")
    protocol.data_received(request(b"one") + other + request(b"three"))
    await asyncio.sleep(0.02)
    assert transport.writes == []  # the first waits for its handler, the others behind it
    handler.release.set()
    sent = await answers(transport, 3)
    protocol.connection_lost(None)
    assert sent.index(b"direct one") < sent.index(b"got two") < sent.index(b"three")


async def waiting_for_its_answer() -> tuple[Handler, HttpProtocol, RecordingTransport]:
    """A connection whose direct request waits for its handler's answer."""
    handler = Handler()
    handler.release.clear()
    protocol, transport = connect(handler)
    protocol.data_received(request(b"one"))
    await asyncio.sleep(0.01)
    return handler, protocol, transport


@pytest.mark.anyio
async def test_a_client_gone_before_the_direct_answer_gets_nothing():
    handler, protocol, transport = await waiting_for_its_answer()
    protocol.connection_lost(None)
    transport.writes.clear()
    transport.closed = False  # so that a late write would be seen rather than refused
    handler.release.set()
    await asyncio.sleep(0.02)
    assert handler.calls and transport.writes == []


@pytest.mark.anyio
async def test_a_shutdown_during_a_direct_answer_closes_after_it():
    handler, protocol, transport = await waiting_for_its_answer()
    protocol.shutdown()
    assert not transport.closed  # it waits for the answer
    handler.release.set()
    sent = await answers(transport, 1)
    assert b"\r\nconnection: close\r\n" in sent and sent.endswith(b"direct one")
    assert transport.closed


@pytest.mark.anyio
async def test_a_handler_that_fails_closes_the_connection_rather_than_leave_it_waiting(
    caplog: pytest.LogCaptureFixture,
):
    handler = Handler()

    async def broken(*args: Any) -> Answer:
        raise RuntimeError("bug")

    handler.answer = broken  # type: ignore[method-assign]
    protocol, transport = connect(handler)
    protocol.data_received(request(b"one"))
    await closed_after(transport, limit=0.5)
    assert transport.writes == []
    assert "direct answer failed" in caplog.text


class EnvelopeHandler(Handler):
    def takes_directly(self, path: str) -> bool:
        return path.startswith("/api/")


@pytest.mark.anyio
async def test_each_direct_path_goes_to_the_handler_that_takes_it():
    capture, envelopes = Handler(), EnvelopeHandler()
    protocol, transport = connect(capture, envelopes)
    protocol.data_received(request(b"one").replace(b"/i/v0/e/", b"/api/7/envelope/"))
    await answers(transport, 1)
    protocol.data_received(request(b"two"))
    await answers(transport, 2)
    protocol.connection_lost(None)
    assert [call[1] for call in envelopes.calls] == ["/api/7/envelope/"]
    assert [call[1] for call in capture.calls] == ["/i/v0/e/"]


def keeping_alive(seconds: float, *handlers: Handler) -> tuple[HttpProtocol, RecordingTransport]:
    config = Config(app, lifespan="off", log_config=None, timeout_keep_alive=seconds)  # type: ignore[arg-type]
    protocol = HttpProtocol.answering(*handlers)(config, ServerState(), {})
    protocol.access_log = False
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def closed_after(transport: RecordingTransport, limit: float = 3.0) -> float:
    """Seconds until the connection was closed (polled)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not transport.closed and loop.time() - started < limit:
        await asyncio.sleep(0.01)
    assert transport.closed
    return loop.time() - started


@pytest.mark.parametrize("path", [b"/i/v0/e/", b"/other/"], ids=["direct", "asgi"])
@pytest.mark.anyio
async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_and_a_busy_one_is_not(path: bytes):
    protocol, transport = keeping_alive(0.5, Handler())
    for n in range(8):  # 0.8 s of requests 0.1 s apart: never idle for the timeout
        protocol.data_received(request(b"x").replace(b"/i/v0/e/", path))
        await answers(transport, n + 1)
        await asyncio.sleep(0.1)
    assert not transport.closed
    assert 0.3 <= await closed_after(transport) <= 1.0  # 0.1 s of it idle already
    protocol.connection_lost(None)


@pytest.mark.anyio
async def test_a_request_still_being_answered_is_not_cut_by_the_keep_alive_timeout():
    handler = Handler()
    protocol, transport = keeping_alive(0.5, handler)
    protocol.data_received(request(b"one"))
    await answers(transport, 1)
    handler.release.clear()
    await asyncio.sleep(0.2)
    protocol.data_received(request(b"two"))  # in hand when the first idle spell's timer fires
    await asyncio.sleep(0.6)
    assert not transport.closed
    handler.release.set()
    assert (await answers(transport, 2)).endswith(b"direct two")
    assert not transport.closed
    assert await closed_after(transport) >= 0.4
    protocol.connection_lost(None)


@pytest.mark.anyio
async def test_the_asgi_app_gets_the_whole_scope_of_a_request_not_answered_directly():
    scopes: list[Message] = []

    async def recording(scope: Message, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await app(scope, receive, send)

    protocol = HttpProtocol.answering(Handler())(Config(recording, lifespan="off", log_config=None), ServerState(), {})
    protocol.access_log = False
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request(b"one", "X-Thing: a", "Expect: 100-continue").replace(b"/i/v0/e/", b"/other/?q=1"))
    await answers(transport, 1)
    protocol.connection_lost(None)
    [scope] = scopes
    assert (scope["type"], scope["method"], scope["path"], scope["query_string"]) == ("http", "POST", "/other/", b"q=1")
    assert scope["headers"] == [
        (b"host", b"trapline"),
        (b"content-length", b"3"),
        (b"x-thing", b"a"),
        (b"expect", b"100-continue"),
    ]
    assert scope["client"] == ("127.0.0.1", 5000) and scope["server"] == ("127.0.0.1", 8000)
    assert b"HTTP/1.1 100 Continue" in b"".join(transport.writes)  # uvicorn saw the Expect


class Plain(Handler):
    """Answers with no headers of its own: the answers whose bytes are kept."""

    async def answer(self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes) -> Answer:
        return Answer(200, b'{"status":1}', [])


@pytest.mark.anyio
async def test_a_kept_answer_carries_the_date_of_the_second_it_is_sent():
    protocol, transport = connect(Plain())
    protocol.data_received(request(b"one"))
    first = await answers(transport, 1)
    protocol.server_state.default_headers = [(b"date", b"tomorrow")]  # uvicorn's tick, a second on
    protocol.data_received(request(b"two"))
    both = await answers(transport, 2)
    second = both[len(first) :]
    assert b"date: today\r\n" in first and b"date: tomorrow\r\n" in second
    assert second.endswith(b'\r\n\r\n{"status":1}') and b"content-length: 12\r\n" in second


@pytest.mark.anyio
async def test_a_direct_answer_is_among_uvicorns_tasks_until_sent():
    handler, protocol, transport = await waiting_for_its_answer()  # as capture waits for its commit
    assert len(protocol.tasks) == 1  # what a graceful shutdown waits for
    assert transport.writes == []
    handler.release.set()
    assert (await answers(transport, 1)).endswith(b"direct one")
    await asyncio.sleep(0)
    assert protocol.tasks == set()


@pytest.mark.anyio
async def test_a_shutdown_past_its_grace_cancels_a_direct_answer_unsent():
    handler, protocol, transport = await waiting_for_its_answer()
    [running] = protocol.tasks
    running.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # what uvicorn does past it
    await asyncio.sleep(0.01)
    assert protocol.tasks == set()
    handler.release.set()
    await asyncio.sleep(0.01)
    assert transport.writes == []  # cancelled: never answered


@pytest.mark.anyio
async def test_a_direct_answer_that_fails_after_the_handler_is_logged_and_closes(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    def broken(answer: Answer, keep_alive: bool, defaults: list[tuple[bytes, bytes]]) -> bytes:
        raise RuntimeError("encoding broke")

    monkeypatch.setattr(http_protocol._KEPT, "encoded", broken)
    protocol, transport = connect(Handler())
    protocol.data_received(request(b"one"))
    await closed_after(transport, limit=0.5)
    assert transport.writes == []  # not left open with nothing to answer it
    assert any(r.message == "direct answer failed" and r.exc_info for r in caplog.records)
    await asyncio.sleep(0)
    assert protocol.tasks == set()
