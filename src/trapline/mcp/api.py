"""The REST API as the MCP tools see it: one project, one caller's key.

Every tool goes through Trapline's own REST API, so a tool can do exactly what the caller's
key may do there: the same scopes (``error_tracking:read`` / ``:write``), the same project
and organisation boundaries, the same validation and error bodies. Over stdio the API is
reached over HTTP at ``TRAPLINE_URL``; at ``/mcp`` it is the same application called in
process, with the caller's ``Authorization`` header passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ApiError", "RestApi"]

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ApiError(Exception):
    """The REST API refused a call; ``detail`` is its own explanation."""

    def __init__(self, status: int, code: str | None, detail: str, attr: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.attr = attr

    def __str__(self) -> str:
        where = f" ({self.attr})" if self.attr else ""
        if self.status == 403:
            return f"Permission denied: {self.detail}{where}"
        if self.status == 404:
            return f"Not found: {self.detail}{where}"
        if self.status == 401:
            return f"Not authenticated: {self.detail}"
        return f"{self.detail}{where} (HTTP {self.status}{', ' + self.code if self.code else ''})"


@dataclass
class RestApi:
    """Calls under ``/api/environments/{project}/`` with one key."""

    client: httpx.AsyncClient
    project: str  # a project id, or "@current": the key's organisation's first project
    public_url: str  # where the UI lives, for links; "" when unknown

    @classmethod
    def over_http(cls, base_url: str, authorization: str, project: str, *, verify: bool = True) -> RestApi:
        client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"Authorization": authorization}, timeout=_TIMEOUT, verify=verify
        )
        return cls(client, project, base_url.rstrip("/"))

    @classmethod
    def in_process(cls, app: Any, authorization: str, project: str, public_url: str) -> RestApi:
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(
            transport=transport, base_url="http://trapline.internal", headers={"Authorization": authorization}
        )
        return cls(client, project, public_url)

    async def resolve_project(self) -> None:
        """Name "@current" by its id, for links to the UI. Reading the project needs the
        ``project:read`` scope: a key without it keeps "@current" and its answers carry no
        links (the API itself takes "@current" everywhere)."""
        if self.project != "@current":
            return
        try:
            found = await self.get("")
        except ApiError as error:
            if error.status in (401, 503):
                raise
            self.public_url = ""
            return
        if isinstance(found, dict) and found.get("id") is not None:
            self.project = str(found["id"])

    async def close(self) -> None:
        await self.client.aclose()

    def path(self, tail: str) -> str:
        return f"/api/environments/{self.project}/{tail.lstrip('/')}".rstrip("/") + "/"

    async def get(self, tail: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call("GET", tail, params=params)

    async def post(self, tail: str, body: Any) -> Any:
        return await self._call("POST", tail, json=body)

    async def patch(self, tail: str, body: Any) -> Any:
        return await self._call("PATCH", tail, json=body)

    async def _call(self, method: str, tail: str, **kwargs: Any) -> Any:
        try:
            response = await self.client.request(method, self.path(tail), **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(503, "unreachable", f"Trapline could not be reached: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        return ApiError(response.status_code, body.get("code"), str(body["detail"]), body.get("attr"))
    return ApiError(response.status_code, None, response.text[:300] or response.reason_phrase)
