"""MCP clients for the tests: the official SDK's ``Client`` over Streamable HTTP (``/mcp`` on
the live server) and over stdio (``trapline mcp`` as a subprocess), driven from sync tests.

The SDK is async and a connection must be opened and closed in one task, so each module runs
one event loop in a thread (an anyio blocking portal) and keeps its connections open there;
a test calls through the portal. A stdio connection costs a process start (~2 s), so a
module opens one per key and reuses it.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, GetPromptResult, ReadResourceResult, TextContent, TextResourceContents

from tests.mcp.live import LiveTrapline, auth
from tests.server import TRAPLINE

__all__ = [
    "TRANSPORTS",
    "Connect",
    "Connections",
    "McpSession",
    "Rest",
    "connections",
    "http_mcp",
    "stdio_mcp",
    "text_of",
    "user_id",
]

TRANSPORTS = ("http", "stdio")


@asynccontextmanager
async def http_mcp(url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[Client]:
    """A client of ``url`` (``…/mcp``) sending ``headers`` (the key, the project) on every request.

    The SDK's transport takes an ``httpx2`` client (not ``httpx``) for headers and timeouts."""
    async with (
        httpx2.AsyncClient(headers=dict(headers or {}), timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def stdio_mcp(
    server_url: str, key: str | None, *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[Client]:
    """``trapline mcp`` against ``server_url``. The SDK starts it with only a few inherited
    variables (PATH, HOME…) plus ``env``, so nothing of the test's own environment leaks in."""
    variables = {"TRAPLINE_URL": server_url, **({"TRAPLINE_API_KEY": key} if key else {}), **(env or {})}
    params = StdioServerParameters(command=str(TRAPLINE), args=["mcp", *args], env=variables)
    # The server logs every failed tool call to stderr; a file keeps it out of pytest's output
    # (and the SDK needs a real file descriptor for the child's stderr).
    with tempfile.TemporaryFile("w+") as log:
        async with Client(stdio_client(params, errlog=log)) as client:
            yield client


def text_of(result: CallToolResult | ReadResourceResult | GetPromptResult) -> str:
    """The text of an answer's one block (tool result, resource or prompt message)."""
    block: object
    if isinstance(result, CallToolResult):
        [block] = result.content
    elif isinstance(result, ReadResourceResult):
        [block] = result.contents
    else:
        [message] = result.messages
        block = message.content
    assert isinstance(block, (TextContent, TextResourceContents)), block
    return block.text


@dataclass
class McpSession:
    """An open MCP connection, called from sync code through the module's portal."""

    portal: BlockingPortal
    client: Client
    transport: str

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        result = self.portal.call(self.client.call_tool, tool, arguments)
        assert isinstance(result, CallToolResult), result
        return result

    def ok(self, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
        """Call a tool that must succeed; its text and structured content."""
        result = self.call(tool, **arguments)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        return text_of(result), result.structured_content

    def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; its error text."""
        result = self.call(tool, **arguments)
        assert result.is_error, text_of(result)
        return text_of(result)

    def list_tools(self) -> Any:
        return self.portal.call(self.client.list_tools)

    def list_resource_templates(self) -> Any:
        return self.portal.call(self.client.list_resource_templates)

    def read_resource(self, uri: str) -> ReadResourceResult:
        return self.portal.call(self.client.read_resource, uri)

    def list_prompts(self) -> Any:
        return self.portal.call(self.client.list_prompts)

    def get_prompt(self, name: str, arguments: dict[str, str]) -> GetPromptResult:
        return self.portal.call(self.client.get_prompt, name, arguments)


# connect(key, project=None): a session for that key (and project, else the key's default).
Connect = Callable[..., McpSession]


class Connections:
    """Sessions by (transport, key, project), each connected once and kept open until the
    ``connections`` block ends; ``open`` connects anything else for the length of a ``with``."""

    def __init__(self, live: LiveTrapline, portal: BlockingPortal, stack: ExitStack) -> None:
        self.live = live
        self.portal = portal
        self._stack = stack
        self._opened: dict[tuple[str, str | None, int | None], McpSession] = {}

    def transport(self, transport: str) -> Connect:
        def connect(key: str | None, project: int | None = None) -> McpSession:
            slot = (transport, key, project)
            if slot not in self._opened:
                if transport == "http":
                    headers = dict(auth(key)) if key else {}
                    if project is not None:
                        headers["x-posthog-project-id"] = str(project)
                    manager = http_mcp(f"{self.live.url}/mcp", headers)
                else:
                    flags = ["--project-id", str(project)] if project is not None else []
                    manager = stdio_mcp(self.live.url, key, *flags)
                self._opened[slot] = self._session(self._stack, manager, transport)
            return self._opened[slot]

        return connect

    @contextmanager
    def open(self, manager: AbstractAsyncContextManager[Client], transport: str) -> Iterator[McpSession]:
        with ExitStack() as stack:
            yield self._session(stack, manager, transport)

    def _session(self, stack: ExitStack, manager: AbstractAsyncContextManager[Client], transport: str) -> McpSession:
        client = stack.enter_context(self.portal.wrap_async_context_manager(manager))
        return McpSession(self.portal, client, transport)


@contextmanager
def connections(live: LiveTrapline) -> Iterator[Connections]:
    with start_blocking_portal() as portal, ExitStack() as stack:
        yield Connections(live, portal, stack)


class Rest:
    """The REST API with the full key: what the tests check the tools' writes against (and
    how they put things back)."""

    def __init__(self, live: LiveTrapline, project_id: int | None = None, key: str | None = None) -> None:
        project = live.project_id if project_id is None else project_id
        self.client = httpx.Client(
            base_url=f"{live.url}/api/projects/{project}/error_tracking",
            headers=auth(key or live.keys.full),
            timeout=30,
        )

    def issue(self, issue_id: str) -> dict[str, Any]:
        response = self.client.get(f"/issues/{issue_id}/")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def set_status(self, issue_id: str, status: str) -> None:
        response = self.client.patch(f"/issues/{issue_id}/", json={"status": status})
        assert response.status_code == 200, response.text

    def unassign(self, issue_id: str) -> None:
        response = self.client.patch(f"/issues/{issue_id}/assign/", json={"assignee": None})
        assert response.status_code == 200, response.text

    def rules(self) -> list[dict[str, Any]]:
        response = self.client.get("/suppression_rules/", params={"limit": 100})
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["results"]
        return rows

    def delete_rule(self, rule_id: str) -> None:
        response = self.client.delete(f"/suppression_rules/{rule_id}/")
        assert response.status_code in (200, 204), response.text

    def close(self) -> None:
        self.client.close()


def user_id(live: LiveTrapline, email: str) -> int:
    """A user's id, read from the server's SQLite database (read-only): the REST API has no
    endpoint naming users, and assigning needs the numeric id."""
    with closing(sqlite3.connect(f"file:{live.data_dir / 'trapline.db'}?mode=ro", uri=True)) as db:
        row = db.execute('SELECT id FROM "user" WHERE email = ?', (email,)).fetchone()
    assert row is not None, email
    return int(row[0])
