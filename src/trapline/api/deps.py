"""Request dependencies: settings, database session, the authenticated key and the project.

A request to ``/api/{environments|projects}/{project_id}/…`` is checked in this order, which
is what each failure answers with:

1. a personal API key in ``Authorization: Bearer phx_…`` (none → 401 not_authenticated,
   unknown or revoked → 401 authentication_failed);
2. the scope the action needs (``error_tracking:read`` for reads, ``…:write`` for writes;
   missing → 403 naming the scope);
3. the project, which must belong to the key's organization (otherwise 404, so a key cannot
   probe which project ids exist elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Depends, Path, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trapline.accounts.api_keys import has_scope, hash_key
from trapline.accounts.models import Membership, PersonalApiKey, User
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import is_disk_full
from trapline.errors import AuthenticationFailed, NotAuthenticated, NotFound, PermissionDenied
from trapline.ingest.pressure import Pressure
from trapline.objects.store import ObjectStore
from trapline.projects.models import Project
from trapline.settings import Settings

__all__ = [
    "DatabaseDep",
    "DiskRoom",
    "ObjectStoreDep",
    "Principal",
    "PrincipalDep",
    "ReadProject",
    "ReadProjectSettings",
    "SessionDep",
    "SettingsDep",
    "WriteProject",
    "WriteProjectSettings",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is for people ("used 2 hours ago"), so it need not cost a write per request.
LAST_USED_GRANULARITY = timedelta(hours=1)
SCOPE_OBJECT = "error_tracking"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _objects(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.objects
    return store


SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
ObjectStoreDep = Annotated[ObjectStore, Depends(_objects)]


def _session(request: Request, db: DatabaseDep) -> Iterator[Session]:
    with db.session(write=request.method not in _SAFE_METHODS) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its user and the organization it reaches."""

    key_id: UUID
    user_id: int
    organization_id: UUID
    scopes: frozenset[str]


def _authenticate(request: Request, db: DatabaseDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated()
    # A separate short session: the lookup must not open the request's write transaction
    # early, and the occasional last_used_at stamp must commit even if the request fails.
    with db.session(write=False) as session:
        row = session.execute(
            select(PersonalApiKey)
            .join(User, User.id == PersonalApiKey.user_id)
            .join(
                Membership,
                (Membership.user_id == PersonalApiKey.user_id)
                & (Membership.organization_id == PersonalApiKey.organization_id),
            )
            .where(PersonalApiKey.secure_value == hash_key(token), User.is_active.is_(True))
        ).scalar_one_or_none()
    if row is None:
        raise AuthenticationFailed("Personal API key found in request Authorization header is invalid.")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        try:
            with db.session(write=True) as session:
                session.execute(update(PersonalApiKey).where(PersonalApiKey.id == row.id).values(last_used_at=now))
                session.commit()
        except Exception as exc:
            # The stamp is for people; reading the API must go on while the disk is full.
            if not is_disk_full(exc):
                raise
    return Principal(
        key_id=row.id, user_id=row.user_id, organization_id=row.organization_id, scopes=frozenset(row.scopes)
    )


PrincipalDep = Annotated[Principal, Depends(_authenticate)]


def _project_access(action: Literal["read", "write"], scope_object: str = SCOPE_OBJECT) -> object:
    required = f"{scope_object}:{action}"

    def dependency(
        principal: PrincipalDep,
        session: SessionDep,
        project_id: Annotated[str, Path(description="The project (environment) id, or @current.")],
    ) -> Project:
        if not has_scope(principal.scopes, required):
            raise PermissionDenied(f"API key missing required scope '{required}'")
        stmt = select(Project).where(Project.organization_id == principal.organization_id)
        if project_id == "@current":
            project = session.scalars(stmt.order_by(Project.id).limit(1)).first()
        elif project_id.isdigit() and len(project_id) < 19:
            project = session.scalars(stmt.where(Project.id == int(project_id))).first()
        else:
            project = None
        if project is None:
            raise NotFound()
        return project

    return Depends(dependency)


# Route parameters: `project: ReadProject` for read actions, `project: WriteProject` for writes.
ReadProject = Annotated[Project, _project_access("read")]
WriteProject = Annotated[Project, _project_access("write")]
# The project itself (its settings), under PostHog's `project` scope.
ReadProjectSettings = Annotated[Project, _project_access("read", "project")]
WriteProjectSettings = Annotated[Project, _project_access("write", "project")]


def _disk_room(request: Request) -> None:
    pressure: Pressure = request.app.state.pressure
    refusal = pressure.disk_refusal()
    if refusal is not None:
        raise refusal.error()


# A route parameter of uploads, after the project (a caller without access learns nothing of
# the disk): below the free-space watermark they are refused with 503 and Retry-After.
DiskRoom = Annotated[None, Depends(_disk_room)]
