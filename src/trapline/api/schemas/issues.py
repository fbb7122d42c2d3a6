"""Wire schemas of issues: the issue object, its list extras, and the write bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trapline.api.schemas.common import AssigneeOut, RequestModel
from trapline.rules.service import Assignee

__all__ = [
    "MAX_IDS",
    "AggregationsOut",
    "ExistsOut",
    "IssueAssign",
    "IssueAssigneeIn",
    "IssueBulk",
    "IssueEventOut",
    "IssueListItem",
    "IssueMerge",
    "IssueOut",
    "IssueRedirect",
    "IssueSplit",
    "IssueUpdate",
    "NoNulText",
    "SplitFingerprintIn",
    "SplitOut",
    "SuccessOut",
    "ValuesOut",
    "VolumeBucketOut",
    "parse_assignee_id",
]

# One request names at most this many issues or fingerprints: each is a bound parameter, and
# SQLite allows a few tens of thousands per statement.
MAX_IDS = 1000


def _no_nul(value: str) -> str:
    # DRF's CharField refuses NUL, and PostgreSQL text cannot store it.
    if "\x00" in value:
        raise PydanticCustomError("null_characters_not_allowed", "Null characters are not allowed.")
    return value


NoNulText = Annotated[str, AfterValidator(_no_nul)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null", "This field may not be null.")
    return value


def _non_empty(value: list[Any]) -> list[Any]:
    if not value:
        raise PydanticCustomError("empty", "This list may not be empty.")
    return value


IssueIds = Annotated[
    list[uuid.UUID],
    AfterValidator(_non_empty),
    Field(max_length=MAX_IDS, json_schema_extra={"minItems": 1}),
]


def parse_assignee_id(kind: str, value: Any) -> int | uuid.UUID:
    """A user id (an integer, or digits) or a role UUID; ``ValueError`` says what is wrong."""
    if kind == "user":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        raise ValueError("Provide a numeric user ID.")
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValueError("Provide a valid role UUID.")


class IssueAssigneeIn(RequestModel):
    type: Literal["user", "role"] = Field(description="`user` for a user id, `role` for a role UUID.")
    id: Annotated[Any, WithJsonSchema({"oneOf": [{"type": "integer"}, {"type": "string"}]})] = Field(
        description="User id (a number) when type is user, role UUID when type is role."
    )

    @field_validator("id")
    @classmethod
    def _matches_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is None:  # the type was itself invalid and is reported first
            return value
        try:
            return parse_assignee_id(kind, value)
        except ValueError as exc:
            raise PydanticCustomError("invalid_input", str(exc)) from None

    def as_assignee(self) -> Assignee:
        return (self.type, self.id)


_WRITABLE_STATUS = Annotated[
    Literal["active", "resolved", "suppressed"] | None,
    BeforeValidator(_not_null),
    WithJsonSchema({"type": "string", "enum": ["active", "resolved", "suppressed"]}),
]


class IssueUpdate(RequestModel):
    """All fields optional; only those given change."""

    status: _WRITABLE_STATUS = Field(
        default=None, description="active, resolved or suppressed; the legacy archived and pending_release are refused."
    )
    severity: Literal["low", "medium", "high", "critical"] | None = None
    name: NoNulText | None = None
    description: NoNulText | None = None

    def changes(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in ("status", "severity", "name", "description")
            if key in self.model_fields_set
        }


class IssueMerge(RequestModel):
    ids: IssueIds = Field(description="The issues to merge into this one; they are deleted.")


class SplitFingerprintIn(RequestModel):
    fingerprint: NoNulText = Field(min_length=1, description="A fingerprint of this issue.")
    name: NoNulText | None = Field(default=None, description='The new issue\'s name; default "Untitled issue".')
    description: NoNulText | None = None


class IssueSplit(RequestModel):
    fingerprints: list[SplitFingerprintIn] = Field(
        default_factory=list,
        max_length=MAX_IDS,
        description="Each fingerprint moves to a new issue. PostHog's older body, a list of fingerprint strings, "
        "is accepted too.",
    )
    exclusive: bool = Field(
        default=True,
        description="Old API: false moves all the given fingerprints to one new issue instead of one each.",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_shape(cls, data: Any) -> Any:
        # PostHog's old split took {"fingerprints": ["fp", ...], "exclusive": bool}.
        if isinstance(data, dict) and isinstance(data.get("fingerprints"), list):
            items = [{"fingerprint": item} if isinstance(item, str) else item for item in data["fingerprints"]]
            return {**data, "fingerprints": items}
        return data


class IssueAssign(RequestModel):
    assignee: IssueAssigneeIn | None = Field(default=None, description="Null or omitted unassigns.")


class IssueBulk(RequestModel):
    action: Literal["set_status", "assign"]
    ids: IssueIds = Field(description="Issues of other projects, or that do not exist, are ignored.")
    # Checked by the service, which answers PostHog's "Invalid status" for anything else.
    status: Annotated[str | None, WithJsonSchema({"type": "string", "enum": ["active", "resolved", "suppressed"]})] = (
        Field(default=None, description="For set_status.")
    )
    assignee: IssueAssigneeIn | None = Field(default=None, description="For assign; null unassigns.")


# --- responses ------------------------------------------------------------------------------


class CohortOut(BaseModel):
    id: int
    name: str


class ExternalIssueOut(BaseModel):
    id: uuid.UUID
    integration: dict[str, Any]
    external_url: str


class IssueOut(BaseModel):
    """PostHog's issue object."""

    id: uuid.UUID
    status: str
    severity: str | None
    name: str | None
    description: str | None
    first_seen: datetime | None = Field(description="When the issue's first event was seen (all time).")
    assignee: AssigneeOut | None
    external_issues: list[ExternalIssueOut] = Field(description="Always empty: no integrations here.")
    cohort: CohortOut | None


class VolumeBucketOut(BaseModel):
    label: datetime = Field(description="The bucket's start.")
    value: int


class AggregationsOut(BaseModel):
    occurrences: int
    users: int = Field(description="Distinct distinct_ids.")
    sessions: int = Field(description="Distinct non-empty $session_id values.")
    volumeRange: list[int] | None = Field(default=None, description="Counts per bucket, with volume_resolution > 0.")
    volume_buckets: list[VolumeBucketOut] | None = Field(default=None, description="With volume_resolution > 0.")


class IssueListItem(IssueOut):
    """The issue object plus its numbers over the requested events."""

    last_seen: datetime | None
    library: str | None = Field(description="$lib of the latest event.")
    aggregations: AggregationsOut


class ExistsOut(BaseModel):
    exists: bool


class ValueOut(BaseModel):
    name: str


class ValuesOut(BaseModel):
    results: list[ValueOut]
    refreshing: bool


class SuccessOut(BaseModel):
    success: bool


class SplitOut(BaseModel):
    success: bool
    new_issue_ids: list[uuid.UUID]


class IssueRedirect(BaseModel):
    issue_id: uuid.UUID = Field(description="The issue the fingerprint belongs to now.")


class IssueEventOut(BaseModel):
    uuid: uuid.UUID
    timestamp: datetime
    distinct_id: str
    properties: dict[str, Any]
