"""Personal API keys, scopes and organization isolation, on every project route."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant, make_project
from trapline.accounts.models import Membership, PersonalApiKey, User
from trapline.app import create_app
from trapline.db.engine import Database
from trapline.db.types import utcnow

# (method, path under /api/{prefix}/{project_id}/error_tracking, needs write)
ROUTES = [
    ("GET", "autocapture_controls", False),
    ("POST", "autocapture_controls", True),
    ("GET", f"autocapture_controls/{uuid.uuid4()}", False),
    ("PATCH", f"autocapture_controls/{uuid.uuid4()}", True),
    ("DELETE", f"autocapture_controls/{uuid.uuid4()}", True),
    ("GET", "fingerprints", False),
    ("GET", f"fingerprints/{uuid.uuid4()}", False),
    ("GET", "fingerprints/resolve?fingerprint=x", False),
    ("DELETE", f"fingerprints/{uuid.uuid4()}", True),
    ("GET", "releases", False),
    ("POST", "releases", True),
    ("GET", "releases/hash/abc", False),
    ("PATCH", f"releases/{uuid.uuid4()}", True),
    ("DELETE", f"releases/{uuid.uuid4()}", True),
    *[
        entry
        for kind in ("grouping_rules", "assignment_rules", "suppression_rules")
        for entry in [
            ("GET", kind, False),
            ("POST", kind, True),
            ("GET", f"{kind}/{uuid.uuid4()}", False),
            ("PATCH", f"{kind}/{uuid.uuid4()}", True),
            ("PUT", f"{kind}/{uuid.uuid4()}", True),
            ("DELETE", f"{kind}/{uuid.uuid4()}", True),
            ("PATCH", f"{kind}/reorder", True),
        ]
    ],
]


def url(prefix: str, project_id: int | str, path: str) -> str:
    return f"{prefix}/{project_id}/error_tracking/{path}"


@pytest.mark.parametrize(("method", "path", "write"), ROUTES)
def test_every_route_needs_a_key(client: TestClient, tenant: Tenant, prefix: str, method: str, path: str, write: bool):
    response = client.request(method, url(prefix, tenant.project_id, path), json={})
    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
        "attr": None,
    }


@pytest.mark.parametrize(("method", "path", "write"), ROUTES)
def test_scopes_are_enforced(client: TestClient, tenant: Tenant, prefix: str, method: str, path: str, write: bool):
    target = url(prefix, tenant.project_id, path)
    needed = "error_tracking:write" if write else "error_tracking:read"

    unrelated = client.request(method, target, json={}, headers=tenant.headers("none"))
    assert unrelated.status_code == 403
    assert unrelated.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": f"API key missing required scope '{needed}'",
        "attr": None,
    }

    read = client.request(method, target, json={}, headers=tenant.headers("read"))
    if write:
        assert read.status_code == 403
        assert read.json()["detail"] == "API key missing required scope 'error_tracking:write'"
    else:
        assert read.status_code not in (401, 403)

    # write implies read, and * implies everything
    for scope in ("write", "*"):
        assert client.request(method, target, json={}, headers=tenant.headers(scope)).status_code not in (401, 403)


@pytest.mark.parametrize(("method", "path", "write"), ROUTES)
def test_another_organizations_project_is_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, prefix: str, method: str, path: str, write: bool
):
    response = client.request(method, url(prefix, other_tenant.project_id, path), json={}, headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


@pytest.mark.parametrize("project_id", ["999999", "abc", "-1", "1.5", "99999999999999999999999"])
def test_unknown_or_malformed_project_ids_are_not_found(
    client: TestClient, tenant: Tenant, prefix: str, project_id: str
):
    response = client.get(url(prefix, project_id, "releases"), headers=tenant.headers())
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_current_project_alias(client: TestClient, tenant: Tenant, prefix: str):
    created = client.post(
        url(prefix, tenant.project_id, "releases"), json={"version": "1", "project": "web"}, headers=tenant.headers()
    )
    assert created.status_code == 201
    listed = client.get(url(prefix, "@current", "releases"), headers=tenant.headers())
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["results"]] == [created.json()["id"]]


def test_key_reaches_every_project_of_its_organization(client: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    response = client.get(url("/api/projects", second.id, "releases"), headers=tenant.headers("read"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer phx_doesnotexist",
        "Bearer " + "phc_" + "x" * 43,
        "bearer phx_doesnotexist",
    ],
)
def test_invalid_keys_fail_authentication(client: TestClient, tenant: Tenant, header: str):
    response = client.get(url("/api/projects", tenant.project_id, "releases"), headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "Personal API key found in request Authorization header is invalid.",
        "attr": None,
    }


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "phx_abc"])
def test_missing_credentials(client: TestClient, tenant: Tenant, header: str):
    response = client.get(url("/api/projects", tenant.project_id, "releases"), headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_project_token_is_not_an_api_key(client: TestClient, tenant: Tenant):
    response = client.get(
        url("/api/projects", tenant.project_id, "releases"), headers={"Authorization": f"Bearer {tenant.project_token}"}
    )
    assert response.status_code == 401


def test_deactivated_user_and_removed_member_lose_access(client: TestClient, tenant: Tenant, database: Database):
    target = url("/api/projects", tenant.project_id, "releases")
    assert client.get(target, headers=tenant.headers()).status_code == 200

    with database.session(write=True) as session:
        session.execute(update(User).where(User.id == tenant.user_id).values(is_active=False))
        session.commit()
    assert client.get(target, headers=tenant.headers()).status_code == 401

    with database.session(write=True) as session:
        session.execute(update(User).where(User.id == tenant.user_id).values(is_active=True))
        session.execute(Membership.__table__.delete().where(Membership.user_id == tenant.user_id))
        session.commit()
    assert client.get(target, headers=tenant.headers()).status_code == 401


def test_last_used_at_is_stamped_at_most_hourly(client: TestClient, tenant: Tenant, database: Database):
    target = url("/api/projects", tenant.project_id, "releases")

    def last_used() -> dict[str, object]:
        with database.session(write=False) as session:
            return {k.mask_value: k.last_used_at for k in session.scalars(select(PersonalApiKey))}

    assert all(value is None for value in last_used().values())
    before = utcnow()
    client.get(target, headers=tenant.headers("read"))
    stamped = [v for v in last_used().values() if v is not None]
    assert len(stamped) == 1
    assert stamped[0] >= before - timedelta(seconds=1)

    client.get(target, headers=tenant.headers("read"))
    assert [v for v in last_used().values() if v is not None] == stamped

    with database.session(write=True) as session:
        session.execute(update(PersonalApiKey).values(last_used_at=utcnow() - timedelta(hours=2)))
        session.commit()
    client.get(target, headers=tenant.headers("read"))
    assert max(v for v in last_used().values() if v is not None) >= before


def test_keys_are_stored_hashed(tenant: Tenant, database: Database):
    with database.session(write=False) as session:
        stored = session.scalars(select(PersonalApiKey)).all()
    raw = set(tenant.keys.values())
    for key in stored:
        assert key.secure_value not in raw
        assert len(key.secure_value) == 64
        assert key.mask_value.startswith("phx_")


def test_app_built_from_settings_owns_its_database(settings):
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/_health").json() == {"status": "ok"}
