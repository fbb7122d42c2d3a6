"""What an alert sends: the payload built when the change happens, and each destination's
message rendered from it (pure functions, no I/O).

The payload is PostHog's webhook body for its error tracking internal events: ``event`` (the
internal event: ``event``, ``uuid``, ``distinct_id`` = the issue id, ``timestamp``,
``properties``, and ``url``, here the issue's page in Trapline), ``person`` and ``project``.
Receivers written for PostHog's alerts read it unchanged. Trapline adds ``issue`` (the
issue's facts when it fired: counts, first and last seen, its link) and ``alert`` (which alert
sent it), which PostHog's receivers ignore.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

__all__ = [
    "EVENT_NAMES",
    "TRIGGERS",
    "AlertRef",
    "IssueFacts",
    "ProjectRef",
    "Rendered",
    "build_payload",
    "describe",
    "discord_body",
    "email_parts",
    "issue_url",
    "slack_body",
    "summary_payload",
    "teams_body",
]

TRIGGERS = ("issue_created", "issue_reopened", "issue_spiking", "issue_frequency", "issue_users")
EVENT_NAMES = {
    "issue_created": "$error_tracking_issue_created",
    "issue_reopened": "$error_tracking_issue_reopened",
    "issue_spiking": "$error_tracking_issue_spiking",
    # Beyond PostHog's three lifecycle events, named after them.
    "issue_frequency": "$error_tracking_issue_frequency",
    "issue_users": "$error_tracking_issue_users",
    "summary": "$trapline_alert_summary",
}
# PostHog drops exception_props when the internal event would not fit its bus; webhook
# receivers (and our own delivery log) are better off with a bound too.
_MAX_PAYLOAD_BYTES = 256 * 1024
_COLORS = {  # Discord embed colours (decimal RGB) and Teams accents, by trigger
    "issue_created": 0xE5484D,
    "issue_reopened": 0xF76B15,
    "issue_spiking": 0xD6409F,
    "issue_frequency": 0xF76B15,
    "issue_users": 0xF76B15,
    "summary": 0x8D8D8D,
}


@dataclass(frozen=True)
class ProjectRef:
    id: int
    name: str
    url: str


@dataclass(frozen=True)
class AlertRef:
    id: UUID
    name: str
    trigger: str


@dataclass(frozen=True)
class IssueFacts:
    """The issue as it stood when the alert fired."""

    id: UUID
    name: str | None
    description: str | None
    status: str
    fingerprint: str | None
    occurrences: int
    first_seen: datetime | None
    last_seen: datetime | None
    # PostHog's form: a JSON string {"type": "user", "id": 42} / {"type": "role", "id": "…"}.
    assignee: str | None = None


def issue_url(base_url: str, project_id: int, issue_id: UUID) -> str:
    return f"{base_url}/project/{project_id}/error_tracking/{issue_id}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_payload(
    trigger: str,
    *,
    event_uuid: UUID,
    now: datetime,
    project: ProjectRef,
    issue: IssueFacts,
    alert: AlertRef,
    issue_link: str,
    exception_timestamp: datetime | None = None,
    exception_props: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The webhook body for one alert of one change (see the module's docstring)."""
    properties: dict[str, Any] = {"name": issue.name, "description": issue.description}
    if trigger != "issue_spiking":
        properties.update(status=issue.status, fingerprint=issue.fingerprint)
    if trigger in ("issue_created", "issue_reopened"):
        properties["exception_timestamp"] = _iso(exception_timestamp)
        if issue.assignee is not None:
            properties["assignee"] = issue.assignee
        properties["exception_props"] = dict(exception_props or {})
    properties.update(extra or {})
    payload: dict[str, Any] = {
        "event": {
            "uuid": str(event_uuid),
            "event": EVENT_NAMES[trigger],
            "distinct_id": str(issue.id),
            "timestamp": now.isoformat(),
            "properties": properties,
            "elements_chain": "",
            "url": issue_link,
        },
        "person": None,
        "project": {"id": project.id, "name": project.name, "url": project.url},
        "issue": {
            "id": str(issue.id),
            "name": issue.name,
            "description": issue.description,
            "status": issue.status,
            "url": issue_link,
            "occurrences": issue.occurrences,
            "first_seen": _iso(issue.first_seen),
            "last_seen": _iso(issue.last_seen),
        },
        "alert": {"id": str(alert.id), "name": alert.name, "trigger": alert.trigger},
    }
    if "exception_props" in properties and len(orjson.dumps(payload, default=str)) > _MAX_PAYLOAD_BYTES:
        del properties["exception_props"]
        properties["message_was_too_large"] = True
    return payload


def summary_payload(
    *,
    event_uuid: UUID,
    now: datetime,
    project: ProjectRef,
    alert: AlertRef,
    count: int,
    minutes: int,
    issues: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The one message that stands for the notifications a throttled alert held back."""
    return {
        "event": {
            "uuid": str(event_uuid),
            "event": EVENT_NAMES["summary"],
            "distinct_id": str(alert.id),
            "timestamp": now.isoformat(),
            "properties": {"count": count, "minutes": minutes, "issues": [dict(issue) for issue in issues]},
            "elements_chain": "",
            "url": project.url,
        },
        "person": None,
        "project": {"id": project.id, "name": project.name, "url": project.url},
        "alert": {"id": str(alert.id), "name": alert.name, "trigger": alert.trigger},
    }


# --- in words ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """A notification in words, which every destination lays out its own way."""

    kind: str
    title: str
    description: str | None
    link: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    more: list[tuple[str, str]] = field(default_factory=list)  # a summary's issues: (name, url)

    @property
    def text(self) -> str:
        lines = [self.title]
        if self.description:
            lines.append(self.description)
        lines.extend(f"{name}: {value}" for name, value in self.facts)
        lines.extend(f"- {name} {url}" for name, url in self.more)
        lines.append(self.link)
        return "\n".join(lines)


_MAX_DESCRIPTION = 1000


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: Any) -> str:
    if not isinstance(value, str):
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def describe(payload: Mapping[str, Any]) -> Rendered:
    """The payload's notification in words: what happened, to which issue, its counts, a link."""
    event = payload.get("event") or {}
    properties = event.get("properties") or {}
    alert = payload.get("alert") or {}
    name = str(properties.get("name") or "Untitled issue")
    link = str(event.get("url") or "")
    kind = next((k for k, v in EVENT_NAMES.items() if v == event.get("event")), "issue_created")
    is_test = bool(properties.get("test"))
    if kind == "summary":
        count = int(properties.get("count") or 0)
        title = (
            f"…and {count} more notification{'s' if count != 1 else ''} from the alert "
            f"“{alert.get('name')}” in the last {properties.get('minutes')} minutes"
        )
        more = [
            (str(i.get("name") or "Untitled issue"), str(i.get("url") or "")) for i in properties.get("issues") or []
        ]
        return Rendered(kind, title, None, link, [], more)
    issue = payload.get("issue") or {}
    headline = {
        "issue_created": f"New issue: {name}",
        "issue_reopened": f"Issue reopened: {name}",
        "issue_spiking": f"Issue spiking: {name}",
        "issue_frequency": f"{name}: {properties.get('count')} events in the last {properties.get('window_minutes')} "
        f"minutes (more than {properties.get('threshold')})",
        "issue_users": f"{name}: {properties.get('users')} users affected in the last "
        f"{properties.get('window_minutes')} minutes (more than {properties.get('threshold')})",
    }[kind]
    if is_test:
        headline = f"Test notification from the alert “{alert.get('name')}”: {headline}"
    facts: list[tuple[str, str]] = []
    if kind == "issue_spiking":
        baseline = properties.get("computed_baseline")
        facts.append(("Last 5 minutes", f"{properties.get('current_bucket_value')} events"))
        if isinstance(baseline, int | float):
            facts.append(("Usual rate", f"{baseline:.1f} events per 5 minutes"))
    facts.append(("Events (all time)", str(issue.get("occurrences", "—"))))
    facts.append(("First seen", _when(issue.get("first_seen"))))
    facts.append(("Last seen", _when(issue.get("last_seen"))))
    if payload.get("project"):
        facts.append(("Project", str(payload["project"].get("name"))))
    return Rendered(kind, headline, _cut(properties.get("description"), _MAX_DESCRIPTION), link, facts)


# --- chat services: each one's documented incoming-webhook body --------------------------------


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: Rendered) -> dict[str, Any]:
    """A Slack incoming webhook message: ``text`` (the notification and fallback) and blocks."""
    title = _slack_escape(message.title)
    heading = f"*<{message.link}|{title}>*" if message.link else f"*{title}*"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _cut(heading, 3000)}}]
    if message.description:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(f"```{_slack_escape(message.description)}```", 3000)},
            }
        )
    if message.facts:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": _slack_escape(f"{name}: {value}")} for name, value in message.facts[:10]
                ],
            }
        )
    if message.more:
        listing = "\n".join(f"• <{url}|{_slack_escape(name)}>" for name, url in message.more)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(listing, 3000)}})
    return {"text": _cut(message.title, 3000), "blocks": blocks}


def discord_body(message: Rendered) -> dict[str, Any]:
    """A Discord webhook message: one embed; mentions in exception messages stay inert."""
    embed: dict[str, Any] = {
        "title": _cut(message.title, 256),
        "color": _COLORS.get(message.kind, 0),
        "fields": [{"name": name, "value": _cut(value, 1024), "inline": True} for name, value in message.facts[:25]],
    }
    if message.link:
        embed["url"] = message.link
    description = message.description
    if message.more:
        description = "\n".join(f"• [{name}]({url})" for name, url in message.more)
    if description:
        embed["description"] = _cut(description, 4096)
    return {"content": _cut(message.title, 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}


def teams_body(message: Rendered) -> dict[str, Any]:
    """A Microsoft Teams incoming webhook (Workflows) message: an Adaptive Card attachment."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    if message.description:
        body.append({"type": "TextBlock", "text": message.description, "wrap": True, "fontType": "Monospace"})
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in message.facts]})
    for name, url in message.more:
        body.append({"type": "TextBlock", "text": f"[{name}]({url})", "wrap": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Trapline", "url": message.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def email_parts(message: Rendered) -> tuple[str, str, str]:
    """Subject, plain text and HTML of an alert email."""
    subject = _cut(f"[Trapline] {message.title}", 200) or ""
    esc = html.escape
    rows = "".join(
        f"<tr><th align='left' style='padding-right:1em'>{esc(name)}</th><td>{esc(value)}</td></tr>"
        for name, value in message.facts
    )
    parts = [f"<h2 style='font-size:16px'>{esc(message.title)}</h2>"]
    if message.description:
        parts.append(f"<pre style='white-space:pre-wrap'>{esc(message.description)}</pre>")
    if rows:
        parts.append(f"<table>{rows}</table>")
    if message.more:
        parts.append("<ul>" + "".join(f"<li><a href='{esc(u)}'>{esc(n)}</a></li>" for n, u in message.more) + "</ul>")
    if message.link:
        parts.append(f"<p><a href='{esc(message.link)}'>Open in Trapline</a></p>")
    return subject, message.text + "\n", "<html><body>" + "".join(parts) + "</body></html>"
