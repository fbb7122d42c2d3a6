"""The floor for capture throughput: an ASGI app that reads the body and answers 200, nothing else.

    .venv/bin/python bench/bare_asgi.py --port 8001

Served by uvicorn with the options ``trapline serve`` uses (uvloop, httptools, no access log,
no server header, lifespan on), so that Trapline's accept rate divided by this app's rate is
the share of the HTTP stack's capacity that Trapline keeps.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

_BODY = b'{"status":1}'
_HEADERS = [(b"content-length", str(len(_BODY)).encode()), (b"content-type", b"application/json")]

Message = dict[str, Any]


async def app(scope: Message, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    # Reading the whole body matters: with a large body, the chunks are most of the work.
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
