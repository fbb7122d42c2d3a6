"""The routes all three rule kinds share: list, retrieve, delete and reorder."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate_rows
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.rules import ReorderRequest
from trapline.rules import service
from trapline.rules.models import AssignmentRule, GroupingRule, SuppressionRule

__all__ = ["add_shared_rule_routes"]

R = TypeVar("R", GroupingRule, AssignmentRule, SuppressionRule)
Serializer = Callable[[Session, Sequence[Any]], list[dict[str, Any]]]


def add_shared_rule_routes(
    router: ApiRouter, *, model: type[R], resource: str, out: type[BaseModel], serialize: Serializer
) -> None:
    """Register list, retrieve, delete and reorder for ``model`` on ``router``."""
    errors = error_responses(*STANDARD_ERRORS)

    # Registered before /{id} so that "reorder" is not taken for a rule id.
    @router.patch(
        "/reorder",
        name=f"error_tracking_{resource}_reorder",
        status_code=200,
        response_class=Response,
        responses={200: {"description": "Reordered (no body)"}, **errors},
        summary=f"Reorder {resource.replace('_', ' ')}",
    )
    def reorder(project: WriteProject, session: SessionDep, body: ReorderRequest) -> Response:
        service.reorder_rules(session, model, project.id, body.orders)
        return Response(status_code=200)

    @router.get(
        "",
        name=f"error_tracking_{resource}_list",
        response_model=Page[out],  # type: ignore[valid-type]
        responses=errors,
        summary=f"List {resource.replace('_', ' ')}",
    )
    def list_(project: ReadProject, session: SessionDep, page: PageParamsDep) -> dict[str, Any]:
        rules = session.scalars(service.ordered_rules(model, project.id)).all()
        result = paginate_rows(rules, page)
        result["results"] = serialize(session, result["results"])
        return result

    @router.get(
        "/{id}",
        name=f"error_tracking_{resource}_retrieve",
        response_model=out,
        responses=errors,
        summary=f"Retrieve one of the {resource.replace('_', ' ')}",
    )
    def retrieve(id: uuid.UUID, project: ReadProject, session: SessionDep) -> dict[str, Any]:
        return serialize(session, [service.get_rule(session, model, project.id, id)])[0]

    @router.delete(
        "/{id}",
        name=f"error_tracking_{resource}_destroy",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}, **errors},
        summary=f"Delete one of the {resource.replace('_', ' ')}",
    )
    def destroy(id: uuid.UUID, project: WriteProject, session: SessionDep) -> Response:
        service.delete_rule(session, model, project.id, id)
        return Response(status_code=204)
