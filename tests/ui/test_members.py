"""The members page (people and roles of the project's organization) and changing a password."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import Tenant, make_user
from tests.issue_data import make_issue
from tests.ui.conftest import csrf_of, sign_in, user_email
from trapline.accounts.models import Membership, Role, User
from trapline.accounts.passwords import verify_password
from trapline.db.engine import Database
from trapline.issues.models import IssueAssignment
from trapline.issues.service import assign_issue
from trapline.ui.sessions import COOKIE


def url(tenant: Tenant) -> str:
    return f"/project/{tenant.project_id}/settings/members"


def make_owner(database: Database, tenant: Tenant) -> None:
    with database.session(write=True) as session:
        membership = session.scalar(select(Membership).where(Membership.user_id == tenant.user_id))
        assert membership is not None
        membership.level = "owner"
        session.commit()


def level(database: Database, tenant: Tenant, user_id: int) -> str | None:
    with database.session(write=False) as session:
        return session.scalar(
            select(Membership.level).where(
                Membership.user_id == user_id, Membership.organization_id == tenant.organization_id
            )
        )


def test_an_owner_adds_a_new_person_who_can_sign_in_with_the_password_shown(
    ui: TestClient, tenant: Tenant, database: Database, app
):
    make_owner(database, tenant)
    page = ui.get(url(tenant))
    assert page.status_code == 200
    assert user_email(database, tenant.user_id) in page.text
    answer = ui.post(
        url(tenant),
        data={"email": "New.Person@Example.com", "name": "Nia", "level": "admin", "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 200
    password = re.search(r'value="([^"]+)" aria-label="New member', answer.text)
    assert password, "the new password is on the page"
    with database.session(write=False) as session:
        person = session.scalar(select(User).where(User.email == "new.person@example.com"))
        assert person is not None and person.first_name == "Nia"
        assert verify_password(person.password_hash, password[1])
        person_id = person.id
    assert level(database, tenant, person_id) == "admin"
    # Shown once: the members page lists them, never the password again.
    assert password[1] not in ui.get(url(tenant)).text
    with TestClient(app) as theirs:
        sign_in(theirs, "new.person@example.com", password[1])
        assert theirs.get(url(tenant)).status_code == 200


def test_someone_with_an_account_keeps_their_password(ui: TestClient, tenant: Tenant, database: Database, other_tenant):
    make_owner(database, tenant)
    elsewhere = user_email(database, other_tenant.user_id)
    page = ui.get(url(tenant))
    answer = ui.post(url(tenant), data={"email": elsewhere, "level": "member", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 200
    assert "is now a member (they sign in with their own password)" in answer.text
    assert level(database, tenant, other_tenant.user_id) == "member"
    again = ui.post(url(tenant), data={"email": elsewhere, "level": "member", "csrf_token": csrf_of(page.text)})
    assert again.status_code == 400
    assert "is a member already" in again.text


def test_members_cannot_manage_and_admins_cannot_make_owners(ui: TestClient, tenant: Tenant, database: Database):
    page = ui.get(url(tenant))  # the tenant's user is a plain member
    assert "Add a member" not in page.text
    refused = ui.post(url(tenant), data={"email": "x@example.com", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    assert "admins and owners" in refused.text
    with database.session(write=True) as session:
        membership = session.scalar(select(Membership).where(Membership.user_id == tenant.user_id))
        assert membership is not None
        membership.level = "admin"
        session.commit()
    owner = ui.post(url(tenant), data={"email": "x@example.com", "level": "owner", "csrf_token": csrf_of(page.text)})
    assert owner.status_code == 403
    assert "Only owners can add owners" in owner.text


def test_removing_members_keeps_the_last_owner(ui: TestClient, tenant: Tenant, database: Database):
    make_owner(database, tenant)
    with database.session(write=True) as session:
        other = make_user(session, tenant.organization_id)
        session.commit()
        other_id = other.id
    token = csrf_of(ui.get(url(tenant)).text)
    last = ui.post(f"{url(tenant)}/{tenant.user_id}/remove", data={"csrf_token": token})
    assert last.status_code == 400
    assert "last owner" in last.text
    removed = ui.post(f"{url(tenant)}/{other_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 200
    assert "was removed" in removed.text
    assert level(database, tenant, other_id) is None
    assert ui.post(f"{url(tenant)}/99999999999/remove", data={"csrf_token": token}).status_code == 400


def test_roles_are_made_and_deleted_and_their_issues_unassigned(ui: TestClient, tenant: Tenant, database: Database):
    make_owner(database, tenant)
    token = csrf_of(ui.get(url(tenant)).text)
    roles = f"/project/{tenant.project_id}/settings/roles"
    made = ui.post(roles, data={"name": " Payments ", "csrf_token": token})
    assert made.status_code == 200
    assert "The role Payments was created" in made.text
    assert ui.post(roles, data={"name": "Payments", "csrf_token": token}).status_code == 400
    with database.session(write=True) as session:
        role = session.scalar(select(Role).where(Role.name == "Payments"))
        assert role is not None
        issue = make_issue(session, tenant.project_id, ["fp-pay"])
        assign_issue(session, tenant.project_id, tenant.organization_id, issue.id, ("role", role.id))
        role_id, issue_id = role.id, issue.id
    # The new role is an assignee choice on the issue page.
    assert f'value="role:{role_id}"' in ui.get(f"/project/{tenant.project_id}/error_tracking/{issue_id}").text
    deleted = ui.post(f"{roles}/{role_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 200
    with database.session(write=False) as session:
        assert session.get(Role, role_id) is None
        assert session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id == issue_id)) is None


def test_changing_the_password_signs_out_every_other_browser(ui: TestClient, tenant: Tenant, database: Database, app):
    email = user_email(database, tenant.user_id)
    with TestClient(app) as elsewhere:
        sign_in(elsewhere, email)
        token = csrf_of(ui.get("/account").text)
        wrong = ui.post(
            "/account/password",
            data={"current_password": "nope", "new_password": "a-new-one-1", "confirm_password": "a-new-one-1",
                  "csrf_token": token},
        )  # fmt: skip
        assert wrong.status_code == 400
        assert "current password is not right" in wrong.text
        differ = ui.post(
            "/account/password",
            data={"current_password": "password123", "new_password": "a-new-one-1", "confirm_password": "other-1",
                  "csrf_token": token},
        )  # fmt: skip
        assert differ.status_code == 400
        changed = ui.post(
            "/account/password",
            data={"current_password": "password123", "new_password": "a-new-one-1", "confirm_password": "a-new-one-1",
                  "csrf_token": token},
        )  # fmt: skip
        assert changed.status_code == 200
        assert "Your password was changed" in changed.text
        assert ui.get("/account", follow_redirects=False).status_code == 200  # this browser stays in
        assert elsewhere.get("/account", follow_redirects=False).status_code == 303  # the other is out
        assert COOKIE in ui.cookies
    with TestClient(app) as fresh:
        sign_in(fresh, email, "a-new-one-1")
