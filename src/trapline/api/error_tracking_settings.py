"""``/error_tracking/settings``: PostHog's ``retrieve_settings``, ``update_settings`` and
``setup_status`` actions.

Settings are PostHog's four rate limit fields plus Trapline's ``retention_days`` and
``max_events_per_issue``; ``update_settings`` is a partial update (null clears a field)
answering 200 with the whole object. There is nothing at ``/settings`` itself, as in PostHog.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, Request

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.error_tracking_settings import (
    ErrorTrackingSettingsOut,
    ErrorTrackingSettingsUpdate,
    SetupStatusOut,
)
from trapline.limits import service
from trapline.sdk.routes import ConfigCache

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/settings", tags=["error_tracking"])
RESOURCE = "settings"
_ERRORS = error_responses(*STANDARD_ERRORS)


def _config_cache(request: Request) -> ConfigCache:
    cache: ConfigCache = request.app.state.sdk_config
    return cache


ConfigCacheDep = Annotated[ConfigCache, Depends(_config_cache)]


@router.get(
    "/retrieve_settings",
    name=f"error_tracking_{RESOURCE}_retrieve_settings_retrieve",
    response_model=ErrorTrackingSettingsOut,
    responses=_ERRORS,
)
def retrieve_settings(project: ReadProject, session: SessionDep) -> dict[str, Any]:
    """The project's rate limits and retention."""
    return asdict(service.get_settings(session, project.id))


@router.patch(
    "/update_settings",
    name=f"error_tracking_{RESOURCE}_update_settings_partial_update",
    response_model=ErrorTrackingSettingsOut,
    responses=_ERRORS,
)
def update_settings(project: WriteProject, session: SessionDep, body: ErrorTrackingSettingsUpdate) -> dict[str, Any]:
    """Change the fields given; null clears one."""
    # exclude_unset, not exclude_none: a null sent is a limit removed, a field left out is kept.
    return asdict(service.update_settings(session, project.id, body.model_dump(exclude_unset=True)))


@router.get(
    "/setup_status",
    name=f"error_tracking_{RESOURCE}_setup_status_retrieve",
    response_model=SetupStatusOut,
    responses=_ERRORS,
)
def setup_status(project: ReadProject, session: SessionDep, configs: ConfigCacheDep) -> dict[str, Any]:
    """Whether exceptions arrive, from which SDKs, and what may be keeping them away."""
    status = service.setup_status(session, project, remote=configs.get(project.api_token))
    body = asdict(status)
    body["warnings"] = [{"warning_code": w.code, "message": w.message} for w in status.warnings]
    return body
