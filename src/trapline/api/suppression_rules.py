"""``/error_tracking/suppression_rules``: exceptions that are dropped at ingestion."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from trapline.api._rules import add_shared_rule_routes
from trapline.api.deps import SessionDep, WriteProject
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.rules import SuppressionRuleCreate, SuppressionRuleOut, SuppressionRuleUpdate
from trapline.rules import service
from trapline.rules.filters import MATCH_ALL
from trapline.rules.models import SuppressionRule

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/suppression_rules", tags=["error_tracking"])
RESOURCE = "suppression_rules"


def serialize(session: Session, rules: Sequence[SuppressionRule]) -> list[dict[str, Any]]:
    return [
        {
            "id": rule.id,
            "filters": rule.filters,
            "order_key": rule.order_key,
            "disabled_data": rule.disabled_data,
            "sampling_rate": rule.sampling_rate,
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
        }
        for rule in rules
    ]


add_shared_rule_routes(router, model=SuppressionRule, resource=RESOURCE, out=SuppressionRuleOut, serialize=serialize)


@router.post(
    "",
    name=f"error_tracking_{RESOURCE}_create",
    status_code=201,
    response_model=SuppressionRuleOut,
    responses=error_responses(*STANDARD_ERRORS),
    summary="Create a suppression rule",
)
def create(project: WriteProject, session: SessionDep, body: SuppressionRuleCreate) -> dict[str, Any]:
    rule = service.create_rule(
        session, SuppressionRule, project.id, project.organization_id,
        filters=body.filters if body.filters is not None else dict(MATCH_ALL),
        order_key=body.order_key, sampling_rate=body.sampling_rate,
    )  # fmt: skip
    return serialize(session, [rule])[0]


def _update(id: uuid.UUID, project: WriteProject, session: SessionDep, body: SuppressionRuleUpdate) -> Response:
    rule = service.get_rule(session, SuppressionRule, project.id, id)
    if body.sampling_rate is not None:
        rule.sampling_rate = body.sampling_rate
    service.touch_rule(rule, body.filters)
    session.commit()
    return Response(status_code=204)


add_update_routes(router, resource=RESOURCE, endpoint=_update, summary="Update a suppression rule")
