"""``/mcp`` on Trapline's server, started by its first request.

The MCP SDK takes most of a second to import, which every ``trapline serve`` start (and every
test server) paid whether or not an agent ever connects. This module does not import it: the
app's lifespan runs a task that waits for the first ``/mcp`` request, imports the SDK in a
thread (the event loop keeps serving), and runs its session manager until the app stops;
requests wait for it once.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["mount"]

log = logging.getLogger("trapline.mcp")


class _Endpoint:
    def __init__(self, app: Any, public_url: str) -> None:
        self._app = app
        self._public_url = public_url
        self._handler: ASGIApp | None = None
        self._wanted: anyio.Event | None = None  # set while the app runs
        self._started: anyio.Event | None = None
        self._stopping: anyio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._handler is None and self._wanted is not None and self._started is not None:
            self._wanted.set()
            await self._started.wait()
        if self._handler is None:
            await PlainTextResponse("The MCP server is not running.", status_code=503)(scope, receive, send)
            return
        await self._handler(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._wanted, self._started, self._stopping = anyio.Event(), anyio.Event(), anyio.Event()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._serve_when_wanted)
                try:
                    yield
                finally:
                    self._stopping.set()
                    self._wanted.set()
        finally:
            self._handler = self._wanted = self._started = self._stopping = None

    async def _serve_when_wanted(self) -> None:
        assert self._wanted is not None and self._started is not None and self._stopping is not None
        await self._wanted.wait()
        if self._stopping.is_set():
            return
        try:
            server = await anyio.to_thread.run_sync(importlib.import_module, "trapline.mcp.server")
            async with server.http_handler(self._app, self._public_url) as handler:
                self._handler = handler
                self._started.set()
                await self._stopping.wait()
        except Exception:
            # The rest of the app keeps serving; /mcp answers 503 and says so in the log.
            log.exception("the MCP server could not start")
        finally:
            self._handler = None
            self._started.set()


def mount(app: Any, public_url: str) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Serve MCP at ``/mcp`` on ``app``; returns what the app's lifespan must enter each time
    it starts (the SDK's request handling needs a task group running)."""
    endpoint = _Endpoint(app, public_url)
    # One route for both spellings: a Mount would answer /mcp with a redirect some clients
    # do not follow for POSTs.
    for path in ("/mcp", "/mcp/"):
        app.router.routes.insert(0, Route(path, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    return endpoint.running
