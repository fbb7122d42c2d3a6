"""The server's HTTP protocol sends each answer in one write, and loses nothing by waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from trapline.http_protocol import GatheredWrites, HttpProtocol

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
async def test_a_peer_that_left_gets_nothing():
    transport, gathered = gathering()
    gathered.write(b"late")
    transport.closed = True  # the peer closed the connection meanwhile
    await asyncio.sleep(0)
    assert transport.writes == []
