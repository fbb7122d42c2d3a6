"""``/api/projects/{id}``: the project's own settings, as far as Trapline has them.

PostHog's project (team) object has many more fields; these are the ones that mean something
here, with PostHog's names. ``autocapture_exceptions_opt_in`` is what remote config tells
posthog-js: whether browsers capture unhandled errors and rejections by themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from trapline.api.deps import ReadProject, ReadProjectSettings, SessionDep, SettingsDep, WriteProjectSettings
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.common import RequestModel
from trapline.events.models import DroppedEvents
from trapline.projects.models import new_sentry_key
from trapline.sentry.auth import dsn
from trapline.settings import Settings

__all__ = ["router"]

router = ApiRouter(tags=["projects"])
_ERRORS = error_responses(*STANDARD_ERRORS)


class ProjectOut(BaseModel):
    id: int
    uuid: str = Field(description="The organization-wide id of the project's organization.")
    name: str
    api_token: str = Field(description="The project API token SDKs send with events (phc_…).")
    sentry_dsn: str = Field(description="Trapline addition: the DSN Sentry's SDKs send this project's events with.")
    created_at: datetime
    autocapture_exceptions_opt_in: bool


class ProjectUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    autocapture_exceptions_opt_in: bool | None = None


class DroppedOut(BaseModel):
    reason: str
    count: int
    last_dropped_at: datetime
    last_detail: str | None


class DroppedList(BaseModel):
    results: list[DroppedOut]


def _out(project: Any, settings: Settings) -> dict[str, Any]:
    return {
        "id": project.id,
        "uuid": str(project.organization_id),
        "name": project.name,
        "api_token": project.api_token,
        "sentry_dsn": dsn(settings.public_url, project.sentry_public_key, project.id),
        "created_at": project.created_at,
        "autocapture_exceptions_opt_in": project.autocapture_exceptions_opt_in,
    }


@router.get("", name="project_retrieve", response_model=ProjectOut, responses=_ERRORS, summary="The project")
def retrieve(project: ReadProjectSettings, settings: SettingsDep) -> dict[str, Any]:
    return _out(project, settings)


@router.patch(
    "", name="project_partial_update", response_model=ProjectOut, responses=_ERRORS, summary="Change settings"
)
def update(
    project: WriteProjectSettings, session: SessionDep, settings: SettingsDep, body: ProjectUpdate
) -> dict[str, Any]:
    if body.name is not None:
        project.name = body.name
    if body.autocapture_exceptions_opt_in is not None:
        project.autocapture_exceptions_opt_in = body.autocapture_exceptions_opt_in
    session.commit()
    return _out(project, settings)


@router.patch(
    "/reset_sentry_key",
    name="project_reset_sentry_key",
    response_model=ProjectOut,
    responses=_ERRORS,
    summary="Give the Sentry DSN a new key",
    description="Trapline addition, like PostHog's reset_token: SDKs still using the old DSN are refused "
    "(403) within seconds.",
)
def reset_sentry_key(project: WriteProjectSettings, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    project.sentry_public_key = new_sentry_key()
    session.commit()
    return _out(project, settings)


@router.get(
    "/error_tracking/dropped_events",
    name="error_tracking_dropped_events_list",
    response_model=DroppedList,
    responses=_ERRORS,
    summary="Accepted events that were not stored, counted by reason",
    description="Trapline addition: events dropped by suppression rules, suppressed issues, autocapture controls, "
    "or because their exception list could not be read; with the details of the latest one of each.",
)
def dropped(project: ReadProject, session: SessionDep) -> dict[str, Any]:
    rows = session.scalars(
        select(DroppedEvents).where(DroppedEvents.project_id == project.id).order_by(DroppedEvents.reason)
    )
    return {
        "results": [
            {"reason": r.reason, "count": r.count, "last_dropped_at": r.last_dropped_at, "last_detail": r.last_detail}
            for r in rows
        ]
    }
