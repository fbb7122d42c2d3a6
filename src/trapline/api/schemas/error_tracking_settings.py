"""Wire schemas of a project's error tracking settings and its setup status."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from trapline.api.schemas.common import RequestModel
from trapline.limits.service import BOUNDS

__all__ = ["ErrorTrackingSettingsOut", "ErrorTrackingSettingsUpdate", "SetupStatusOut", "parse_integer"]

# DRF's IntegerField strips a fraction of zeros before int(), so 1.0 and "7.00" are integers.
_ZERO_FRACTION = re.compile(r"\.0*\s*$")
_MAX_STRING_LENGTH = 1000


def parse_integer(value: Any) -> Any:
    """A value as Django REST framework's ``IntegerField(allow_null=True)`` reads it: null
    stays null, ``1``, ``1.0``, ``"1"`` are 1, and ``true``, ``1.5``, ``"abc"`` are not
    integers. The range is checked afterwards (``Field(ge=…, le=…)``), as DRF's validators do."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) > _MAX_STRING_LENGTH:  # DRF's guard, before parsing
        raise PydanticCustomError("max_string_length", "String value too large.")
    # DRF converts through str(), which is why a boolean ("True") is refused.
    try:
        return int(_ZERO_FRACTION.sub("", str(value)))
    except (ValueError, TypeError):
        raise PydanticCustomError("invalid_input", "A valid integer is required.") from None


def _setting(name: str, description: str) -> Any:
    lowest, highest = BOUNDS[name]
    return Field(default=None, ge=lowest, le=highest, description=description)


Setting = Annotated[int | None, BeforeValidator(parse_integer)]

_PROJECT_VALUE = "Most exception events stored per bucket for the whole project; null removes the limit."
_PROJECT_BUCKET = "Bucket over which the project's limit applies, in minutes (60 when null)."
_ISSUE_VALUE = "Most exception events stored per bucket for each issue; null removes the limit."
_ISSUE_BUCKET = "Bucket over which the per-issue limit applies, in minutes (60 when null)."
_RETENTION = "Trapline's: events older than this many days are deleted; null means the installation's default."
_MAX_EVENTS = "Trapline's: at most this many events are kept per issue (the newest); null means no cap."


class ErrorTrackingSettingsOut(BaseModel):
    project_rate_limit_value: int | None = Field(description=_PROJECT_VALUE)
    project_rate_limit_bucket_size_minutes: int | None = Field(description=_PROJECT_BUCKET)
    per_issue_rate_limit_value: int | None = Field(description=_ISSUE_VALUE)
    per_issue_rate_limit_bucket_size_minutes: int | None = Field(description=_ISSUE_BUCKET)
    retention_days: int | None = Field(description=_RETENTION)
    max_events_per_issue: int | None = Field(description=_MAX_EVENTS)


class ErrorTrackingSettingsUpdate(RequestModel):
    """A partial update: fields left out keep their value, null clears one."""

    project_rate_limit_value: Setting = _setting("project_rate_limit_value", _PROJECT_VALUE)
    project_rate_limit_bucket_size_minutes: Setting = _setting(
        "project_rate_limit_bucket_size_minutes", _PROJECT_BUCKET
    )
    per_issue_rate_limit_value: Setting = _setting("per_issue_rate_limit_value", _ISSUE_VALUE)
    per_issue_rate_limit_bucket_size_minutes: Setting = _setting(
        "per_issue_rate_limit_bucket_size_minutes", _ISSUE_BUCKET
    )
    retention_days: Setting = _setting("retention_days", _RETENTION)
    max_events_per_issue: Setting = _setting("max_events_per_issue", _MAX_EVENTS)


class ObservedSdkOut(BaseModel):
    library: str = Field(description="The SDK ($lib) seen on recent exception events.")
    event_count: int = Field(ge=0, description="Its exception events in the recent period.")
    latest_version: str | None = Field(description="$lib_version of its newest event.")
    last_seen_at: datetime
    autocapture_configuration: Literal["project_setting", "local", "unknown"] = Field(
        description="Where its exception autocapture is turned on."
    )
    local_option: str | None = Field(description="The SDK option that turns it on, when it is configured locally.")


class SetupWarningOut(BaseModel):
    warning_code: Literal["node_autocapture_requires_local_configuration"] = Field(
        description="Stable identifier of the warning."
    )
    message: str


class SetupStatusOut(BaseModel):
    project_autocapture_enabled: bool = Field(description="The project's exception autocapture setting.")
    remote_config_autocapture_enabled: bool | None = Field(
        description="What remote config tells browsers now (it may lag a change by seconds); null without one."
    )
    has_issues: bool
    recent_data_available: bool
    recent_period_days: int = Field(ge=1)
    recent_event_count: int | None = Field(
        ge=0, description="Exception events stored in the period (Trapline stores no other events)."
    )
    recent_exception_count: int | None = Field(ge=0)
    last_event_at: datetime | None
    last_exception_at: datetime | None
    observed_sdks: list[ObservedSdkOut]
    warnings: list[SetupWarningOut]
