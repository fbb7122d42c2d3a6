"""A stand-in for PostHog's symbol set API (httpx.MockTransport) that records every request.

It answers like PostHog's code does (sdk-clients.md §3, posthog-error-tracking.md §1.7, §1.8,
§6): releases by hash, bulk check/start/finish, and an S3-style presigned POST on another host.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

HOST = "https://posthog.example"
UPLOAD_URL = "https://uploads.example/bucket"
PROJECT = "42"
API_KEY = "phx_test_key"
PREFIX = f"/api/projects/{PROJECT}/error_tracking/"


@dataclass
class Recorded:
    method: str
    url: httpx.URL
    headers: httpx.Headers
    body: bytes

    @property
    def path(self) -> str:
        return self.url.path

    @property
    def action(self) -> str:
        return self.url.path.removeprefix(PREFIX)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StoredSet:
    id: str
    release_id: str | None
    content_hash: str | None = None
    data: bytes | None = None


@dataclass
class FakePostHog:
    requests: list[Recorded] = field(default_factory=list)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # by hash_id
    sets: dict[str, StoredSet] = field(default_factory=dict)  # by chunk id
    check_status: int = 200  # 404: a server without bulk_check_upload
    forced: dict[str, int] = field(default_factory=dict)  # action -> status to answer
    failures: dict[str, int] = field(default_factory=dict)  # action -> how many 503s first
    network_failures: dict[str, int] = field(default_factory=dict)  # action or "upload" -> errors first
    unknown_chunk_in_id_map: bool = False
    fallback_url: str | None = None
    fields: dict[str, str] = field(
        default_factory=lambda: {"x-amz-algorithm": "AWS4-HMAC-SHA256", "policy": "eyJjb25kaXRpb25zIjpbXX0="}
    )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def api(self) -> list[Recorded]:
        return [request for request in self.requests if request.url.host == "posthog.example"]

    def uploads(self) -> list[Recorded]:
        return [request for request in self.requests if request.url.host != "posthog.example"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        recorded = Recorded(request.method, request.url, request.headers, request.read())
        self.requests.append(recorded)
        is_upload = request.url.host != "posthog.example"
        action = "upload" if is_upload else recorded.action
        if self.network_failures.get(action, 0):
            self.network_failures[action] -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if self.failures.get(action, 0):
            self.failures[action] -= 1
            return _error(503, "server_error", "Service unavailable")
        if action in self.forced:
            status = self.forced[action]
            codes = {401: ("authentication_error", "Invalid personal API key.")}
            code, detail = codes.get(status, ("error", f"forced {status}"))
            return _error(status, code, detail)
        if is_upload:
            return self._upload(recorded)
        assert request.url.path.startswith(PREFIX), request.url.path
        if request.method == "GET" and action.startswith("releases/hash/"):
            release = self.releases.get(action.removeprefix("releases/hash/"))
            return httpx.Response(200, json=release) if release else _error(404, "not_found", "Not found.")
        body = recorded.json()
        handlers = {
            "releases": self._create_release,
            "symbol_sets/bulk_check_upload": self._check,
            "symbol_sets/bulk_start_upload": self._start,
            "symbol_sets/bulk_finish_upload": self._finish,
        }
        return handlers[action](body)

    def _create_release(self, body: dict[str, Any]) -> httpx.Response:
        release = {
            "id": str(uuid.uuid4()),
            "hash_id": body["hash_id"],
            "team_id": 1,
            "created_at": "2026-11-23T00:00:00Z",
            "metadata": body.get("metadata"),
            "version": body["version"],
            "project": body["project"],
        }
        self.releases[body["hash_id"]] = release
        return httpx.Response(201, json=release)

    def _check(self, body: dict[str, Any]) -> httpx.Response:
        if self.check_status != 200:
            return _error(self.check_status, "not_found", "Not found.")
        needed = [entry["chunk_id"] for entry in body["symbol_sets"] if self._needs_upload(entry)]
        return httpx.Response(200, json={"chunk_ids_to_upload": needed})

    def _start(self, body: dict[str, Any]) -> httpx.Response:
        for entry in body["symbol_sets"]:
            existing = self.sets.get(entry["chunk_id"])
            if existing and existing.release_id and entry["release_id"] and existing.release_id != entry["release_id"]:
                detail = f"Symbol set {entry['chunk_id']} already belongs to another release."
                return _error(400, "release_id_mismatch", detail, attr="release_id")
        id_map: dict[str, Any] = {}
        for entry in body["symbol_sets"]:
            if not self._needs_upload(entry):
                continue
            existing = self.sets.get(entry["chunk_id"])
            stored = StoredSet(
                id=str(uuid.uuid4()), release_id=entry["release_id"] or (existing and existing.release_id)
            )
            self.sets[entry["chunk_id"]] = stored
            id_map[entry["chunk_id"]] = self._target(stored)
        if self.unknown_chunk_in_id_map:
            id_map["ffffffff-ffff-4fff-8fff-ffffffffffff"] = self._target(
                StoredSet(id=str(uuid.uuid4()), release_id=None)
            )
        return httpx.Response(201, json={"id_map": id_map})

    def _target(self, stored: StoredSet) -> dict[str, Any]:
        target: dict[str, Any] = {
            "symbol_set_id": stored.id,
            "presigned_url": {"url": UPLOAD_URL, "fields": {"key": f"symbolsets/{stored.id}", **self.fields}},
        }
        if self.fallback_url:
            target["fallback_presigned_url"] = {"url": self.fallback_url, "fields": {"key": f"symbolsets/{stored.id}"}}
        return target

    def _needs_upload(self, entry: dict[str, Any]) -> bool:
        existing = self.sets.get(entry["chunk_id"])
        return existing is None or existing.content_hash is None or existing.content_hash != entry["content_hash"]

    def _upload(self, request: Recorded) -> httpx.Response:
        parts = multipart_parts(request)
        key = {name: value for name, _, value in parts}["key"].decode()
        stored = next(stored for stored in self.sets.values() if f"symbolsets/{stored.id}" == key)
        stored.data = parts[-1][2]
        return httpx.Response(204)

    def _finish(self, body: dict[str, Any]) -> httpx.Response:
        by_id = {stored.id: stored for stored in self.sets.values()}
        for symbol_set_id, content_hash in body["content_hashes"].items():
            if symbol_set_id not in by_id or by_id[symbol_set_id].data is None:
                return _error(400, "file_not_found", f"No file uploaded for {symbol_set_id}.")
            by_id[symbol_set_id].content_hash = content_hash
        return httpx.Response(201, json={"success": True})


def multipart_parts(request: Recorded) -> list[tuple[str, str | None, bytes]]:
    """(name, filename, content) of each part, in the order they were sent."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts = []
    for part in message.iter_parts():
        disposition = part.get("content-disposition")
        parts.append(
            (disposition.params["name"], disposition.params.get("filename"), part.get_payload(decode=True) or b"")
        )
    return parts


def _error(status: int, code: str, detail: str, attr: str | None = None) -> httpx.Response:
    kind = "validation_error" if status == 400 else "invalid_request"
    return httpx.Response(status, json={"type": kind, "code": code, "detail": detail, "attr": attr})
