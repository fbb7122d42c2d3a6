"""``/error_tracking/alerts``: who is notified of new, reopened, spiking and frequent issues.

List, create, retrieve, update (200 with the alert, as PostHog's alerts API answers), delete,
``{id}/test`` (send a sample now and answer with its delivery), ``{id}/deliveries`` and
``deliveries`` (the delivery log, newest first; ``?issue_id=`` for one issue's).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from sqlalchemy.orm import Session

from trapline.alerts import service
from trapline.alerts.models import Alert, AlertDelivery
from trapline.alerts.senders import Senders
from trapline.alerts.service import AlertInput
from trapline.api.deps import ReadProject, SessionDep, SettingsDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.alerts import AlertCreate, AlertOut, AlertUpdate, DeliveryOut
from trapline.api.schemas.common import Page

__all__ = ["router", "serialize_alert", "serialize_delivery"]

router = ApiRouter(prefix="/error_tracking/alerts", tags=["error_tracking"])
RESOURCE = "alerts"
_ERRORS = error_responses(*STANDARD_ERRORS)
DeliveryStatus = Literal["pending", "delivered", "failed", "throttled"]


def _senders(request: Request) -> Senders:
    senders: Senders = request.app.state.senders
    return senders


SendersDep = Annotated[Senders, Depends(_senders)]


def serialize_delivery(delivery: AlertDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "issue_id": delivery.issue_id,
        "kind": delivery.kind,
        "event_uuid": delivery.event_uuid,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "error": delivery.error,
        "created_at": delivery.created_at,
        "last_attempt_at": delivery.last_attempt_at,
        "next_attempt_at": delivery.next_attempt_at,
        "delivered_at": delivery.delivered_at,
        "summary_count": delivery.summary_count,
    }


def serialize_alert(session: Session, alert: Alert) -> dict[str, Any]:
    last = service.last_delivery(session, alert)
    return {
        "id": alert.id,
        "name": alert.name,
        "enabled": alert.enabled,
        "trigger": {
            "type": alert.trigger,
            "threshold": alert.threshold,
            "window_minutes": alert.window_minutes,
            "interval_minutes": alert.interval_minutes,
        },
        "filters": alert.filters,
        "destination": service.masked_destination(alert),
        "throttle": (
            {"max_messages": alert.throttle_max, "per_minutes": alert.throttle_minutes}
            if alert.throttle_max is not None
            else None
        ),
        "created_at": alert.created_at,
        "updated_at": alert.updated_at,
        "last_delivery": serialize_delivery(last) if last is not None else None,
    }


def _input(body: AlertCreate | AlertUpdate) -> AlertInput:
    return AlertInput(
        name=body.name,
        enabled=body.enabled,
        trigger=body.trigger.model_dump() if body.trigger is not None else None,
        filters=body.filters,
        destination=body.destination,
        throttle=body.throttle.model_dump() if body.throttle is not None else None,
        throttle_given="throttle" in body.model_fields_set,
    )


@router.get("", name=f"error_tracking_{RESOURCE}_list", response_model=Page[AlertOut], responses=_ERRORS)
def list_(project: ReadProject, session: SessionDep, page: PageParamsDep) -> dict[str, Any]:
    """The project's alerts, oldest first."""
    return paginate(session, service.list_alerts(project.id), page, lambda alert: serialize_alert(session, alert))


@router.post("", name=f"error_tracking_{RESOURCE}_create", status_code=201, response_model=AlertOut, responses=_ERRORS)
def create(project: WriteProject, session: SessionDep, settings: SettingsDep, body: AlertCreate) -> dict[str, Any]:
    """Create an alert."""
    alert = service.create_alert(session, project.id, _input(body), settings)
    return serialize_alert(session, alert)


# Registered before /{id}, so that "deliveries" is not taken for an alert id.
@router.get(
    "/deliveries",
    name=f"error_tracking_{RESOURCE}_deliveries_all",
    response_model=Page[DeliveryOut],
    responses=_ERRORS,
)
def all_deliveries(
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    issue_id: Annotated[uuid.UUID | None, Query(description="Only notifications about this issue.")] = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only notifications in this state.")] = None,
) -> dict[str, Any]:
    """Every alert's notifications, newest first."""
    query = service.alert_deliveries(project.id, issue_id=issue_id, statuses=[status] if status else [])
    return paginate(session, query, page, serialize_delivery)


@router.get("/{id}", name=f"error_tracking_{RESOURCE}_retrieve", response_model=AlertOut, responses=_ERRORS)
def retrieve(id: uuid.UUID, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    return serialize_alert(session, service.get_alert(session, project.id, id))


def _update(
    id: uuid.UUID, project: WriteProject, session: SessionDep, settings: SettingsDep, body: AlertUpdate
) -> dict[str, Any]:
    alert = service.update_alert(session, service.get_alert(session, project.id, id), _input(body), settings)
    return serialize_alert(session, alert)


add_update_routes(
    router,
    resource=RESOURCE,
    endpoint=_update,
    response_model=AlertOut,
    summary="Update an alert (only the fields given)",
)


@router.delete(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_destroy",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
def destroy(id: uuid.UUID, project: WriteProject, session: SessionDep) -> Response:
    service.delete_alert(session, project.id, id)
    return Response(status_code=204)


@router.post("/{id}/test", name=f"error_tracking_{RESOURCE}_test", response_model=DeliveryOut, responses=_ERRORS)
def test(
    id: uuid.UUID, project: WriteProject, session: SessionDep, settings: SettingsDep, senders: SendersDep
) -> dict[str, Any]:
    """Send a sample notification through the alert's destination now; answers with its delivery
    (``status`` delivered or failed, the receiver's ``response_code``, the ``error``)."""
    alert = service.get_alert(session, project.id, id)
    delivery = service.send_test(session, alert, project, senders, settings.base_url)
    return serialize_delivery(delivery)


@router.get(
    "/{id}/deliveries",
    name=f"error_tracking_{RESOURCE}_deliveries",
    response_model=Page[DeliveryOut],
    responses=_ERRORS,
)
def deliveries(
    id: uuid.UUID,
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[DeliveryStatus | None, Query(description="Only notifications in this state.")] = None,
) -> dict[str, Any]:
    """The alert's notifications, newest first."""
    alert = service.get_alert(session, project.id, id)
    query = service.alert_deliveries(project.id, alert_id=alert.id, statuses=[status] if status else [])
    return paginate(session, query, page, serialize_delivery)
