"""The signed-in person's own pages: personal API keys (``/account``) and projects (``/projects``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import delete, select

from trapline.accounts import members
from trapline.accounts.api_keys import generate_key, hash_key, mask_key
from trapline.accounts.models import Membership, Organization, PersonalApiKey
from trapline.api.deps import SessionDep, SettingsDep
from trapline.errors import InvalidInput, NotFound
from trapline.projects.models import Project
from trapline.sentry.auth import dsn
from trapline.ui.deps import CsrfChecked, UiUser
from trapline.ui.errors import UiRoute
from trapline.ui.render import redirect, render
from trapline.ui.sessions import stored_key

__all__ = ["SCOPE_CHOICES", "router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

# What a key may be given, as PostHog names the scopes; "*" is every scope there is.
SCOPE_CHOICES = (
    ("*", "Everything (all scopes)"),
    ("error_tracking:read", "Read error tracking: issues, events, rules, symbol sets"),
    ("error_tracking:write", "Write error tracking: change issues and rules, upload source maps"),
    ("project:read", "Read project settings"),
    ("project:write", "Change project settings"),
)
_SCOPES = {value for value, _ in SCOPE_CHOICES}


def _organizations(session: SessionDep, user_id: int) -> list[Organization]:
    return list(
        session.scalars(
            select(Organization)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user_id)
            .order_by(Organization.name)
        )
    )


def _account_page(
    request: Request,
    session: SessionDep,
    user_id: int,
    *,
    new_key: str = "",
    error: str = "",
    password_error: str = "",
    status: int = 200,
) -> Response:
    keys = session.scalars(
        select(PersonalApiKey).where(PersonalApiKey.user_id == user_id).order_by(PersonalApiKey.created_at.desc())
    ).all()
    orgs = {org.id: org.name for org in _organizations(session, user_id)}
    return render(
        request,
        "account.html",
        {
            "keys": keys,
            "organizations": orgs,
            "scope_choices": SCOPE_CHOICES,
            "new_key": new_key,
            "error": error,
            "password_error": password_error,
            "min_password": members.MIN_PASSWORD_LENGTH,
        },
        status_code=status,
    )


@router.get("/account")
def account(request: Request, user: UiUser, session: SessionDep) -> Response:
    return _account_page(request, session, user.user_id)


@router.post("/account/keys")
def create_key(
    request: Request,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    label: Annotated[str, Form(max_length=100)] = "",
    organization_id: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    chosen = sorted(set(scopes or ()))
    orgs = {str(org.id): org for org in _organizations(session, user.user_id)}
    problem = ""
    if not label.strip():
        problem = "Give the key a label, so you can tell it apart later."
    elif not chosen:
        problem = "Choose at least one scope."
    elif not set(chosen) <= _SCOPES:
        problem = "One of the scopes is not one Trapline knows."
    elif organization_id not in orgs:
        problem = "Choose one of your organizations."
    if problem:
        return _account_page(request, session, user.user_id, error=problem, status=400)
    key = generate_key()
    session.add(
        PersonalApiKey(
            user_id=user.user_id,
            organization_id=orgs[organization_id].id,
            label=label.strip(),
            secure_value=hash_key(key),
            mask_value=mask_key(key),
            scopes=["*"] if "*" in chosen else chosen,
        )
    )
    session.commit()
    # Only the hash is stored: this answer is the one time the key can be shown.
    return _account_page(request, session, user.user_id, new_key=key)


@router.post("/account/keys/{key_id}/delete")
def delete_key(key_id: uuid.UUID, user: UiUser, _: CsrfChecked, session: SessionDep) -> Response:
    deleted = session.execute(
        delete(PersonalApiKey).where(PersonalApiKey.id == key_id, PersonalApiKey.user_id == user.user_id)
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound("That key does not exist, or it is not yours.")
    session.commit()
    return redirect("/account", "The key was deleted; requests using it now get 401.")


@router.post("/account/password")
def change_password(
    request: Request,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    current_password: Annotated[str, Form(max_length=1000)] = "",
    new_password: Annotated[str, Form(max_length=1000)] = "",
    confirm_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    if new_password != confirm_password:
        return _account_page(request, session, user.user_id, password_error="The two new passwords differ.", status=400)
    try:
        members.change_password(
            session, user.user_id, current=current_password, new=new_password,
            keep_session_key=stored_key(user.session_value),
        )  # fmt: skip
    except InvalidInput as exc:
        return _account_page(request, session, user.user_id, password_error=exc.detail, status=400)
    return redirect("/account", "Your password was changed; you were signed out everywhere else.")


@router.get("/projects")
def projects(request: Request, user: UiUser, session: SessionDep, settings: SettingsDep) -> Response:
    rows = session.execute(
        select(Project, Organization.name)
        .join(Organization, Organization.id == Project.organization_id)
        .join(Membership, Membership.organization_id == Project.organization_id)
        .where(Membership.user_id == user.user_id)
        .order_by(Organization.name, Project.name)
    ).all()
    listed = [
        {
            "project": project,
            "organization": org_name,
            "dsn": dsn(settings.public_url, project.sentry_public_key, project.id),
        }
        for project, org_name in rows
    ]
    return render(request, "projects.html", {"listed": listed, "public_url": settings.base_url})
