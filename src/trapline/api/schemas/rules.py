"""Wire schemas of grouping, assignment and suppression rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from trapline.api.schemas.common import AssigneeOut, RequestModel
from trapline.rules.filters import FilterError, has_filter_values, validate_filters

__all__ = [
    "AssigneeIn",
    "AssignmentRuleCreate",
    "AssignmentRuleOut",
    "AssignmentRuleUpdate",
    "GroupingRuleCreate",
    "GroupingRuleOut",
    "GroupingRuleUpdate",
    "IssueRef",
    "ReorderRequest",
    "SuppressionRuleCreate",
    "SuppressionRuleOut",
    "SuppressionRuleUpdate",
]

_FILTERS_SCHEMA = {
    "type": "object",
    "description": 'A PostHog property-group filter: {"type": "AND"|"OR", "values": [filter | group, ...]}.',
    "properties": {
        "type": {"type": "string", "enum": ["AND", "OR"]},
        "values": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "values"],
}


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_input", message)


def _object(message: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _invalid(message)
        return value

    return check


def _valid_group(value: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_filters(value)
    except FilterError as exc:
        raise _invalid(f"Invalid filters payload: {exc}.") from exc
    return value


def _grouping_filters(value: Any) -> Any:
    value = _valid_group(_object("Expected a JSON object.")(value))
    if not has_filter_values(value):
        raise _invalid("Filters must contain at least one filter value.")
    return value


def _assignment_filters(value: Any) -> Any:
    return _valid_group(_object("Expected a JSON object.")(value))


def _suppression_filters(value: Any) -> Any:
    value = _object("Expected an object.")(value)
    if has_filter_values(value):
        return _valid_group(value)
    if "values" not in value:
        raise _invalid("Invalid filters")
    return _valid_group(value)


GroupingFilters = Annotated[dict[str, Any], BeforeValidator(_grouping_filters), WithJsonSchema(_FILTERS_SCHEMA)]
AssignmentFilters = Annotated[dict[str, Any], BeforeValidator(_assignment_filters), WithJsonSchema(_FILTERS_SCHEMA)]
SuppressionFilters = Annotated[dict[str, Any], BeforeValidator(_suppression_filters), WithJsonSchema(_FILTERS_SCHEMA)]


def _assignee_id(value: Any) -> int | uuid.UUID:
    # PostHog accepts an integer user id, a digit string, or a role UUID (string).
    if isinstance(value, bool):
        raise _invalid("Expected an integer user ID or UUID role ID.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            if value.isdigit():
                return int(value)
    raise _invalid("Expected an integer user ID or UUID role ID.")


AssigneeId = Annotated[
    int | uuid.UUID,
    BeforeValidator(_assignee_id),
    WithJsonSchema({"oneOf": [{"type": "integer"}, {"type": "string", "format": "uuid"}]}),
]


class AssigneeIn(RequestModel):
    type: Literal["user", "role"] = Field(description="`user` for a user id, `role` for a role UUID.")
    id: AssigneeId = Field(description="User id when type is user, role UUID when type is role.")

    @field_validator("id")
    @classmethod
    def _matches_type(cls, value: int | uuid.UUID, info: ValidationInfo) -> int | uuid.UUID:
        kind = info.data.get("type")
        if kind == "user" and not isinstance(value, int):
            raise _invalid("User assignee IDs must be integers.")
        if kind == "role" and not isinstance(value, uuid.UUID):
            raise _invalid("Role assignee IDs must be UUIDs.")
        return value


class IssueRef(BaseModel):
    id: uuid.UUID
    name: str | None


class _RuleOut(BaseModel):
    id: uuid.UUID
    filters: dict[str, Any]
    order_key: int
    disabled_data: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class GroupingRuleOut(_RuleOut):
    assignee: AssigneeOut | None
    description: str | None
    issue: IssueRef | None = Field(description="The issue that events matching this rule are grouped into.")


class AssignmentRuleOut(_RuleOut):
    assignee: AssigneeOut | None


class SuppressionRuleOut(_RuleOut):
    sampling_rate: float


class GroupingRuleCreate(RequestModel):
    filters: GroupingFilters
    assignee: AssigneeIn | None = None
    description: str | None = None
    order_key: int = Field(default=0, ge=-2147483648, le=2147483647)


class GroupingRuleUpdate(RequestModel):
    filters: GroupingFilters | None = Field(default=None, description="Omit to keep the current filters.")
    assignee: AssigneeIn | None = Field(default=None, description="Omit to keep the current assignee.")
    description: str | None = None


class AssignmentRuleCreate(RequestModel):
    filters: AssignmentFilters
    assignee: AssigneeIn
    order_key: int = Field(default=0, ge=-2147483648, le=2147483647)


class AssignmentRuleUpdate(RequestModel):
    filters: AssignmentFilters | None = Field(default=None, description="Omit to keep the current filters.")
    assignee: AssigneeIn | None = Field(default=None, description="Omit to keep the current assignee.")


class SuppressionRuleCreate(RequestModel):
    filters: SuppressionFilters | None = Field(
        default=None, description="Omit, or give an empty values list, for a rule that matches every event."
    )
    sampling_rate: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Probability that a matching event is dropped."
    )
    order_key: int = Field(default=0, ge=-2147483648, le=2147483647)


class SuppressionRuleUpdate(RequestModel):
    filters: SuppressionFilters | None = None
    sampling_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class ReorderRequest(RequestModel):
    # Omitted means "nothing to reorder", as in PostHog (whose API docs show a reorder call
    # without it).
    orders: dict[uuid.UUID, Annotated[int, Field(ge=-2147483648, le=2147483647)]] = Field(
        default_factory=dict, description="Rule id → its new order_key. Rules not named keep theirs."
    )
