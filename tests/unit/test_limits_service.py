"""The pure parts of the settings use cases: checking changes, the SDK table, warnings, and
the wire schema's reading of integers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from trapline.api.schemas.error_tracking_settings import parse_integer
from trapline.errors import InvalidInput
from trapline.limits.service import (
    BOUNDS,
    FIELDS,
    NODE_AUTOCAPTURE_WARNING,
    ObservedSdk,
    published_autocapture,
    sdk_configuration,
    setup_warnings,
    validate_changes,
)
from trapline.sdk.config import CaptureSettings

MOMENT = datetime(2026, 12, 1, tzinfo=UTC)


def test_every_setting_has_bounds():
    assert set(FIELDS) == set(BOUNDS)
    assert FIELDS[:4] == (
        "project_rate_limit_value",
        "project_rate_limit_bucket_size_minutes",
        "per_issue_rate_limit_value",
        "per_issue_rate_limit_bucket_size_minutes",
    )


def test_valid_changes_pass_and_none_clears():
    changes = {"project_rate_limit_value": 1, "retention_days": 36_500, "per_issue_rate_limit_value": None}
    assert validate_changes(changes) == changes
    assert validate_changes({}) == {}


@pytest.mark.parametrize(
    ("changes", "code", "detail", "attr"),
    [
        ({"project_rate_limit_value": 0}, "min_value", "Ensure this value is greater than or equal to 1.",
         "project_rate_limit_value"),
        ({"retention_days": 36_501}, "max_value", "Ensure this value is less than or equal to 36500.",
         "retention_days"),
        ({"max_events_per_issue": 2**31}, "max_value", "Ensure this value is less than or equal to 2147483647.",
         "max_events_per_issue"),
        ({"per_issue_rate_limit_value": True}, "invalid_input", "A valid integer is required.",
         "per_issue_rate_limit_value"),
        ({"per_issue_rate_limit_value": "5"}, "invalid_input", "A valid integer is required.",
         "per_issue_rate_limit_value"),
        ({"per_issue_rate_limit_value": 5.0}, "invalid_input", "A valid integer is required.",
         "per_issue_rate_limit_value"),
        ({"ingestion_enabled": 1}, "invalid_input", "Unknown setting 'ingestion_enabled'.", "ingestion_enabled"),
    ],
)  # fmt: skip
def test_bad_changes_are_refused_in_drfs_words(changes: dict[str, Any], code: str, detail: str, attr: str):
    with pytest.raises(InvalidInput) as caught:
        validate_changes(changes)
    assert (caught.value.code, caught.value.detail, caught.value.attr) == (code, detail, attr)


def test_the_first_bad_change_is_reported():
    with pytest.raises(InvalidInput) as caught:
        validate_changes({"retention_days": 0, "project_rate_limit_value": 0})
    assert caught.value.attr == "retention_days"


def test_where_each_sdk_turns_autocapture_on():
    assert sdk_configuration("web") == ("project_setting", None)
    assert sdk_configuration("posthog-node") == ("local", "enableExceptionAutocapture")
    assert sdk_configuration("posthog-python") == ("unknown", None)
    assert sdk_configuration("sentry.javascript.browser") == ("unknown", None)


def _sdk(library: str) -> ObservedSdk:
    return ObservedSdk(library, 3, MOMENT, None, *sdk_configuration(library))


def test_node_without_autocaptured_exceptions_is_warned_about():
    [warning] = setup_warnings([_sdk("web"), _sdk("posthog-node")], node_autocaptured=False)
    assert warning.code == NODE_AUTOCAPTURE_WARNING
    assert "enableExceptionAutocapture: true" in warning.message
    assert setup_warnings([_sdk("posthog-node")], node_autocaptured=True) == []
    assert setup_warnings([_sdk("web"), _sdk("posthog-python")], node_autocaptured=False) == []
    assert setup_warnings([], node_autocaptured=False) == []


@pytest.mark.parametrize("enabled", [True, False])
def test_published_autocapture_is_what_remote_config_says(enabled: bool):
    served = CaptureSettings(token="phc_x", autocapture_exceptions=enabled, suppression_rules=[], controls=None)
    assert published_autocapture(served) is enabled
    assert published_autocapture(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (5, 5), (5.0, 5), ("5", 5), ("5.000", 5), (" 5 ", 5), (-3, -3), (10**12, 10**12)],
)
def test_integers_are_read_as_drf_reads_them(value: Any, expected: int | None):
    assert parse_integer(value) == expected


@pytest.mark.parametrize("value", [True, False, 1.5, "1.5", "abc", "", "1e3", [1], {"a": 1}, float("nan")])
def test_what_is_not_an_integer(value: Any):
    with pytest.raises(PydanticCustomError) as caught:
        parse_integer(value)
    assert caught.value.type == "invalid_input"
    assert caught.value.message() == "A valid integer is required."


def test_very_long_strings_are_refused_before_parsing():
    with pytest.raises(PydanticCustomError) as caught:
        parse_integer("1" * 1001)
    assert caught.value.type == "max_string_length"
