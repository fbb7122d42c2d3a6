"""Symbol sets: PostHog's CLI upload protocol against the local object store, and the resource itself."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.capture import post_batch
from tests.factories import Tenant
from tests.symbols.test_resolver import CHUNK, container, js_event
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.objects.store import ObjectStore
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.symbols.resolver import SymbolResolver
from trapline.worker import Worker

KIND = "symbol_sets"


def url(tenant: Tenant, *parts: str, prefix: str = "/api/projects", slash: bool = False) -> str:
    path = "/".join([f"{prefix}/{tenant.project_id}/error_tracking/{KIND}", *parts])
    return path + "/" if slash else path


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def start(client: TestClient, tenant: Tenant, *chunks: dict[str, Any], **flags: Any) -> Any:
    return client.post(
        url(tenant, "bulk_start_upload"), json={"symbol_sets": list(chunks), **flags}, headers=tenant.headers()
    )


def presigned_upload(client: TestClient, presigned: dict[str, Any], data: bytes) -> Any:
    # As PostHog's CLI does: every field as a text part, then the file, with no Bearer token.
    return client.post(presigned["url"], data=presigned["fields"], files={"file": ("file", data)})


def upload(client: TestClient, tenant: Tenant, chunk_id: str = CHUNK, data: bytes | None = None, **extra: Any) -> str:
    data = container() if data is None else data
    started = start(client, tenant, {"chunk_id": chunk_id, "content_hash": sha512(data), **extra})
    assert started.status_code == 201, started.text
    entry = started.json()["id_map"][chunk_id]
    assert presigned_upload(client, entry["presigned_url"], data).status_code == 204
    set_id: str = entry["symbol_set_id"]
    finished = client.post(
        url(tenant, "bulk_finish_upload"), json={"content_hashes": {set_id: sha512(data)}}, headers=tenant.headers()
    )
    assert finished.status_code == 201, finished.text
    return set_id


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    detail: str = body["detail"]
    return detail


@pytest.fixture
def store(client: TestClient) -> ObjectStore:
    objects: ObjectStore = client.app.state.objects  # type: ignore[attr-defined]
    return objects


# --- the upload protocol ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/projects", "/api/environments"])
@pytest.mark.parametrize("slash", [False, True])
def test_the_cli_protocol_uploads_a_symbol_set(
    client: TestClient, tenant: Tenant, store: ObjectStore, prefix: str, slash: bool
):
    data = container()
    chunk = {"chunk_id": CHUNK, "release_id": None, "content_hash": sha512(data), "content_length": len(data)}
    check = client.post(
        url(tenant, "bulk_check_upload", prefix=prefix, slash=slash),
        json={"symbol_sets": [chunk], "force": False, "skip_on_conflict": False},
        headers=tenant.headers(),
    )
    assert check.status_code == 200
    assert check.json() == {"chunk_ids_to_upload": [CHUNK]}
    started = client.post(
        url(tenant, "bulk_start_upload", prefix=prefix, slash=slash),
        json={"symbol_sets": [chunk], "force": False, "skip_on_conflict": False},
        headers=tenant.headers(),
    )
    assert started.status_code == 201
    entry = started.json()["id_map"][CHUNK]
    assert set(entry) == {"symbol_set_id", "presigned_url"}
    assert "key" in entry["presigned_url"]["fields"]
    assert presigned_upload(client, entry["presigned_url"], data).status_code == 204
    finished = client.post(
        url(tenant, "bulk_finish_upload", prefix=prefix, slash=slash),
        json={"content_hashes": {entry["symbol_set_id"]: sha512(data)}},
        headers=tenant.headers(),
    )
    assert (finished.status_code, finished.json()) == (201, {"success": True})
    row = client.get(url(tenant, entry["symbol_set_id"]), headers=tenant.headers()).json()
    assert row["ref"] == CHUNK and row["has_uploaded_file"] is True and row["team_id"] == tenant.project_id
    assert store.get(entry["presigned_url"]["fields"]["key"]) == data
    # Run again, nothing has changed: nothing to upload.
    again = start(client, tenant, chunk)
    assert again.json() == {"id_map": {}}
    assert client.post(
        url(tenant, "bulk_check_upload"), json={"symbol_sets": [chunk]}, headers=tenant.headers()
    ).json() == {"chunk_ids_to_upload": []}


def test_an_uploaded_map_resolves_the_next_events(
    client: TestClient, tenant: Tenant, database: Database, store: ObjectStore
):
    upload(client, tenant)
    post_batch(client, tenant.project_token, js_event())
    Worker(database, resolver=SymbolResolver(database, store)).drain()
    with database.session(write=False) as session:
        [event] = session.scalars(select(ExceptionEvent))
    frames = event.properties["$exception_list"][0]["stacktrace"]["frames"]
    assert [f["resolved_name"] for f in frames] == ["checkout", "computeTotal"]
    raw_ids = [f["raw_id"] for f in frames]
    got = client.post(
        url(tenant).replace(KIND, "stack_frames") + "/batch_get", json={"raw_ids": raw_ids}, headers=tenant.headers()
    )
    assert got.status_code == 200
    results = {r["raw_id"]: r for r in got.json()["results"]}
    assert set(results) == set(raw_ids)
    assert results[raw_ids[1]]["symbol_set_ref"] == CHUNK
    assert results[raw_ids[1]]["context"]["line"]["number"] == 7


def test_a_different_hash_needs_force_or_skip(client: TestClient, tenant: Tenant):
    upload(client, tenant)
    changed = {"chunk_id": CHUNK, "content_hash": "other"}
    detail = error(start(client, tenant, changed), 400, "content_hash_mismatch")
    assert CHUNK in detail
    assert start(client, tenant, changed, skip_on_conflict=True).json() == {"id_map": {}}
    forced = start(client, tenant, changed, force=True)
    assert list(forced.json()["id_map"]) == [CHUNK]
    error(start(client, tenant, changed, force=True, skip_on_conflict=True), 400, "invalid_conflict_handling")


def test_a_hashless_restart_of_an_uploaded_chunk_is_refused(client: TestClient, tenant: Tenant):
    upload(client, tenant)
    error(start(client, tenant, {"chunk_id": CHUNK}), 400, "content_hash_required")


def test_an_unfinished_upload_can_be_started_again(client: TestClient, tenant: Tenant):
    first = start(client, tenant, {"chunk_id": CHUNK, "content_hash": "h"}).json()["id_map"][CHUNK]
    second = start(client, tenant, {"chunk_id": CHUNK, "content_hash": "h"}).json()["id_map"][CHUNK]
    assert second["symbol_set_id"] == first["symbol_set_id"]
    assert second["presigned_url"]["fields"]["key"] != first["presigned_url"]["fields"]["key"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"symbol_sets": [{"chunk_id": "a"}, {"chunk_id": "a"}]}, "invalid_chunk_ids"),
        ({"symbol_sets": [{"chunk_id": "a", "release_id": "not-a-uuid"}]}, "invalid_release_id"),
        ({"symbol_sets": [{"chunk_id": "a", "release_id": str(uuid.uuid4())}]}, "invalid_release_id"),
        ({"symbol_sets": [{"chunk_id": "a", "content_length": 200 * 1024 * 1024}]}, "file_too_large"),
    ],
)
def test_bulk_start_validation(client: TestClient, tenant: Tenant, body: dict[str, Any], code: str):
    response = client.post(url(tenant, "bulk_start_upload"), json=body, headers=tenant.headers())
    error(response, 400, code)


def test_a_chunk_stays_with_its_release(client: TestClient, tenant: Tenant):
    releases = f"/api/projects/{tenant.project_id}/error_tracking/releases"
    one, two = (
        client.post(releases, json={"version": v, "project": "shop"}, headers=tenant.headers()).json()["id"]
        for v in ("1", "2")
    )
    upload(client, tenant, release_id=one)
    row = client.get(url(tenant), headers=tenant.headers()).json()["results"][0]
    assert row["release"]["id"] == one and row["release"]["version"] == "1"
    error(
        start(client, tenant, {"chunk_id": CHUNK, "content_hash": "x", "release_id": two}), 400, "release_id_mismatch"
    )


def test_legacy_chunk_ids_with_one_release(client: TestClient, tenant: Tenant):
    response = client.post(
        url(tenant, "bulk_start_upload"), json={"chunk_ids": ["a", "b"], "release_id": None}, headers=tenant.headers()
    )
    assert response.status_code == 201
    assert sorted(response.json()["id_map"]) == ["a", "b"]


def test_bulk_finish_checks_each_upload(client: TestClient, tenant: Tenant, database: Database):
    finish = url(tenant, "bulk_finish_upload")
    error(client.post(finish, json={"content_hashes": None}, headers=tenant.headers()), 400, "content_hashes_required")
    assert client.post(finish, json={"content_hashes": {}}, headers=tenant.headers()).status_code == 201
    unknown = str(uuid.uuid4())
    assert unknown in error(
        client.post(finish, json={"content_hashes": {unknown: "h"}}, headers=tenant.headers()),
        400,
        "symbol_set_not_found",
    )
    started = start(client, tenant, {"chunk_id": "never"}, {"chunk_id": "empty"}).json()["id_map"]
    never = started["never"]["symbol_set_id"]
    error(client.post(finish, json={"content_hashes": {never: "h"}}, headers=tenant.headers()), 400, "file_not_found")
    assert presigned_upload(client, started["empty"]["presigned_url"], b"").status_code == 204
    empty = started["empty"]["symbol_set_id"]
    error(client.post(finish, json={"content_hashes": {empty: "h"}}, headers=tenant.headers()), 400, "file_too_large")
    with database.session(write=False) as session:
        assert session.get(SymbolSet, uuid.UUID(empty)) is None  # an unusable upload is removed


def test_the_deprecated_single_upload(client: TestClient, tenant: Tenant):
    started = client.post(url(tenant, "start_upload") + f"?chunk_id={CHUNK}", headers=tenant.headers())
    assert started.status_code == 201
    body = started.json()
    assert presigned_upload(client, body["presigned_url"], container()).status_code == 204
    finished = client.put(
        url(tenant, body["symbol_set_id"], "finish_upload"), json={"content_hash": "h"}, headers=tenant.headers()
    )
    assert (finished.status_code, finished.json()) == (200, {"success": True})
    missing_hash = client.put(url(tenant, body["symbol_set_id"], "finish_upload"), json={}, headers=tenant.headers())
    error(missing_hash, 400, "content_hash_required")
    assert client.post(url(tenant, "start_upload"), headers=tenant.headers()).status_code == 400


# --- the resource ---------------------------------------------------------------------------------


def test_retrieve_update_and_delete(client: TestClient, tenant: Tenant, database: Database, store: ObjectStore):
    set_id = upload(client, tenant)
    with database.session(write=False) as session:
        key = session.get_one(SymbolSet, uuid.UUID(set_id)).storage_ptr
    assert key is not None and store.get(key) is not None
    row = client.get(url(tenant, set_id), headers=tenant.headers()).json()
    patched = client.patch(url(tenant, set_id), json={"ref": "changed"}, headers=tenant.headers())
    assert (patched.status_code, patched.json()) == (200, row)  # kept for compatibility: changes nothing
    assert client.delete(url(tenant, set_id), headers=tenant.headers()).status_code == 204
    assert client.get(url(tenant, set_id), headers=tenant.headers()).status_code == 404
    assert store.get(key) is None
    assert client.delete(url(tenant, set_id), headers=tenant.headers()).status_code == 404


def test_deleting_keeps_resolved_frames_and_drops_failed_ones(
    client: TestClient, tenant: Tenant, database: Database, store: ObjectStore
):
    set_id = upload(client, tenant)
    with database.session(write=True) as session:
        for resolved in (True, False):
            session.add(
                StackFrame(
                    project_id=tenant.project_id, raw_id=f"r{resolved}", symbol_set_id=uuid.UUID(set_id),
                    contents={}, resolved=resolved,
                )
            )  # fmt: skip
        session.commit()
    client.delete(url(tenant, set_id), headers=tenant.headers())
    with database.session(write=False) as session:
        assert [(f.raw_id, f.symbol_set_id) for f in session.scalars(select(StackFrame))] == [("rTrue", None)]


def test_bulk_delete(client: TestClient, tenant: Tenant):
    ids = [upload(client, tenant, chunk_id=f"c{i}") for i in range(3)]
    response = client.post(
        url(tenant, "bulk_delete"), json={"ids": [*ids[:2], str(uuid.uuid4())]}, headers=tenant.headers()
    )
    assert (response.status_code, response.json()) == (200, {"deleted": 2})
    assert [r["id"] for r in client.get(url(tenant), headers=tenant.headers()).json()["results"]] == [ids[2]]
    assert (
        error(client.post(url(tenant, "bulk_delete"), json={}, headers=tenant.headers()), 400, "invalid_input")
        == "ids is required"
    )
    assert (
        error(
            client.post(url(tenant, "bulk_delete"), json={"ids": "x"}, headers=tenant.headers()), 400, "invalid_input"
        )
        == "ids must be a list"
    )


def test_download(client: TestClient, tenant: Tenant):
    set_id = upload(client, tenant)
    response = client.get(url(tenant, set_id, "download"), headers=tenant.headers("read"))
    assert response.status_code == 200
    assert client.get(response.json()["url"]).content == container()
    pending = start(client, tenant, {"chunk_id": "pending"}).json()["id_map"]["pending"]["symbol_set_id"]
    detail = error(client.get(url(tenant, pending, "download"), headers=tenant.headers()), 404, "not_found")
    assert detail == "Symbol set has no uploaded file."


def test_list_filters_and_orders(client: TestClient, tenant: Tenant):
    releases = f"/api/projects/{tenant.project_id}/error_tracking/releases"
    release = client.post(releases, json={"version": "9.9.9", "project": "shop"}, headers=tenant.headers()).json()["id"]
    upload(client, tenant, chunk_id="aaa", release_id=release)
    upload(client, tenant, chunk_id="bbb")
    client.post(url(tenant, "bulk_start_upload"), json={"chunk_ids": ["zzz-pending"]}, headers=tenant.headers())

    def refs(query: str) -> list[str]:
        response = client.get(url(tenant) + query, headers=tenant.headers("read"))
        assert response.status_code == 200, response.text
        return [r["ref"] for r in response.json()["results"]]

    assert refs("") == ["zzz-pending", "bbb", "aaa"]  # newest first
    assert refs("?order_by=ref") == ["aaa", "bbb", "zzz-pending"]
    assert refs("?ref=bbb") == ["bbb"]
    assert refs("?search=BB") == ["bbb"]
    assert refs("?search=9.9") == ["aaa"]  # the release's version
    assert refs("?status=valid") == ["zzz-pending", "bbb", "aaa"]  # PostHog: valid = an object was assigned
    error(client.get(url(tenant) + "?status=nope", headers=tenant.headers()), 400, "invalid_choice")
    error(client.get(url(tenant) + "?order_by=nope", headers=tenant.headers()), 400, "invalid_choice")
    assert client.get(url(tenant) + "?limit=500", headers=tenant.headers()).json()["count"] == 3


def test_a_placeholder_of_a_missing_chunk_is_invalid_until_uploaded(
    client: TestClient, tenant: Tenant, database: Database, store: ObjectStore
):
    post_batch(client, tenant.project_token, js_event())
    Worker(database, resolver=SymbolResolver(database, store)).drain()
    invalid = client.get(url(tenant) + "?status=invalid", headers=tenant.headers()).json()["results"]
    assert [r["ref"] for r in invalid] == [CHUNK]
    assert invalid[0]["has_uploaded_file"] is False
    upload(client, tenant)  # the CLI finds the placeholder and fills it
    assert client.get(url(tenant) + "?status=invalid", headers=tenant.headers()).json()["results"] == []


def test_scopes_and_isolation(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    set_id = upload(client, tenant)
    assert client.get(url(tenant), headers=tenant.headers("read")).status_code == 200
    response = client.post(url(tenant, "bulk_start_upload"), json={"chunk_ids": ["x"]}, headers=tenant.headers("read"))
    assert "error_tracking:write" in error(response, 403, "permission_denied")
    assert client.delete(url(tenant, set_id), headers=tenant.headers("read")).status_code == 403
    assert client.get(url(tenant, set_id), headers=other_tenant.headers()).status_code == 404
    other_url = url(tenant).replace(f"/{tenant.project_id}/", f"/{other_tenant.project_id}/")
    assert client.get(other_url + f"/{set_id}", headers=other_tenant.headers()).status_code == 404
    assert client.get(url(tenant)).status_code == 401
