"""A signed-in browser for the UI tests: a TestClient holding a session cookie."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Tenant
from trapline.accounts.models import User
from trapline.db.engine import Database


def user_email(database: Database, user_id: int) -> str:
    with database.session(write=False) as session:
        user = session.get(User, user_id)
        assert user is not None
        return user.email


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token[1]}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def csrf_of(page: str) -> str:
    """The CSRF token the page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found[1]


@pytest.fixture
def ui(client: TestClient, tenant: Tenant, database: Database) -> TestClient:
    """``client``, signed in as the tenant's user."""
    sign_in(client, user_email(database, tenant.user_id))
    return client
