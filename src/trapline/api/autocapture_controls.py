"""``/error_tracking/autocapture_controls``: how browsers decide to capture exceptions.

One object per project and library (only ``web`` today). As in PostHog, creating controls
that already exist is not an error: the existing object comes back with 200.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from sqlalchemy import select

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.autocapture import AutocaptureControlsOut, AutocaptureControlsWrite
from trapline.api.schemas.common import Page
from trapline.autocapture.models import AutocaptureControls
from trapline.autocapture.service import WRITABLE_FIELDS, create_web_controls
from trapline.errors import NotFound

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/autocapture_controls", tags=["error_tracking"])
RESOURCE = "autocapture_controls"
_ERRORS = error_responses(*STANDARD_ERRORS)


def serialize(controls: AutocaptureControls) -> dict[str, Any]:
    return {"id": controls.id, "library": controls.library, **{f: getattr(controls, f) for f in WRITABLE_FIELDS}}


def _get(session: SessionDep, project_id: int, controls_id: uuid.UUID) -> AutocaptureControls:
    controls = session.scalar(
        select(AutocaptureControls).where(
            AutocaptureControls.project_id == project_id, AutocaptureControls.id == controls_id
        )
    )
    if controls is None:
        raise NotFound()
    return controls


@router.get("", name=f"error_tracking_{RESOURCE}_list", response_model=Page[AutocaptureControlsOut], responses=_ERRORS)
def list_(
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    library: Annotated[Literal["web"] | None, Query(description="Only the controls of this SDK library.")] = None,
) -> dict[str, Any]:
    stmt = select(AutocaptureControls).where(AutocaptureControls.project_id == project.id)
    if library is not None:
        stmt = stmt.where(AutocaptureControls.library == library)
    return paginate(session, stmt.order_by(AutocaptureControls.library), page, serialize)


@router.post(
    "",
    name=f"error_tracking_{RESOURCE}_create",
    status_code=201,
    response_model=AutocaptureControlsOut,
    responses={200: {"model": AutocaptureControlsOut, "description": "Controls already existed"}, **_ERRORS},
)
def create(
    project: WriteProject, session: SessionDep, body: AutocaptureControlsWrite, response: Response
) -> dict[str, Any]:
    controls, created = create_web_controls(session, project.id, body.model_dump(include=set(WRITABLE_FIELDS)))
    if not created:
        response.status_code = 200  # as PostHog: a second create answers with the existing ones
    return serialize(controls)


@router.get(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_retrieve",
    response_model=AutocaptureControlsOut,
    responses=_ERRORS,
)
def retrieve(id: uuid.UUID, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    return serialize(_get(session, project.id, id))


def _update(
    id: uuid.UUID, project: WriteProject, session: SessionDep, body: AutocaptureControlsWrite
) -> dict[str, Any]:
    controls = _get(session, project.id, id)
    for field in body.model_fields_set & set(WRITABLE_FIELDS):
        setattr(controls, field, getattr(body, field))
    session.commit()
    return serialize(controls)


add_update_routes(router, resource=RESOURCE, endpoint=_update, response_model=AutocaptureControlsOut)


@router.delete(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_destroy",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
def destroy(id: uuid.UUID, project: WriteProject, session: SessionDep) -> Response:
    session.delete(_get(session, project.id, id))
    session.commit()
    return Response(status_code=204)
