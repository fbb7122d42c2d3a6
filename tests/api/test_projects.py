"""``/api/projects/{id}/``: the project's own settings, under PostHog's ``project`` scope."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.factories import Tenant, make_key
from trapline.db.engine import Database
from trapline.projects.models import Project


@pytest.mark.parametrize("slash", ["", "/"])
def test_retrieve_the_project(client: TestClient, tenant: Tenant, prefix: str, slash: str):
    response = client.get(f"{prefix}/{tenant.project_id}{slash}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == tenant.project_id
    assert body["api_token"] == tenant.project_token
    assert body["name"] == "Acme web"
    assert body["autocapture_exceptions_opt_in"] is True
    assert body["uuid"] == str(tenant.organization_id)
    assert re.fullmatch(rf"http://[0-9a-f]{{32}}@testserver/{tenant.project_id}", body["sentry_dsn"])


def test_reset_sentry_key_gives_a_new_dsn(client: TestClient, tenant: Tenant, prefix: str):
    path = f"{prefix}/{tenant.project_id}"
    before = client.get(path, headers=tenant.headers()).json()["sentry_dsn"]
    response = client.patch(f"{path}/reset_sentry_key/", headers=tenant.headers())
    assert response.status_code == 200, response.text
    after = response.json()["sentry_dsn"]
    assert after != before
    assert client.get(path, headers=tenant.headers()).json()["sentry_dsn"] == after
    assert client.patch(f"{path}/reset_sentry_key", headers=tenant.headers("read")).status_code == 403


def test_patch_changes_only_what_is_sent(client: TestClient, tenant: Tenant, prefix: str, database: Database):
    path = f"{prefix}/{tenant.project_id}/"
    response = client.patch(path, json={"autocapture_exceptions_opt_in": False}, headers=tenant.headers())
    assert response.status_code == 200, response.text
    assert response.json()["autocapture_exceptions_opt_in"] is False
    assert response.json()["name"] == "Acme web"
    renamed = client.patch(path, json={"name": "Storefront"}, headers=tenant.headers()).json()
    assert renamed["name"] == "Storefront"
    assert renamed["autocapture_exceptions_opt_in"] is False
    with database.session(write=False) as session:
        project = session.get(Project, tenant.project_id)
        assert project is not None and project.autocapture_exceptions_opt_in is False


def test_patch_validates_in_posthogs_shape(client: TestClient, tenant: Tenant):
    path = f"/api/projects/{tenant.project_id}/"
    response = client.patch(path, json={"autocapture_exceptions_opt_in": "maybe"}, headers=tenant.headers())
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["attr"] == "autocapture_exceptions_opt_in"
    empty_name = client.patch(path, json={"name": ""}, headers=tenant.headers())
    assert empty_name.status_code == 400
    assert empty_name.json()["attr"] == "name"


def test_project_settings_need_the_project_scope(client: TestClient, tenant: Tenant, database: Database):
    path = f"/api/projects/{tenant.project_id}/"
    reader = client.get(path, headers=tenant.headers("read"))  # error_tracking:read only
    assert reader.status_code == 403
    assert "project:read" in reader.json()["detail"]
    with database.session(write=True) as session:
        key = make_key(session, tenant.user_id, tenant.organization_id, ["project:read"])
        session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(path, headers=headers).status_code == 200
    denied = client.patch(path, json={"name": "x"}, headers=headers)
    assert denied.status_code == 403
    assert "project:write" in denied.json()["detail"]
    assert client.get(path).status_code == 401


def test_another_organizations_project_is_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    response = client.patch(
        f"/api/projects/{other_tenant.project_id}/", json={"name": "mine now"}, headers=tenant.headers()
    )
    assert response.status_code == 404
    with database.session(write=False) as session:
        project = session.get(Project, other_tenant.project_id)
        assert project is not None and project.name == "Other web"
    assert client.get(f"/api/projects/{tenant.project_id}/", headers=tenant.headers()).status_code == 200
    # and @current means the key's own first project
    with database.engine.begin() as connection:
        connection.execute(update(Project).where(Project.id == tenant.project_id).values(name="Current"))
    assert client.get("/api/projects/@current/", headers=tenant.headers()).json()["name"] == "Current"
