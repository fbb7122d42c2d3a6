"""Alerts in words, for the alerts page and the issue page (pure): triggers, throttles, what a
delivery was, the form's "Name: value" header lines, and the schema's and the service's
complaints named after the form's fields rather than JSON paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trapline.alerts.models import AlertDelivery
from trapline.alerts.service import THRESHOLD_TRIGGERS
from trapline.errors import InvalidInput
from trapline.ui import filter_form
from trapline.ui.filter_form import FilterForm

__all__ = [
    "DESTINATION_LABELS",
    "TRIGGER_CHOICES",
    "LogRow",
    "header_lines",
    "kind_words",
    "label",
    "log_row",
    "schema_problems",
    "service_problem",
    "throttle_words",
    "trigger_words",
]

TRIGGER_CHOICES: tuple[tuple[str, str], ...] = (
    ("issue_created", "New issue"),
    ("issue_reopened", "Reopened issue"),
    ("issue_spiking", "Spiking issue (found by the spike detector)"),
    ("issue_frequency", "More than N events in a window"),
    ("issue_users", "More than N users in a window"),
)
# A trigger, or what a delivery was: the trigger that fired, or a test.
_KIND_WORDS = {
    "issue_created": "New issue",
    "issue_reopened": "Reopened issue",
    "issue_spiking": "Spiking issue",
    "issue_frequency": "Too many events",
    "issue_users": "Too many users",
    "test": "Test",
}
DESTINATION_LABELS: dict[str, str] = {
    "webhook": "Webhook",
    "slack": "Slack",
    "discord": "Discord",
    "teams": "Microsoft Teams",
    "email": "Email",
    "apprise": "Apprise",
}
# Where a problem is, by the service's ``attr`` or the schema's location joined with "__".
_LABELS = {
    "name": "Name",
    "trigger": "Trigger",
    "trigger__type": "Trigger",
    "trigger__threshold": "Threshold",
    "trigger__window_minutes": "Window",
    "trigger__interval_minutes": "Repeat every",
    "destination": "Destination",
    "destination__type": "Destination",
    "destination__url": "URL",
    "destination__secret": "Secret",
    "destination__headers": "Headers",
    "destination__to": "Recipients",
    "throttle": "Throttle",
    "throttle__max_messages": "Throttle (messages)",
    "throttle__per_minutes": "Throttle (minutes)",
    "threshold": "Threshold",
    "multiplier": "Multiplier",
    "snooze_duration_minutes": "Snooze",
}


def _minutes(count: int) -> str:
    return f"{count} minute{'' if count == 1 else 's'}"


def trigger_words(trigger: str, threshold: int | None, window: int | None, interval: int | None) -> str:
    """ "New issue", "More than 100 events in 15 minutes, repeats every 60 minutes"."""
    if trigger not in THRESHOLD_TRIGGERS:
        return _KIND_WORDS.get(trigger, trigger)
    noun = ("event" if trigger == "issue_frequency" else "user") + ("" if threshold == 1 else "s")
    words = f"More than {threshold} {noun} in {_minutes(window or 60)}"
    return f"{words}, repeats every {_minutes(interval)}" if interval else words


def throttle_words(maximum: int | None, minutes: int | None) -> str | None:
    if maximum is None or minutes is None:
        return None
    return f"at most {maximum} message{'' if maximum == 1 else 's'} per {_minutes(minutes)}"


def kind_words(kind: str, summary_count: int = 0) -> str:
    """What a delivery was: the trigger that fired, a test, or a summary of throttled ones."""
    if kind == "summary":
        return f"Summary, stands for {summary_count}"
    return _KIND_WORDS.get(kind, kind)


def header_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """ "Name: value" lines as headers, and the lines that are not that, in words."""
    headers: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            problems.append(f"Headers: line {number} is not “Name: value”.")
            continue
        headers[name.strip()] = value.strip()
    return headers, problems


def label(where: str) -> str:
    return _LABELS.get(where, where or "The form")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!", ")")) else text + "."


def schema_problems(exc: ValidationError, form: FilterForm | None) -> list[str]:
    """The schema's complaints in words, naming fields (and rows) rather than JSON paths."""
    found: list[str] = []
    for error in exc.errors():
        where = "__".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "is not valid"))
        if where == "filters":
            text = filter_form.humanize_filter_error(message, form)
        else:
            text = f"{label(where)}: {_schema_message(error['type'], message, error.get('ctx') or {})}"
        text = _sentence(text)
        if text not in found:
            found.append(text)
    return found


def _schema_message(kind: str, message: str, ctx: dict[str, Any]) -> str:
    # pydantic's own sentences name types ("a valid integer"); a form's reader typed text.
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "enter a whole number"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "string_too_short":
        return "this field may not be blank"
    if kind == "literal_error":
        return "choose one of the listed choices"
    return message


def service_problem(exc: InvalidInput, form: FilterForm | None) -> str:
    if exc.attr == "filters":
        return filter_form.humanize_filter_error(exc.detail, form)
    return f"{label(exc.attr)}: {exc.detail}" if exc.attr else exc.detail


@dataclass(frozen=True)
class LogRow:
    delivery: AlertDelivery
    kind: str
    issue_name: str | None


def _issue_name(payload: Any) -> str | None:
    # The issue's name as it was when the message was built: the log outlives the issue.
    issue = payload.get("issue") if isinstance(payload, dict) else None
    name = issue.get("name") if isinstance(issue, dict) else None
    return name if isinstance(name, str) and name else None


def log_row(delivery: AlertDelivery) -> LogRow:
    return LogRow(delivery, kind_words(delivery.kind, delivery.summary_count), _issue_name(delivery.payload))
