"""``/project/{id}/settings/members``: the project's organization, its people and its roles.

Everyone sees who is there; admins and owners add people (a new person's password is shown
once), remove them, and make or delete the roles issues can be assigned to.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from sqlalchemy import select

from trapline.accounts import members
from trapline.accounts.models import Membership, Organization, Role, User
from trapline.api.deps import SessionDep
from trapline.errors import InvalidInput
from trapline.projects.models import Project
from trapline.ui.deps import CsrfChecked, UiProject, UiUser
from trapline.ui.errors import UiRoute
from trapline.ui.forms import no_nul
from trapline.ui.render import redirect, render

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)
# user.id is a 32-bit column: PostgreSQL refuses to compare it with a larger number.
MemberId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _url(project: Project) -> str:
    return f"/project/{project.id}/settings/members"


def _page(
    request: Request,
    session: SessionDep,
    project: Project,
    user_id: int,
    *,
    added: members.Added | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    people = session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == project.organization_id)
        .order_by(User.email)
    ).all()
    roles = session.scalars(
        select(Role).where(Role.organization_id == project.organization_id).order_by(Role.name)
    ).all()
    level = members.level_of(session, project.organization_id, user_id)
    return render(
        request,
        "settings_members.html",
        {
            "section": "members",
            "organization": session.get(Organization, project.organization_id),
            "people": people,
            "roles": roles,
            "me": user_id,
            "can_manage": level in {"admin", "owner"},
            "levels": members.LEVELS if level == "owner" else members.LEVELS[:2],
            "added": added,
            "error": error,
            "base": _url(project),
            "roles_base": f"/project/{project.id}/settings/roles",
        },
        status_code=status,
    )


@router.get("/project/{project_id}/settings/members")
def members_page(request: Request, project: UiProject, user: UiUser, session: SessionDep) -> Response:
    return _page(request, session, project, user.user_id)


@router.post("/project/{project_id}/settings/members")
def add_member(
    request: Request,
    project: UiProject,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    email: Annotated[str, Form(max_length=254)] = "",
    name: Annotated[str, Form(max_length=150)] = "",
    level: Annotated[str, Form(max_length=16)] = "member",
) -> Response:
    no_nul(email, name, level)
    try:
        added = members.add_member(session, project.organization_id, user.user_id, email=email, name=name, level=level)
    except InvalidInput as exc:
        return _page(request, session, project, user.user_id, error=exc.detail, status=400)
    if added.password is None:
        return redirect(_url(project), f"{added.email} is now a member (they sign in with their own password).")
    # A new account: its password is on this answer only, like a new API key.
    return _page(request, session, project, user.user_id, added=added)


@router.post("/project/{project_id}/settings/members/{member_id}/remove")
def remove_member(
    project: UiProject,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    member_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    members.remove_member(session, project.organization_id, user.user_id, member_id)
    if member_id == user.user_id:
        return redirect("/projects", "You left the organization.")
    return redirect(_url(project), "The member was removed from the organization.")


@router.post("/project/{project_id}/settings/roles")
def create_role(
    request: Request,
    project: UiProject,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    no_nul(name)
    try:
        role = members.create_role(session, project.organization_id, user.user_id, name)
    except InvalidInput as exc:
        return _page(request, session, project, user.user_id, error=exc.detail, status=400)
    return redirect(_url(project), f"The role {role.name} was created: issues and rules can now be assigned to it.")


@router.post("/project/{project_id}/settings/roles/{role_id}/delete")
def delete_role(project: UiProject, user: UiUser, _: CsrfChecked, session: SessionDep, role_id: uuid.UUID) -> Response:
    members.delete_role(session, project.organization_id, user.user_id, role_id)
    return redirect(_url(project), "The role was deleted; what was assigned to it is unassigned.")
