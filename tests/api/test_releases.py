"""``/error_tracking/releases``: versions of the user's apps, keyed by a client-chosen hash."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Tenant, make_project
from trapline.db.engine import Database

FIELDS = {"id", "hash_id", "team_id", "created_at", "metadata", "version", "project"}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def url(prefix: str, project_id: int, rest: str = "") -> str:
    return f"{prefix}/{project_id}/error_tracking/releases{rest}"


def invalid(detail: str) -> dict[str, Any]:
    return {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": None}


def cli_hash(project: str, version: str) -> str:
    """What posthog-cli sends as hash_id."""
    return hashlib.sha512((project + version).encode()).hexdigest()


def create(client: TestClient, tenant: Tenant, prefix: str, project_id: int | None = None, **fields: Any) -> Any:
    fields = {"version": "1.0.0", "project": "web", **fields}
    response = client.post(url(prefix, project_id or tenant.project_id), json=fields, headers=tenant.headers())
    assert response.status_code == 201, response.text
    return response.json()


def fetch(client: TestClient, tenant: Tenant, prefix: str, release_id: str, project_id: int | None = None) -> Any:
    response = client.get(url(prefix, project_id or tenant.project_id, f"/{release_id}"), headers=tenant.headers())
    assert response.status_code == 200, response.text
    return response.json()


def listed(client: TestClient, tenant: Tenant, prefix: str, project_id: int | None = None, **params: Any) -> Any:
    response = client.get(url(prefix, project_id or tenant.project_id), params=params, headers=tenant.headers("read"))
    assert response.status_code == 200, response.text
    return response.json()


# --- create -----------------------------------------------------------------------------------


def test_create_without_a_hash_uses_the_release_id(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id), json={"version": "1.4.2", "project": "checkout"}, headers=tenant.headers()
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert body == {
        "id": body["id"],
        "hash_id": body["id"],
        "team_id": tenant.project_id,
        "created_at": body["created_at"],
        "metadata": None,
        "version": "1.4.2",
        "project": "checkout",
    }
    assert uuid.UUID(body["id"])
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert body["created_at"].endswith("Z")
    assert fetch(client, tenant, prefix, body["id"]) == body


@pytest.mark.parametrize("hash_id", ["", None])
def test_an_empty_hash_means_none(client: TestClient, tenant: Tenant, prefix: str, hash_id: str | None):
    body = create(client, tenant, prefix, hash_id=hash_id)
    assert body["hash_id"] == body["id"]


def test_create_with_a_hash_and_metadata(client: TestClient, tenant: Tenant, prefix: str):
    metadata = {"git": {"commit_id": "abc123", "branch": "main", "remote_url": "git@example.com:a/b.git"}, "n": [1]}
    body = create(client, tenant, prefix, hash_id="abc", metadata=metadata, version="2.0", project="api")
    assert body == {
        "id": body["id"],
        "hash_id": "abc",
        "team_id": tenant.project_id,
        "created_at": body["created_at"],
        "metadata": metadata,
        "version": "2.0",
        "project": "api",
    }
    assert fetch(client, tenant, prefix, body["id"]) == body


def test_cli_hash_for_create_and_lookup(client: TestClient, tenant: Tenant, prefix: str):
    hash_id = cli_hash("my-app", "1.2.3")
    assert len(hash_id) == 128
    body = create(client, tenant, prefix, project="my-app", version="1.2.3", hash_id=hash_id)
    assert body["hash_id"] == hash_id
    for path in (f"/hash/{hash_id}", f"/hash/{hash_id}/"):
        response = client.get(url(prefix, tenant.project_id, path), headers=tenant.headers("read"))
        assert response.status_code == 200
        assert response.json() == body

    again = client.post(
        url(prefix, tenant.project_id),
        json={"project": "my-app", "version": "1.2.3", "hash_id": hash_id},
        headers=tenant.headers(),
    )
    assert again.status_code == 400
    assert again.json() == invalid(f"Hash id {hash_id} already in use")


@pytest.mark.parametrize("hash_id", ["h" * 128, "é" * 128, "🐛" * 128])
def test_hash_id_of_exactly_128_characters(client: TestClient, tenant: Tenant, prefix: str, hash_id: str):
    # characters, not bytes, despite the message: PostHog counts len(str)
    body = create(client, tenant, prefix, hash_id=hash_id)
    assert body["hash_id"] == hash_id
    assert fetch(client, tenant, prefix, body["id"]) == body


@pytest.mark.parametrize("hash_id", ["h" * 129, cli_hash("a", "b") + "0", "é" * 129])
def test_hash_id_over_128_characters(client: TestClient, tenant: Tenant, prefix: str, hash_id: str):
    response = client.post(
        url(prefix, tenant.project_id),
        json={"version": "1", "project": "web", "hash_id": hash_id},
        headers=tenant.headers(),
    )
    assert response.status_code == 400
    assert response.json() == invalid("Hash id length cannot exceed 128 bytes")
    assert listed(client, tenant, prefix)["count"] == 0


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({}, "Version is required"),
        ({"project": "web"}, "Version is required"),
        ({"version": "", "project": "web"}, "Version is required"),
        ({"version": None, "project": "web"}, "Version is required"),
        ({"hash_id": "h" * 200}, "Version is required"),
        ({"version": "1.0"}, "Project is required"),
        ({"version": "1.0", "project": ""}, "Project is required"),
        ({"version": "1.0", "project": None}, "Project is required"),
        ({"version": "1.0", "hash_id": "h" * 200}, "Project is required"),
    ],
)
def test_create_needs_version_and_project(
    client: TestClient, tenant: Tenant, prefix: str, fields: dict[str, Any], detail: str
):
    response = client.post(url(prefix, tenant.project_id), json=fields, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid(detail)
    assert listed(client, tenant, prefix)["count"] == 0


def test_create_without_a_body(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("Version is required")


def test_numbers_are_read_as_strings(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, version=2, project=7, hash_id=12345)
    assert (body["version"], body["project"], body["hash_id"]) == ("2", "7", "12345")
    body = create(client, tenant, prefix, version=1.5)
    assert body["version"] == "1.5"


def test_create_from_a_form(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id), data={"version": "1.0", "project": "web"}, headers=tenant.headers()
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["project"], body["hash_id"], body["metadata"]) == ("1.0", "web", body["id"], None)

    response = client.post(
        url(prefix, tenant.project_id),
        data={"version": "2.0", "project": "web", "hash_id": "form-hash", "metadata": '{"git": {"branch": "main"}}'},
        headers=tenant.headers(),
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["hash_id"], body["metadata"]) == ("form-hash", {"git": {"branch": "main"}})


def test_form_body_under_a_json_content_type(client: TestClient, tenant: Tenant, prefix: str):
    # PostHog's docs: curl -H 'Content-Type: application/json' -d version=1.0 -d project=web
    response = client.post(
        url(prefix, tenant.project_id),
        content=b"version=1.0&project=web",
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["project"]) == ("1.0", "web")


def test_create_with_a_trailing_slash(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id, "/"), json={"version": "1", "project": "web"}, headers=tenant.headers("write")
    )
    assert response.status_code == 201
    assert response.json()["team_id"] == tenant.project_id


def test_releases_without_a_hash_never_collide(client: TestClient, tenant: Tenant, prefix: str):
    first = create(client, tenant, prefix)
    second = create(client, tenant, prefix)  # same version and project is fine
    assert first["hash_id"] != second["hash_id"]
    assert listed(client, tenant, prefix)["count"] == 2


def test_duplicate_hash_in_the_same_project(client: TestClient, tenant: Tenant, prefix: str):
    first = create(client, tenant, prefix, hash_id="abc")
    response = client.post(
        url(prefix, tenant.project_id),
        json={"version": "2", "project": "other", "hash_id": "abc"},
        headers=tenant.headers(),
    )
    assert response.status_code == 400
    assert response.json() == invalid("Hash id abc already in use")
    assert listed(client, tenant, prefix)["results"] == [first]


def test_another_releases_implicit_hash_is_in_use(client: TestClient, tenant: Tenant, prefix: str):
    implicit = create(client, tenant, prefix)
    response = client.post(
        url(prefix, tenant.project_id),
        json={"version": "2", "project": "web", "hash_id": implicit["id"]},
        headers=tenant.headers(),
    )
    assert response.status_code == 400
    assert response.json() == invalid(f"Hash id {implicit['id']} already in use")
    assert listed(client, tenant, prefix)["results"] == [implicit]


def test_same_hash_in_another_project_is_fine(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, prefix: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    mine = create(client, tenant, prefix, hash_id="abc")
    theirs = create(client, tenant, prefix, project_id=second.id, hash_id="abc")
    other_orgs = create(client, other_tenant, prefix, hash_id="abc")
    assert theirs["team_id"] == second.id
    assert other_orgs["team_id"] == other_tenant.project_id
    assert len({mine["id"], theirs["id"], other_orgs["id"]}) == 3

    response = client.get(url(prefix, tenant.project_id, "/hash/abc"), headers=tenant.headers())
    assert response.json() == mine
    response = client.get(url(prefix, second.id, "/hash/abc"), headers=tenant.headers())
    assert response.json() == theirs


# --- list -------------------------------------------------------------------------------------


def test_list_is_empty_at_first(client: TestClient, tenant: Tenant, prefix: str):
    assert listed(client, tenant, prefix) == {"count": 0, "next": None, "previous": None, "results": []}


def test_list_is_newest_first(client: TestClient, tenant: Tenant, prefix: str):
    releases = [create(client, tenant, prefix, version=f"1.{i}") for i in range(3)]
    assert listed(client, tenant, prefix) == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": releases[::-1],
    }
    response = client.get(url(prefix, tenant.project_id, "/"), headers=tenant.headers())
    assert response.json()["results"] == releases[::-1]


def test_list_is_paginated(client: TestClient, tenant: Tenant, prefix: str):
    newest_first = [create(client, tenant, prefix, version=f"1.{i}") for i in range(5)][::-1]
    base = f"http://testserver{url(prefix, tenant.project_id)}"
    assert listed(client, tenant, prefix, limit=2) == {
        "count": 5,
        "next": f"{base}?limit=2&offset=2",
        "previous": None,
        "results": newest_first[:2],
    }
    assert listed(client, tenant, prefix, limit=2, offset=2) == {
        "count": 5,
        "next": f"{base}?limit=2&offset=4",
        "previous": f"{base}?limit=2",
        "results": newest_first[2:4],
    }
    assert listed(client, tenant, prefix, limit=2, offset=4) == {
        "count": 5,
        "next": None,
        "previous": f"{base}?limit=2&offset=2",
        "results": newest_first[4:],
    }


def test_list_shows_only_this_projects_releases(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, prefix: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    create(client, tenant, prefix, project_id=second.id)
    create(client, other_tenant, prefix)
    mine = create(client, tenant, prefix)
    assert listed(client, tenant, prefix)["results"] == [mine]


# --- retrieve ---------------------------------------------------------------------------------


def test_retrieve(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, hash_id="abc", metadata={"a": 1})
    for path in (f"/{body['id']}", f"/{body['id']}/"):
        response = client.get(url(prefix, tenant.project_id, path), headers=tenant.headers("read"))
        assert response.status_code == 200
        assert response.json() == body


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("release_id", [str(uuid.uuid4()), "nope", "abc", "123"])
def test_unknown_or_malformed_id_is_not_found(
    client: TestClient, tenant: Tenant, prefix: str, method: str, release_id: str
):
    create(client, tenant, prefix, hash_id="abc")
    response = client.request(
        method, url(prefix, tenant.project_id, f"/{release_id}"), json={"version": "9"}, headers=tenant.headers()
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_another_projects_release_is_not_reachable(
    client: TestClient, tenant: Tenant, database: Database, prefix: str, method: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    theirs = create(client, tenant, prefix, project_id=second.id, hash_id="abc")
    response = client.request(
        method, url(prefix, tenant.project_id, f"/{theirs['id']}"), json={"version": "9"}, headers=tenant.headers()
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert fetch(client, tenant, prefix, theirs["id"], project_id=second.id) == theirs


@pytest.mark.parametrize("hash_id", ["unknown", cli_hash("web", "9.9.9")])
def test_lookup_by_an_unknown_hash(client: TestClient, tenant: Tenant, database: Database, prefix: str, hash_id: str):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    create(client, tenant, prefix, project_id=second.id, hash_id=hash_id)
    create(client, tenant, prefix, hash_id="known")
    response = client.get(url(prefix, tenant.project_id, f"/hash/{hash_id}"), headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_lookup_by_the_implicit_hash(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix)
    response = client.get(url(prefix, tenant.project_id, f"/hash/{body['hash_id']}"), headers=tenant.headers("read"))
    assert response.status_code == 200
    assert response.json() == body


# --- update -----------------------------------------------------------------------------------


def update(client: TestClient, tenant: Tenant, prefix: str, release_id: str, method: str = "PATCH", **kwargs: Any):
    return client.request(method, url(prefix, tenant.project_id, f"/{release_id}"), headers=tenant.headers(), **kwargs)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_answers_204_without_a_body(client: TestClient, tenant: Tenant, prefix: str, method: str):
    body = create(client, tenant, prefix, hash_id="abc", metadata={"a": 1})
    response = update(client, tenant, prefix, body["id"], method, json={"version": "2.0"})
    assert response.status_code == 204
    assert response.content == b""
    assert fetch(client, tenant, prefix, body["id"]) == {**body, "version": "2.0"}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_every_field(client: TestClient, tenant: Tenant, prefix: str, method: str):
    body = create(client, tenant, prefix, hash_id="abc", metadata={"a": 1})
    changes = {"version": "3.0", "project": "api", "hash_id": "def", "metadata": {"git": {"commit_id": "f00"}}}
    response = update(client, tenant, prefix, body["id"], method, json=changes)
    assert response.status_code == 204
    expected = {**body, **changes}
    assert fetch(client, tenant, prefix, body["id"]) == expected

    by_new_hash = client.get(url(prefix, tenant.project_id, "/hash/def"), headers=tenant.headers())
    assert by_new_hash.json() == expected
    by_old_hash = client.get(url(prefix, tenant.project_id, "/hash/abc"), headers=tenant.headers())
    assert by_old_hash.status_code == 404
    # the old hash is free again
    assert create(client, tenant, prefix, hash_id="abc")["hash_id"] == "abc"


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"version": "", "project": "", "hash_id": "", "metadata": {}},
        {"version": None, "project": None, "hash_id": None, "metadata": None},
        {"team_id": 999, "id": str(uuid.uuid4()), "created_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_empty_values_keep_the_current_ones(
    client: TestClient, tenant: Tenant, prefix: str, method: str, fields: dict[str, Any]
):
    body = create(client, tenant, prefix, hash_id="abc", metadata={"a": 1})
    response = update(client, tenant, prefix, body["id"], method, json=fields)
    assert response.status_code == 204
    assert response.content == b""
    assert fetch(client, tenant, prefix, body["id"]) == body


def test_update_without_a_body(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix)
    assert update(client, tenant, prefix, body["id"]).status_code == 204
    assert fetch(client, tenant, prefix, body["id"]) == body


def test_update_to_its_own_hash(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, hash_id="abc")
    response = update(client, tenant, prefix, body["id"], json={"hash_id": "abc", "version": "2"})
    assert response.status_code == 204
    assert fetch(client, tenant, prefix, body["id"]) == {**body, "version": "2"}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_to_a_hash_in_use(client: TestClient, tenant: Tenant, prefix: str, method: str):
    taken = create(client, tenant, prefix, hash_id="taken")
    implicit = create(client, tenant, prefix)
    body = create(client, tenant, prefix, hash_id="mine", metadata={"a": 1})
    for hash_id in ("taken", implicit["id"]):
        response = update(
            client, tenant, prefix, body["id"], method, json={"hash_id": hash_id, "version": "9", "metadata": {"b": 2}}
        )
        assert response.status_code == 400
        assert response.json() == invalid(f"Hash id {hash_id} already in use")
    # nothing of the refused request was applied
    assert fetch(client, tenant, prefix, body["id"]) == body
    assert fetch(client, tenant, prefix, taken["id"]) == taken


def test_update_to_a_hash_used_in_another_project(client: TestClient, tenant: Tenant, database: Database, prefix: str):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    create(client, tenant, prefix, project_id=second.id, hash_id="abc")
    body = create(client, tenant, prefix, hash_id="mine")
    assert update(client, tenant, prefix, body["id"], json={"hash_id": "abc"}).status_code == 204
    assert fetch(client, tenant, prefix, body["id"])["hash_id"] == "abc"


def test_update_to_a_hash_over_128_characters(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, hash_id="abc")
    response = update(client, tenant, prefix, body["id"], json={"hash_id": "h" * 129, "version": "9"})
    assert response.status_code == 400
    assert response.json() == invalid("Hash id length cannot exceed 128 bytes")
    assert fetch(client, tenant, prefix, body["id"]) == body
    assert update(client, tenant, prefix, body["id"], json={"hash_id": "h" * 128}).status_code == 204
    assert fetch(client, tenant, prefix, body["id"])["hash_id"] == "h" * 128


def test_update_from_a_form_with_a_trailing_slash(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix)
    response = client.patch(
        url(prefix, tenant.project_id, f"/{body['id']}/"),
        data={"version": "2.0", "metadata": '{"x": [1, 2]}'},
        headers=tenant.headers(),
    )
    assert response.status_code == 204
    assert fetch(client, tenant, prefix, body["id"]) == {**body, "version": "2.0", "metadata": {"x": [1, 2]}}


def test_numbers_are_read_as_strings_on_update(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix)
    assert (
        update(client, tenant, prefix, body["id"], json={"version": 3, "project": 4, "hash_id": 5}).status_code == 204
    )
    assert fetch(client, tenant, prefix, body["id"]) == {**body, "version": "3", "project": "4", "hash_id": "5"}


def test_read_key_cannot_write(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix)
    for method, path in (
        ("POST", ""),
        ("PATCH", f"/{body['id']}"),
        ("PUT", f"/{body['id']}"),
        ("DELETE", f"/{body['id']}"),
    ):
        response = client.request(
            method,
            url(prefix, tenant.project_id, path),
            json={"version": "9", "project": "x"},
            headers=tenant.headers("read"),
        )
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert listed(client, tenant, prefix)["results"] == [body]


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_delete(client: TestClient, tenant: Tenant, prefix: str, slash: str):
    kept = create(client, tenant, prefix, hash_id="kept")
    body = create(client, tenant, prefix, hash_id="abc")
    target = url(prefix, tenant.project_id, f"/{body['id']}{slash}")

    response = client.delete(target, headers=tenant.headers("write"))
    assert response.status_code == 204
    assert response.content == b""

    assert client.get(target, headers=tenant.headers()).json() == NOT_FOUND
    assert client.get(url(prefix, tenant.project_id, "/hash/abc"), headers=tenant.headers()).status_code == 404
    again = client.delete(target, headers=tenant.headers())
    assert again.status_code == 404
    assert again.json() == NOT_FOUND
    assert listed(client, tenant, prefix)["results"] == [kept]
    # its hash can be used again
    assert create(client, tenant, prefix, hash_id="abc")["hash_id"] == "abc"


def test_both_prefixes_reach_the_same_releases(client: TestClient, tenant: Tenant):
    body = create(client, tenant, "/api/environments", hash_id="abc")
    assert fetch(client, tenant, "/api/projects", body["id"]) == body
    response = client.get(url("/api/projects", tenant.project_id, "/hash/abc"), headers=tenant.headers())
    assert response.json() == body
