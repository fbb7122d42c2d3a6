"""``/error_tracking/spike_detection_config`` and ``/error_tracking/spike_events``: PostHog's spike
detector settings and the spikes it reported.

The config answers PostHog's three fields (``snooze_duration_minutes``, ``multiplier``,
``threshold``) and Trapline's ``enabled``; ``update_config`` is a partial update answering 200
with the whole config. Spike events are listed newest first by default, filtered by
``issue_ids`` (comma-separated), ``date_from`` and ``date_to``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query

from trapline.alerts import service
from trapline.alerts.models import SpikeEvent
from trapline.alerts.spikes import SpikeSettings
from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.alerts import SpikeDetectionConfigOut, SpikeDetectionConfigUpdate, SpikeEventOut
from trapline.api.schemas.common import Page
from trapline.errors import InvalidInput

__all__ = ["config_router", "events_router"]

config_router = ApiRouter(prefix="/error_tracking/spike_detection_config", tags=["error_tracking"])
events_router = ApiRouter(prefix="/error_tracking/spike_events", tags=["error_tracking"])
_ERRORS = error_responses(*STANDARD_ERRORS)
OrderBy = Literal[
    "detected_at", "-detected_at", "computed_baseline", "-computed_baseline", "current_bucket_value",
    "-current_bucket_value",
]  # fmt: skip


def _config(settings: SpikeSettings) -> dict[str, Any]:
    return {
        "snooze_duration_minutes": settings.snooze_duration_minutes,
        "multiplier": settings.multiplier,
        "threshold": settings.threshold,
        "enabled": settings.enabled,
    }


@config_router.get(
    "", name="error_tracking_spike_detection_config_list", response_model=SpikeDetectionConfigOut, responses=_ERRORS
)
def get_config(project: ReadProject, session: SessionDep) -> dict[str, Any]:
    """The project's spike detector."""
    return _config(service.spike_settings(session, project.id))


@config_router.patch(
    "/update_config",
    name="error_tracking_spike_detection_config_update_config",
    response_model=SpikeDetectionConfigOut,
    responses=_ERRORS,
)
def update_config(project: WriteProject, session: SessionDep, body: SpikeDetectionConfigUpdate) -> dict[str, Any]:
    """Change the fields given."""
    return _config(service.update_spike_settings(session, project.id, body.model_dump(exclude_none=True)))


def _issue_ids(text: str | None) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                ids.append(uuid.UUID(part.strip()))
            except ValueError:
                raise InvalidInput(f"'{part.strip()}' is not a valid issue id.", attr="issue_ids") from None
    return ids


@events_router.get("", name="error_tracking_spike_events_list", response_model=Page[SpikeEventOut], responses=_ERRORS)
def list_events(
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    issue_ids: Annotated[str | None, Query(description="Comma-separated issue ids; omit for every issue.")] = None,
    date_from: Annotated[datetime | None, Query(description="Detected at or after (ISO 8601).")] = None,
    date_to: Annotated[datetime | None, Query(description="Detected at or before (ISO 8601).")] = None,
    order_by: Annotated[OrderBy, Query(description="Newest first unless told otherwise.")] = "-detected_at",
) -> dict[str, Any]:
    """The spikes the detector reported."""
    query = service.spike_events(
        project.id, issue_ids=_issue_ids(issue_ids), date_from=date_from, date_to=date_to, order_by=order_by
    )

    def serialize(event: SpikeEvent) -> dict[str, Any]:
        return {
            "id": event.id,
            "issue": {"id": event.issue_id, "name": event.issue.name, "description": event.issue.description},
            "detected_at": event.detected_at,
            "computed_baseline": event.computed_baseline,
            "current_bucket_value": event.current_bucket_value,
        }

    return paginate(session, query, page, serialize)
