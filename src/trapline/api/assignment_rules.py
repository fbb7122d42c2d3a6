"""``/error_tracking/assignment_rules``: who new and reopened issues go to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from trapline.api._rules import add_shared_rule_routes
from trapline.api.deps import SessionDep, WriteProject
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.rules import AssignmentRuleCreate, AssignmentRuleOut, AssignmentRuleUpdate
from trapline.rules import service
from trapline.rules.models import AssignmentRule

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/assignment_rules", tags=["error_tracking"])
RESOURCE = "assignment_rules"


def serialize(session: Session, rules: Sequence[AssignmentRule]) -> list[dict[str, Any]]:
    return [
        {
            "id": rule.id,
            "filters": rule.filters,
            "assignee": service.assignee_of(rule),
            "order_key": rule.order_key,
            "disabled_data": rule.disabled_data,
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
        }
        for rule in rules
    ]


add_shared_rule_routes(router, model=AssignmentRule, resource=RESOURCE, out=AssignmentRuleOut, serialize=serialize)


@router.post(
    "",
    name=f"error_tracking_{RESOURCE}_create",
    status_code=201,
    response_model=AssignmentRuleOut,
    responses=error_responses(*STANDARD_ERRORS),
    summary="Create an assignment rule",
)
def create(project: WriteProject, session: SessionDep, body: AssignmentRuleCreate) -> dict[str, Any]:
    rule = service.create_rule(
        session, AssignmentRule, project.id, project.organization_id,
        filters=body.filters, order_key=body.order_key, assignee=(body.assignee.type, body.assignee.id),
    )  # fmt: skip
    return serialize(session, [rule])[0]


def _update(id: uuid.UUID, project: WriteProject, session: SessionDep, body: AssignmentRuleUpdate) -> Response:
    rule = service.get_rule(session, AssignmentRule, project.id, id)
    if body.assignee is not None:
        rule.user_id, rule.role_id = service.resolve_assignee(
            session, project.organization_id, (body.assignee.type, body.assignee.id)
        )
    service.touch_rule(rule, body.filters)
    session.commit()
    return Response(status_code=204)


add_update_routes(router, resource=RESOURCE, endpoint=_update, summary="Update an assignment rule")
