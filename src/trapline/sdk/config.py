"""The remote config posthog-js loads before it captures anything, built from a project's settings.

posthog-js 1.449 reads ``autocaptureExceptions`` at the top level to turn its exception
observer on, ``errorTracking.suppressionRules`` to drop matching exceptions before sending
them, ``errorTracking.captureExtensionExceptions``, ``supportedCompression`` and
``analytics.endpoint``. The autocapture controls go in ``errorTracking.autoCaptureControls``
in the camelCase shape posthog-js's (unreleased) consumers read; Trapline enforces them on
the server either way (``autocapture/controls.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["CaptureSettings", "client_safe_rule", "config_script", "remote_config"]

# The keys and operators posthog-js evaluates in the browser (PostHog's client-safe subset).
_CLIENT_KEYS = frozenset({"$exception_types", "$exception_values"})
_CLIENT_OPERATORS = frozenset({"exact", "is_not", "icontains", "not_icontains"})


@dataclass(frozen=True)
class CaptureSettings:
    """What remote config says about one project."""

    token: str
    autocapture_exceptions: bool
    suppression_rules: list[dict[str, Any]]
    controls: dict[str, Any] | None  # the web autocapture controls, or None when there are none


def client_safe_rule(filters: Any, sampling_rate: float) -> dict[str, Any] | None:
    """A suppression rule as posthog-js can evaluate it, or None if only the server can.

    PostHog's rule: sampling rate 1 (the browser cannot sample), an AND/OR group of plain
    filters on ``$exception_types``/``$exception_values`` with operators the browser knows and
    string values. Trapline also unwraps groups that hold a single group (the rule editor saves
    ``{"AND": [{"OR": [...]}]}``), which means the same thing.
    """
    if sampling_rate < 1 or not isinstance(filters, Mapping):
        return None
    group: Mapping[str, Any] = filters
    while (
        isinstance(group.get("values"), list)
        and len(group["values"]) == 1
        and isinstance(group["values"][0], Mapping)
        and group["values"][0].get("type") in ("AND", "OR")
    ):
        group = group["values"][0]
    values = group.get("values")
    if group.get("type") not in ("AND", "OR") or not isinstance(values, list) or not values:
        return None
    for value in values:
        if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
            return None
        if value.get("key") not in _CLIENT_KEYS or value.get("operator") not in _CLIENT_OPERATORS:
            return None
        target = value.get("value")
        if not (isinstance(target, str) or (isinstance(target, list) and all(isinstance(v, str) for v in target))):
            return None
    return {"type": group["type"], "values": [dict(value) for value in values]}


def _controls(controls: Mapping[str, Any]) -> dict[str, Any]:
    flag = controls.get("linked_feature_flag")
    return {
        "web": {
            "urlTriggers": list(controls.get("url_triggers") or []),
            "urlBlocklist": list(controls.get("url_blocklist") or []),
            "eventTriggers": list(controls.get("event_triggers") or []),
            "linkedFeatureFlag": (
                {"key": flag.get("key"), "variant": flag.get("variant")} if isinstance(flag, Mapping) else None
            ),
            "sampleRate": float(controls.get("sample_rate", 1)),
            "matchType": controls.get("match_type", "all"),
        }
    }


def remote_config(settings: CaptureSettings) -> dict[str, Any]:
    """The ``config`` object of ``/array/<token>/config`` (and of flags answers that carry it)."""
    error_tracking: dict[str, Any] = {
        "autocaptureExceptions": settings.autocapture_exceptions,
        "suppressionRules": settings.suppression_rules,
        "captureExtensionExceptions": False,
    }
    if settings.controls is not None:
        error_tracking["autoCaptureControls"] = _controls(settings.controls)
    return {
        "token": settings.token,
        "supportedCompression": ["gzip", "gzip-js"],
        # No feature flags here: posthog-js then skips its /flags request.
        "hasFeatureFlags": False,
        "analytics": {"endpoint": "/i/v0/e/"},
        "autocaptureExceptions": settings.autocapture_exceptions,
        "errorTracking": error_tracking,
        # Products Trapline does not have, turned off so posthog-js loads nothing for them.
        "sessionRecording": False,
        "surveys": False,
        "heatmaps": False,
        "capturePerformance": False,
        "autocapture_opt_out": True,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
    }


def config_script(token: str, config: Mapping[str, Any]) -> str:
    """``/array/<token>/config.js``: registers the config where posthog-js looks for it."""
    payload = orjson.dumps({"config": config, "siteApps": []}).decode()
    name = orjson.dumps(token).decode()
    return (
        "(function() {\n"
        "  window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n"
        f"  window._POSTHOG_REMOTE_CONFIG[{name}] = {payload};\n"
        "})();\n"
    )


def rules_for_browser(rules: Iterable[tuple[Any, float]]) -> list[dict[str, Any]]:
    return [rule for filters, rate in rules if (rule := client_safe_rule(filters, rate)) is not None]
