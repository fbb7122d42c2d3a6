"""Why events were not stored, in words (pure): the autocapture and usage pages show them."""

from __future__ import annotations

from trapline.autocapture.controls import BLOCKED_URL, NOT_SAMPLED, NOT_TRIGGERED
from trapline.pipeline.linking import ISSUE_SUPPRESSED
from trapline.pipeline.rate_limits import RATE_LIMITED_ISSUE, RATE_LIMITED_PROJECT
from trapline.pipeline.suppression import SUPPRESSED

__all__ = ["dropped_reason"]

_DROPPED_WORDS = {
    SUPPRESSED: "dropped by a suppression rule",
    ISSUE_SUPPRESSED: "of a suppressed issue",
    "invalid_exception": "with an exception list that could not be read",
    BLOCKED_URL: "autocaptured on a blocklisted URL",
    NOT_TRIGGERED: "autocaptured in a session no trigger started",
    NOT_SAMPLED: "autocaptured in a session outside the sample rate",
    RATE_LIMITED_PROJECT: "over the project's rate limit",
    RATE_LIMITED_ISSUE: "over their issue's rate limit",
}


def dropped_reason(reason: str) -> str:
    if reason in _DROPPED_WORDS:
        return _DROPPED_WORDS[reason]
    if reason.startswith("sentry_"):
        return f"Sentry {reason.removeprefix('sentry_').replace('_', ' ')} items (only events are kept)"
    return reason.replace("_", " ")
