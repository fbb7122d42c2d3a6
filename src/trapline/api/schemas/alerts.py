"""Wire schemas of alerts, their delivery log, and the spike detector."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from trapline.api.schemas.common import RequestModel
from trapline.api.schemas.rules import AssignmentFilters

__all__ = [
    "AlertCreate",
    "AlertOut",
    "AlertUpdate",
    "DeliveryOut",
    "SpikeDetectionConfigOut",
    "SpikeDetectionConfigUpdate",
    "SpikeEventOut",
]

TriggerType = Literal["issue_created", "issue_reopened", "issue_spiking", "issue_frequency", "issue_users"]
_WEEK_MINUTES = 7 * 24 * 60

_DESTINATION_SCHEMA = {
    "type": "object",
    "description": "Where notifications go; secrets (URLs, secret, header values) are shown masked once saved, and "
    "sending a masked value back keeps the stored one.",
    "oneOf": [
        {
            "type": "object",
            "title": "webhook",
            "properties": {
                "type": {"const": "webhook"},
                "url": {"type": "string", "format": "uri"},
                "secret": {"type": ["string", "null"], "description": "Signs the body: X-Trapline-Signature: sha256=…"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["type", "url"],
        },
        *(
            {
                "type": "object",
                "title": kind,
                "properties": {"type": {"const": kind}, "url": {"type": "string", "format": "uri"}},
                "required": ["type", "url"],
            }
            for kind in ("slack", "discord", "teams")
        ),
        {
            "type": "object",
            "title": "email",
            "properties": {"type": {"const": "email"}, "to": {"type": "array", "items": {"type": "string"}}},
            "required": ["type", "to"],
        },
        {
            "type": "object",
            "title": "apprise",
            "properties": {
                "type": {"const": "apprise"},
                "url": {"type": "string", "description": "An apprise URL: ntfy://…, tgram://…, matrix://…"},
            },
            "required": ["type", "url"],
        },
    ],
}


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("Expected a JSON object.")
    return value


Destination = Annotated[dict[str, Any], BeforeValidator(_object), WithJsonSchema(_DESTINATION_SCHEMA)]


class TriggerIn(RequestModel):
    type: TriggerType = Field(description="What the alert notifies about.")
    threshold: int | None = Field(
        default=None, ge=1, le=10**9, description="issue_frequency / issue_users: more than this many events / users."
    )
    window_minutes: int | None = Field(
        default=None, ge=1, le=_WEEK_MINUTES, description="… in this many minutes (default 60)."
    )
    interval_minutes: int | None = Field(
        default=None,
        ge=1,
        le=_WEEK_MINUTES,
        description="Notify again at most this often while it stays above; omitted: once, until it falls back.",
    )


class ThrottleIn(RequestModel):
    max_messages: int = Field(ge=1, le=10_000)
    per_minutes: int = Field(ge=1, le=_WEEK_MINUTES)


class AlertCreate(RequestModel):
    name: str = Field(min_length=1, max_length=400)
    enabled: bool = True
    trigger: TriggerIn
    filters: AssignmentFilters | None = Field(
        default=None,
        description="PostHog property filters the triggering event (and its issue) must match; omit for every issue.",
    )
    destination: Destination
    throttle: ThrottleIn | None = Field(
        default=None, description="At most max_messages per per_minutes; the rest are summed up in one message."
    )


class AlertUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=400)
    enabled: bool | None = None
    trigger: TriggerIn | None = None
    filters: AssignmentFilters | None = None
    destination: Destination | None = None
    throttle: ThrottleIn | None = Field(default=None, description="null removes the throttle; omit to keep it.")


class TriggerOut(BaseModel):
    type: str
    threshold: int | None
    window_minutes: int | None
    interval_minutes: int | None


class ThrottleOut(BaseModel):
    max_messages: int
    per_minutes: int


class DeliveryOut(BaseModel):
    id: uuid.UUID
    alert_id: uuid.UUID
    issue_id: uuid.UUID | None
    kind: str = Field(description="The trigger that fired, or test, or summary (for throttled notifications).")
    event_uuid: uuid.UUID
    status: Literal["pending", "delivered", "failed", "throttled"]
    attempts: int
    response_code: int | None
    error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    summary_count: int


class AlertOut(BaseModel):
    id: uuid.UUID
    name: str
    enabled: bool
    trigger: TriggerOut
    filters: dict[str, Any]
    destination: dict[str, Any]
    throttle: ThrottleOut | None
    created_at: datetime
    updated_at: datetime
    last_delivery: DeliveryOut | None


class SpikeDetectionConfigOut(BaseModel):
    snooze_duration_minutes: int
    multiplier: int
    threshold: int
    enabled: bool = Field(description="Trapline's: whether the detector runs for this project.")


class SpikeDetectionConfigUpdate(RequestModel):
    snooze_duration_minutes: int | None = Field(
        default=None, ge=1, le=10**6, description="Wait this long before reporting the same issue spiking again."
    )
    multiplier: int | None = Field(
        default=None, ge=1, le=10**6, description="How many times its baseline the current count must exceed."
    )
    threshold: int | None = Field(
        default=None, ge=1, le=10**9, description="The fewest exceptions in a 5-minute window that can be a spike."
    )
    enabled: bool | None = None


class SpikeEventIssue(BaseModel):
    id: uuid.UUID
    name: str | None
    description: str | None


class SpikeEventOut(BaseModel):
    id: uuid.UUID
    issue: SpikeEventIssue
    detected_at: datetime
    computed_baseline: float
    current_bucket_value: int
