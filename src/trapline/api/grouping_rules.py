"""``/error_tracking/grouping_rules``: events matching a rule share one issue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from trapline.api._rules import add_shared_rule_routes
from trapline.api.deps import SessionDep, WriteProject
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.rules import GroupingRuleCreate, GroupingRuleOut, GroupingRuleUpdate
from trapline.rules import service
from trapline.rules.models import GroupingRule

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/grouping_rules", tags=["error_tracking"])
RESOURCE = "grouping_rules"


def serialize(session: Session, rules: Sequence[GroupingRule]) -> list[dict[str, Any]]:
    issues = service.grouping_rule_issues(session, rules[0].project_id, [r.id for r in rules]) if rules else {}
    out = []
    for rule in rules:
        issue = issues.get(rule.id)
        out.append(
            {
                "id": rule.id,
                "filters": rule.filters,
                "assignee": service.assignee_of(rule),
                "description": rule.description,
                "issue": {"id": issue.id, "name": issue.name} if issue else None,
                "order_key": rule.order_key,
                "disabled_data": rule.disabled_data,
                "created_at": rule.created_at,
                "updated_at": rule.updated_at,
            }
        )
    return out


add_shared_rule_routes(router, model=GroupingRule, resource=RESOURCE, out=GroupingRuleOut, serialize=serialize)


@router.post(
    "",
    name=f"error_tracking_{RESOURCE}_create",
    status_code=201,
    response_model=GroupingRuleOut,
    responses=error_responses(*STANDARD_ERRORS),
    summary="Create a grouping rule",
)
def create(project: WriteProject, session: SessionDep, body: GroupingRuleCreate) -> dict[str, Any]:
    rule = service.create_rule(
        session, GroupingRule, project.id, project.organization_id,
        filters=body.filters, order_key=body.order_key, description=body.description,
        assignee=(body.assignee.type, body.assignee.id) if body.assignee is not None else None,
    )  # fmt: skip
    return serialize(session, [rule])[0]


def _update(id: uuid.UUID, project: WriteProject, session: SessionDep, body: GroupingRuleUpdate) -> Response:
    rule = service.get_rule(session, GroupingRule, project.id, id)
    if body.assignee is not None:
        rule.user_id, rule.role_id = service.resolve_assignee(
            session, project.organization_id, (body.assignee.type, body.assignee.id)
        )
    if "description" in body.model_fields_set:
        rule.description = body.description
    service.touch_rule(rule, body.filters)
    session.commit()
    return Response(status_code=204)


add_update_routes(router, resource=RESOURCE, endpoint=_update, summary="Update a grouping rule")
