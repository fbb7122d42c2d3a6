"""Payloads and each destination's message, from the payload alone (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from trapline.alerts.messages import (
    AlertRef,
    IssueFacts,
    ProjectRef,
    build_payload,
    describe,
    discord_body,
    email_parts,
    slack_body,
    teams_body,
)
from trapline.alerts.senders import retry_after_seconds, sanitize

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ISSUE = IssueFacts(
    id=uuid.UUID(int=7), name="KeyError", description="'sku' <@everyone> & <script>", status="active",
    fingerprint="fp", occurrences=42, first_seen=NOW, last_seen=NOW,
)  # fmt: skip
PROJECT = ProjectRef(1, "Shop", "https://t.example/project/1/error_tracking")
LINK = "https://t.example/project/1/error_tracking/7"


def payload(trigger: str = "issue_created", **kwargs: object) -> dict[str, object]:
    return build_payload(
        trigger, event_uuid=uuid.UUID(int=9), now=NOW, project=PROJECT, issue=ISSUE,
        alert=AlertRef(uuid.UUID(int=3), "oncall", trigger), issue_link=LINK, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_created_has_posthogs_internal_event_properties():
    body = payload(exception_timestamp=NOW, exception_props={"$lib": "web"})
    event = body["event"]
    assert isinstance(event, dict)
    assert event["distinct_id"] == str(ISSUE.id)
    assert set(event["properties"]) == {"name", "description", "status", "fingerprint", "exception_timestamp",
                                        "exception_props"}  # fmt: skip


def test_spiking_carries_baseline_and_bucket_value_only():
    body = payload("issue_spiking", extra={"computed_baseline": 5.5, "current_bucket_value": 600})
    event = body["event"]
    assert isinstance(event, dict)
    assert set(event["properties"]) == {"name", "description", "computed_baseline", "current_bucket_value"}
    assert describe(body).facts[:2] == [("Last 5 minutes", "600 events"), ("Usual rate", "5.5 events per 5 minutes")]


def test_too_large_exception_props_are_dropped_as_posthog_does():
    body = payload(exception_props={"blob": "x" * 300_000})
    event = body["event"]
    assert isinstance(event, dict)
    assert "exception_props" not in event["properties"]
    assert event["properties"]["message_was_too_large"] is True


def test_slack_escapes_control_characters_and_links_the_issue():
    body = slack_body(describe(payload()))
    assert body["blocks"][0]["text"]["text"] == f"*<{LINK}|New issue: KeyError>*"
    assert body["blocks"][1]["text"]["text"] == "```'sku' &lt;@everyone&gt; &amp; &lt;script&gt;```"


def test_discord_never_pings_anyone():
    body = discord_body(describe(payload()))
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"][0]["url"] == LINK


def test_teams_is_an_adaptive_card_with_a_link():
    card = teams_body(describe(payload()))["attachments"][0]["content"]
    assert card["actions"][0]["url"] == LINK
    assert {"title": "Events (all time)", "value": "42"} in card["body"][-1]["facts"]


def test_email_html_is_escaped():
    subject, text, html = email_parts(describe(payload()))
    assert subject == "[Trapline] New issue: KeyError"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert LINK in text


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now


def test_secrets_are_cut_out_of_errors():
    url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    text = f"failed to post to {url}: and XXXXsecretXXXX again"
    assert "XXXXsecretXXXX" not in sanitize(text, [url])
