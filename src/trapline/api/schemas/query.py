"""Wire schemas of the error tracking query endpoints: camelCase, as PostHog's (made for
agents and MCP tools rather than for its own frontend)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, PlainValidator, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from trapline.api.schemas.common import AssigneeOut, RequestModel
from trapline.api.schemas.issues import AggregationsOut, IssueAssigneeIn, NoNulText
from trapline.issues.queries import MAX_VOLUME_RESOLUTION, OrderKey, StatusFilter

__all__ = [
    "EVENT_GROUPS",
    "BreakdownOut",
    "DateRangeIn",
    "EventGroup",
    "IssueEventsQuery",
    "IssueEventsQueryOut",
    "IssueQuery",
    "IssueQueryOut",
    "IssuesQuery",
    "IssuesQueryOut",
]

EventGroup = Literal[
    "exception", "stacktrace", "code_variables", "environment", "release", "navigation", "correlation", "diagnostics"
]
EVENT_GROUPS: tuple[EventGroup, ...] = (
    "exception", "stacktrace", "code_variables", "environment", "release", "navigation", "correlation", "diagnostics",
)  # fmt: skip
_OFFSET_MAX = 2**53  # fits the databases' 64-bit OFFSET


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value) and len(value) <= 100:
        return value
    raise PydanticCustomError("invalid_input", "Expected a string or a non-empty list of strings.")


StringOrStrings = Annotated[
    str | list[str],
    PlainValidator(_strings),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}),
]


def _unsupported(message: str) -> Any:
    def check(value: Any) -> Any:
        if value:
            raise PydanticCustomError("invalid_input", message)
        return value

    return AfterValidator(check)


# Property filters would need a JSON-path filter compiler for both databases; the typed
# shortcuts (library, fingerprint, url) and the search cover what agents ask for. Refused
# rather than ignored, so that nobody reads unfiltered numbers as filtered ones.
_NO_FILTER_GROUP = _unsupported("Property filters are not supported; use library, fingerprint, url or searchQuery.")


class DateRangeIn(RequestModel):
    date_from: NoNulText | None = Field(
        default=None, description='ISO date or datetime, relative ("-7d", "-24h", "-1m") or "all". Default -7d.'
    )
    date_to: NoNulText | None = Field(default=None, description="Default: now.")


class IssuesQuery(RequestModel):
    dateRange: DateRangeIn | None = Field(default=None, description="Default: the last 7 days.")
    status: StatusFilter = "active"
    assignee: IssueAssigneeIn | None = None
    filterTestAccounts: bool = Field(default=True, description="Accepted; there are no test accounts here.")
    searchQuery: str | None = Field(
        default=None, max_length=500, description="Words that must all match exception types, values, sources, "
        "functions or email.",
    )  # fmt: skip
    user: str | None = Field(default=None, max_length=500, description="Searched like searchQuery (e.g. an email).")
    filePath: str | None = Field(default=None, max_length=1000, description="Searched like searchQuery.")
    filterGroup: Annotated[list[dict[str, Any]], _NO_FILTER_GROUP] = Field(
        default_factory=list, description="Not supported: must be empty."
    )
    library: StringOrStrings | None = Field(default=None, description="$lib equals (one of) this.")
    release: Annotated[str | None, _unsupported("The release filter is not supported.")] = Field(
        default=None, description="Not supported."
    )
    fingerprint: StringOrStrings | None = Field(default=None, description="The event's fingerprint equals this.")
    url: str | None = Field(default=None, max_length=1000, description="$current_url contains this.")
    personId: Annotated[
        uuid.UUID | None,
        _unsupported("personId is not supported: there are no persons here; search for the user's email instead."),
    ] = Field(default=None, description="Not supported.")
    orderBy: OrderKey = "occurrences"
    orderDirection: Literal["ASC", "DESC"] = "DESC"
    limit: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=_OFFSET_MAX)
    volumeResolution: int = Field(default=0, ge=0, le=MAX_VOLUME_RESOLUTION, description="Buckets; 0 for none.")


class IssueQuery(RequestModel):
    issueId: uuid.UUID
    dateRange: DateRangeIn | None = Field(default=None, description="Default: the last 7 days.")
    filterTestAccounts: bool = True
    volumeResolution: int = Field(default=0, ge=0, le=MAX_VOLUME_RESOLUTION)
    includeSparkline: bool = Field(default=False, description="Counts per bucket; 12 buckets unless volumeResolution.")
    includeBreakdown: bool = Field(default=False, description="Most common values per dimension, last 30 days at most.")


class IssueEventsQuery(RequestModel):
    issueId: uuid.UUID
    dateRange: DateRangeIn | None = Field(default=None, description="Default: the last 7 days.")
    filterTestAccounts: bool = True
    filterGroup: Annotated[list[dict[str, Any]], _NO_FILTER_GROUP] = Field(
        default_factory=list, description="Not supported: must be empty."
    )
    searchQuery: str | None = Field(default=None, max_length=500)
    orderDirection: Literal["ASC", "DESC"] = "DESC"
    limit: int = Field(default=1, ge=1, le=20)
    offset: int = Field(default=0, ge=0, le=_OFFSET_MAX)
    include: list[EventGroup] | None = Field(
        default=None,
        description="Property groups to return; default exception, environment, navigation, correlation. "
        "stacktrace adds frames, code_variables frames with their variables.",
    )
    onlyAppFrames: bool = Field(default=True, description="Keep only in_app frames.")

    @field_validator("include")
    @classmethod
    def _distinct(cls, value: list[EventGroup] | None) -> list[EventGroup] | None:
        return list(dict.fromkeys(value)) if value is not None else None


# --- responses ------------------------------------------------------------------------------


class QueryIssueItem(BaseModel):
    id: uuid.UUID
    name: str | None
    description: str | None = Field(description="At most 300 characters here.")
    status: str
    severity: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    library: str | None
    source: str | None = Field(description="Source file of the latest event's top in-app frame.")
    assignee: AssigneeOut | None
    aggregations: AggregationsOut


class IssuesQueryOut(BaseModel):
    results: list[QueryIssueItem]
    hasMore: bool
    limit: int
    offset: int
    nextOffset: int | None = Field(default=None, description="Present when hasMore.")


class TopFrameOut(BaseModel):
    function: str | None = None
    source: str | None = None
    line: int | None = None
    column: int | None = None
    in_app: bool | None = None


class LatestReleaseOut(BaseModel):
    version: str | None = None
    project: str | None = None
    timestamp: str | None = None
    commit_id: str | None = None
    branch: str | None = None
    repo_name: str | None = None


class ImpactOut(BaseModel):
    occurrences: int | None = None
    users: int | None = None
    sessions: int | None = None


class BreakdownValueOut(BaseModel):
    value: str
    count: int


class BreakdownTopValuesOut(BaseModel):
    path: list[BreakdownValueOut] | None = None
    url: list[BreakdownValueOut] | None = Field(default=None, description="Only when events have no $pathname.")
    screen: list[BreakdownValueOut] | None = None
    browser: list[BreakdownValueOut] | None = None
    os: list[BreakdownValueOut] | None = None
    library: list[BreakdownValueOut] | None = None
    library_version: list[BreakdownValueOut] | None = None
    app_version: list[BreakdownValueOut] | None = None


class BreakdownOut(BaseModel):
    date_from: datetime
    date_to: datetime
    range_limited: bool = Field(description="The range was longer than 30 days; only its last 30 are covered.")
    occurrences: int
    sample_session_ids: list[str]
    top_values: BreakdownTopValuesOut


class IssueQueryOut(BaseModel):
    """Empty fields are left out."""

    id: uuid.UUID
    name: str | None = None
    description: str | None = None
    status: str | None = None
    severity: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    library: str | None = None
    source: str | None = None
    function: str | None = None
    assignee: AssigneeOut | None = None
    top_in_app_frame: TopFrameOut | None = None
    latest_release: LatestReleaseOut | None = None
    impact: ImpactOut | None = None
    sparkline: list[int] | None = None
    breakdown: BreakdownOut | None = None


class QueryEventOut(BaseModel):
    uuid: uuid.UUID
    timestamp: datetime
    distinct_id: str
    properties: dict[str, Any]


class IssueEventsQueryOut(BaseModel):
    results: list[QueryEventOut]
    hasMore: bool
    limit: int
    offset: int
    nextOffset: int | None = Field(default=None, description="Present when hasMore.")
