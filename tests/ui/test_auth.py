"""Signing in and out, sessions, CSRF, personal API keys and the projects page."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import Tenant
from tests.ui.conftest import csrf_of, user_email
from trapline.accounts.models import UserSession
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.ui.auth import safe_next
from trapline.ui.render import redirect
from trapline.ui.sessions import COOKIE


def test_pages_send_strangers_to_the_login_form_and_back(client: TestClient, tenant: Tenant, database: Database):
    target = f"/project/{tenant.project_id}/error_tracking?status=resolved"
    answer = client.get(target, follow_redirects=False)
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [target]

    form = client.get(answer.headers["location"])
    assert form.status_code == 200
    assert f'name="next" value="{target}"' in form.text
    token = csrf_of(form.text)
    signed_in = client.post(
        "/login",
        data={
            "email": user_email(database, tenant.user_id),
            "password": "password123",
            "csrf_token": token,
            "next": target,
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == target
    cookie = signed_in.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_a_wrong_password_is_refused_in_words(client: TestClient, tenant: Tenant, database: Database):
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login", data={"email": user_email(database, tenant.user_id), "password": "nope-nope", "csrf_token": token}
    )
    assert answer.status_code == 400
    assert "do not match" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    # Unknown people get the same words: the form does not tell which emails exist.
    answer = client.post("/login", data={"email": "nobody@example.com", "password": "password123", "csrf_token": token})
    assert answer.status_code == 400
    assert "do not match" in answer.text


def test_the_login_form_needs_its_token(client: TestClient, tenant: Tenant, database: Database):
    client.get("/login")
    answer = client.post(
        "/login",
        data={"email": user_email(database, tenant.user_id), "password": "password123", "csrf_token": "forged"},
    )
    assert answer.status_code == 403
    assert "expired" in answer.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil"])
def test_sign_in_never_sends_people_off_site(target: str):
    assert safe_next(target) == "/"


def test_safe_next_keeps_local_paths():
    assert safe_next("/project/1/error_tracking?q=x") == "/project/1/error_tracking?q=x"


def test_home_opens_the_first_project_inbox(ui: TestClient, tenant: Tenant):
    answer = ui.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/project/{tenant.project_id}/error_tracking"
    switched = ui.get(f"/project-switch?project_id={tenant.project_id}", follow_redirects=False)
    assert switched.headers["location"] == f"/project/{tenant.project_id}/error_tracking"


def test_signing_out_ends_the_session_everywhere(ui: TestClient, tenant: Tenant, app):
    cookie = ui.cookies[COOKIE]
    page = ui.get("/account")
    answer = ui.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    # The same cookie, copied to another browser before signing out, no longer works.
    with TestClient(app, cookies={COOKIE: cookie}) as other:
        assert other.get("/account", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(ui: TestClient):
    answer = ui.post("/account/keys", data={"label": "x", "scopes": "*"})
    assert answer.status_code == 403
    assert "Reload the page" in answer.text
    assert "<html" in answer.text  # a page in words, not a JSON body


def test_forms_posted_from_another_site_are_refused(ui: TestClient):
    token = csrf_of(ui.get("/account").text)
    answer = ui.post(
        "/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "another site" in answer.text


def test_a_personal_api_key_is_shown_once_and_works(ui: TestClient, tenant: Tenant):
    page = ui.get("/account")
    org = re.search(r'<option value="([^"]+)">', page.text)
    assert org
    answer = ui.post(
        "/account/keys",
        data={
            "label": "CI uploads",
            "organization_id": org[1],
            "scopes": ["error_tracking:read"],
            "csrf_token": csrf_of(page.text),
        },
    )
    assert answer.status_code == 200
    key = re.search(r'value="(phx_[A-Za-z0-9]+)"', answer.text)
    assert key, "the new key is on the page"
    assert "cannot be shown again" in answer.text
    # Listed by its mask from now on, never in full.
    listing = ui.get("/account").text
    assert "CI uploads" in listing
    assert key[1] not in listing
    assert f"{key[1][:4]}...{key[1][-4:]}" in listing

    api = f"/api/projects/{tenant.project_id}/error_tracking/issues/"
    assert ui.get(api, headers={"Authorization": f"Bearer {key[1]}"}).status_code == 200
    # Read only: the scope chosen is the scope granted.
    assert (
        ui.post(
            f"/api/projects/{tenant.project_id}/error_tracking/suppression_rules/",
            json={"filters": {"type": "AND", "values": []}},
            headers={"Authorization": f"Bearer {key[1]}"},
        ).status_code
        == 403
    )

    key_id = re.search(r'action="/account/keys/([0-9a-f-]+)/delete"', listing)
    assert key_id
    deleted = ui.post(f"/account/keys/{key_id[1]}/delete", data={"csrf_token": csrf_of(listing)})
    assert deleted.status_code == 200
    assert "was deleted" in deleted.text
    assert ui.get(api, headers={"Authorization": f"Bearer {key[1]}"}).status_code == 401


def test_a_key_needs_a_label_and_a_scope(ui: TestClient):
    page = ui.get("/account")
    org = re.search(r'<option value="([^"]+)">', page.text)
    assert org
    answer = ui.post("/account/keys", data={"label": "x", "organization_id": org[1], "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 400
    assert "at least one scope" in answer.text


def test_the_projects_page_shows_tokens_and_dsns(ui: TestClient, tenant: Tenant):
    page = ui.get("/projects")
    assert page.status_code == 200
    assert tenant.project_token in page.text
    assert re.search(rf"http://[0-9a-f]{{32}}@testserver/{tenant.project_id}", page.text)


def test_other_organizations_projects_do_not_exist(ui: TestClient, other_tenant: Tenant):
    answer = ui.get(f"/project/{other_tenant.project_id}/error_tracking")
    assert answer.status_code == 404
    assert "no such project" in answer.text


def test_lost_browsers_get_a_page_and_the_api_keeps_json(ui: TestClient):
    answer = ui.get("/no/such/page", headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert "There is no page at this address" in answer.text
    api = ui.get("/api/no/such/", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.json()["type"] == "invalid_request"


def test_assets_are_served(client: TestClient):
    assert "Trapline" in client.get("/assets/ui.css").text
    assert client.get("/assets/ui.js").status_code == 200


def test_notices_carry_any_text(ui: TestClient):
    answer = redirect("/account", "Assigned to “Équipe 決済” — 3 issues.")
    ui.cookies.set("trapline_notice", answer.headers["set-cookie"].split(";")[0].split("=", 1)[1])
    page = ui.get("/account")
    assert "Assigned to “Équipe 決済” — 3 issues." in page.text


def test_pages_cannot_be_framed_or_run_foreign_scripts(ui: TestClient):
    for page in (ui.get("/account"), ui.get("/login"), ui.get("/project/999999/error_tracking")):
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text  # nothing inline the policy would block


def test_forms_from_the_public_url_pass_behind_a_proxy(ui: TestClient):
    # A proxy forwarding to 127.0.0.1:8000 without the Host header: the browser's Origin is
    # the public URL (the test settings': http://testserver), the Host the upstream's.
    token = csrf_of(ui.get("/account").text)
    answer = ui.post(
        "/logout",
        data={"csrf_token": token},
        headers={"Origin": "http://testserver", "Host": "127.0.0.1:8000"},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_use_slides_the_expiry_every_few_minutes(ui: TestClient, database: Database):
    def stored() -> UserSession:
        with database.session(write=False) as session:
            row = session.scalar(select(UserSession))
            assert row is not None
            return row

    fresh = stored()
    assert ui.get("/account").status_code == 200
    assert stored().expires_at == fresh.expires_at  # just signed in: nothing to write
    with database.session(write=True) as session:
        session.execute(
            update(UserSession).values(
                last_seen_at=utcnow() - timedelta(hours=1), expires_at=utcnow() + timedelta(hours=1)
            )
        )
        session.commit()
    assert ui.get("/account").status_code == 200
    assert stored().expires_at > utcnow() + timedelta(days=13)  # pushed out to a full lifetime again
