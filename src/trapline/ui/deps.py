"""Who is signed in, which project a page is about, and the CSRF check of every form.

The dependencies also leave what the layout shows on ``request.state`` (the user, the
CSRF token, the projects for the switcher, the current project), which ``render`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.accounts.models import Membership, Organization
from trapline.api.deps import DatabaseDep, SessionDep, SettingsDep
from trapline.db.types import utcnow
from trapline.errors import NotFound, PermissionDenied
from trapline.projects.models import Project
from trapline.settings import Settings
from trapline.ui.sessions import COOKIE, SignedIn, csrf_token, find_session, needs_touch, tokens_match, touch_session

__all__ = [
    "CSRF_FIELD",
    "CsrfChecked",
    "LoginRequired",
    "ProjectChoice",
    "UiProject",
    "UiUser",
    "check_origin",
    "session_lifetime",
    "user_projects",
]

CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login form."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


@dataclass(frozen=True)
class ProjectChoice:
    id: int
    name: str
    organization: str


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(days=settings.ui_session_days)


def user_projects(session: Session, user_id: int) -> list[ProjectChoice]:
    rows = session.execute(
        select(Project.id, Project.name, Organization.name)
        .join(Organization, Organization.id == Project.organization_id)
        .join(Membership, Membership.organization_id == Project.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.name, Project.name, Project.id)
    ).all()
    return [ProjectChoice(id=row[0], name=row[1], organization=row[2]) for row in rows]


def _signed_in(request: Request, db: DatabaseDep, settings: SettingsDep) -> SignedIn:
    value = request.cookies.get(COOKIE, "")
    # A read session: on SQLite a write one would take the database's write lock, which
    # ingestion needs, on every page view. The sliding expiry is written every few minutes.
    with db.session(write=False) as session:
        user = find_session(session, value) if value else None
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        projects = user_projects(session, user.user_id)
    now = utcnow()
    if needs_touch(user, now):
        with db.session(write=True) as session:
            touch_session(session, value, lifetime=session_lifetime(settings), now=now)
    request.state.ui_user = user
    request.state.ui_csrf = csrf_token(settings.secret_key.get_secret_value() if settings.secret_key else "", value)
    request.state.ui_projects = projects
    return user


UiUser = Annotated[SignedIn, Depends(_signed_in)]


def _project(
    request: Request,
    user: UiUser,
    session: SessionDep,
    project_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Project:
    # Only projects of the user's organizations exist for them; others are "not found".
    project = session.scalar(
        select(Project)
        .join(Membership, Membership.organization_id == Project.organization_id)
        .where(Project.id == project_id, Membership.user_id == user.user_id)
    )
    if project is None:
        raise NotFound("There is no such project, or you are not a member of its organization.")
    request.state.ui_project = project
    return project


UiProject = Annotated[Project, Depends(_project)]


def check_origin(request: Request, settings: Settings) -> None:
    """A form posted from another site is refused, even before its token is looked at.

    Browsers send Origin on every cross-site POST (and Referer without it in older ones); a
    request naming another host than the one it was sent to did not come from our pages.
    Behind a reverse proxy the Host we see may be the proxy's upstream, so the public URL's
    host counts as ours too.
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return
    ours = {request.headers.get("host", ""), urlsplit(settings.base_url).netloc}
    if urlsplit(source).netloc not in ours:
        raise PermissionDenied("This form was sent from another site and was refused.")


async def _csrf(request: Request, user: UiUser, settings: SettingsDep) -> None:
    if request.method in _SAFE_METHODS:
        return
    check_origin(request, settings)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not tokens_match(request.state.ui_csrf, given if isinstance(given, str) else None):
        raise PermissionDenied("The form had expired or came from elsewhere. Reload the page and try again.")


# On every route that changes something; after UiUser, so the token is known.
CsrfChecked = Annotated[None, Depends(_csrf)]
