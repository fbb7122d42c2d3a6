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


class _Run:
    """One start of the application: its MCP handling, made by its first /mcp request."""

    def __init__(self) -> None:
        self.handler: ASGIApp | None = None
        self.wanted = anyio.Event()
        self.started = anyio.Event()
        self.stopping = anyio.Event()


class _Endpoint:
    def __init__(self, app: Any, public_url: str) -> None:
        self._app = app
        self._public_url = public_url
        # The application's runs in progress, latest last: tests start one app more than once
        # at a time (two clients), and each run's handling lives in its own task group.
        self._runs: list[_Run] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = self._runs[-1] if self._runs else None
        if run is not None and run.handler is None:
            run.wanted.set()
            await run.started.wait()
        if run is None or run.handler is None:
            await PlainTextResponse("The MCP server is not running.", status_code=503)(scope, receive, send)
            return
        await run.handler(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        run = _Run()
        self._runs.append(run)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._serve_when_wanted, run)
                try:
                    yield
                finally:
                    run.stopping.set()
                    run.wanted.set()
        finally:
            self._runs.remove(run)

    async def _serve_when_wanted(self, run: _Run) -> None:
        await run.wanted.wait()
        if run.stopping.is_set():
            return
        try:
            server = await anyio.to_thread.run_sync(importlib.import_module, "trapline.mcp.server")
            async with server.http_handler(self._app, self._public_url) as handler:
                run.handler = handler
                run.started.set()
                await run.stopping.wait()
        except Exception:
            # The rest of the app keeps serving; /mcp answers 503 and says so in the log.
            log.exception("the MCP server could not start")
        finally:
            run.handler = None
            run.started.set()


def mount(app: Any, public_url: str) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Serve MCP at ``/mcp`` on ``app``; returns what the app's lifespan must enter each time
    it starts (the SDK's request handling needs a task group running)."""
    endpoint = _Endpoint(app, public_url)
    # One route for both spellings: a Mount would answer /mcp with a redirect some clients
    # do not follow for POSTs.
    for path in ("/mcp", "/mcp/"):
        app.router.routes.insert(0, Route(path, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    return endpoint.running
