"""``/error_tracking/releases``: versions of the user's apps that symbol sets belong to."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response
from sqlalchemy import select

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.releases import ReleaseOut, ReleaseWrite
from trapline.db.types import storable_text
from trapline.errors import NotFound
from trapline.releases import service
from trapline.releases.models import Release

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/releases", tags=["error_tracking"])
RESOURCE = "releases"
_ERRORS = error_responses(*STANDARD_ERRORS)


def serialize(release: Release) -> dict[str, Any]:
    return {
        "id": release.id,
        "hash_id": release.hash_id,
        "team_id": release.project_id,
        "created_at": release.created_at,
        "metadata": release.metadata_,
        "version": release.version,
        "project": release.project_name,
    }


@router.get("", name=f"error_tracking_{RESOURCE}_list", response_model=Page[ReleaseOut], responses=_ERRORS)
def list_(project: ReadProject, session: SessionDep, page: PageParamsDep) -> dict[str, Any]:
    stmt = select(Release).where(Release.project_id == project.id).order_by(Release.created_at.desc(), Release.id)
    return paginate(session, stmt, page, serialize)


@router.post(
    "",
    name=f"error_tracking_{RESOURCE}_create",
    status_code=201,
    response_model=ReleaseOut,
    responses=_ERRORS,
)
def create(project: WriteProject, session: SessionDep, body: ReleaseWrite) -> dict[str, Any]:
    release = service.create_release(
        session,
        project.id,
        version=body.version,
        project_name=body.project,
        hash_id=body.hash_id,
        metadata=body.metadata,
    )
    return serialize(release)


@router.get("/hash/{hash_id}", name=f"error_tracking_{RESOURCE}_by_hash", response_model=ReleaseOut, responses=_ERRORS)
def by_hash(hash_id: str, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    release = session.scalar(
        select(Release).where(Release.project_id == project.id, Release.hash_id == storable_text(hash_id))
    )
    if release is None:
        raise NotFound()
    return serialize(release)


@router.get("/{id}", name=f"error_tracking_{RESOURCE}_retrieve", response_model=ReleaseOut, responses=_ERRORS)
def retrieve(id: uuid.UUID, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    return serialize(service.get_release(session, project.id, id))


def _update(id: uuid.UUID, project: WriteProject, session: SessionDep, body: ReleaseWrite) -> Response:
    service.update_release(
        session,
        service.get_release(session, project.id, id),
        version=body.version,
        project_name=body.project,
        hash_id=body.hash_id,
        metadata=body.metadata,
    )
    return Response(status_code=204)


add_update_routes(router, resource=RESOURCE, endpoint=_update)


@router.delete(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_destroy",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
def destroy(id: uuid.UUID, project: WriteProject, session: SessionDep) -> Response:
    session.delete(service.get_release(session, project.id, id))
    session.commit()
    return Response(status_code=204)
