"""Sending what the outbox holds: each destination's body, retries, failures, the address guard.

Notifications are made the real way (capture, a worker) and sent by a ``Dispatcher`` to local
receivers; the clock is moved to let retries come due instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.alerts.conftest import Clock, create_alert, dispatcher, send, webhook
from tests.alerts.receiver import Answer, receiving
from tests.capture import exception, exception_event
from tests.conftest import open_settings
from tests.factories import Tenant
from tests.server import free_port
from trapline.alerts import outbox
from trapline.alerts.models import AlertDelivery
from trapline.db.engine import Database
from trapline.settings import Settings

pytestmark = pytest.mark.usefixtures("local_alerts")


def deliveries(database: Database) -> list[AlertDelivery]:
    with database.session(write=False) as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.created_at)))


def only(database: Database) -> AlertDelivery:
    [row] = deliveries(database)
    return row


def new_issue(client: TestClient, tenant: Tenant, database: Database, clock: Clock, type_: str = "KeyError") -> None:
    send(client, tenant, database, clock, exception_event(exception(type_, "'sku'")))


# --- webhooks ---------------------------------------------------------------------------------------


def test_a_webhook_gets_posthogs_body_signed_with_its_idempotency_key(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving() as receiver:
        create_alert(
            client, tenant,
            destination=webhook(receiver.url + "/hooks/trapline", secret="s3cret", headers={"X-Team": "payments"}),
        )  # fmt: skip
        new_issue(client, tenant, database, clock)
        assert dispatcher(database, local_alerts, clock).drain() == 1
        [request] = receiver.received()
    row = only(database)
    assert (row.status, row.response_code, row.attempts, row.error) == ("delivered", 200, 1, None)
    assert request.path == "/hooks/trapline"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == str(row.id)
    assert request.headers["x-team"] == "payments"
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-trapline-signature"] == f"sha256={expected}"
    body = request.json()
    assert body == json.loads(json.dumps(row.payload))
    assert body["event"]["event"] == "$error_tracking_issue_created"
    assert body["event"]["properties"]["name"] == "KeyError"


def test_a_receiver_that_fails_twice_gets_the_message_once_after_retries(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(500, b"down"), Answer(502), Answer(200)) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        sender = dispatcher(database, local_alerts, clock)
        sender.drain()
        row = only(database)
        assert (row.status, row.attempts, row.response_code) == ("pending", 1, 500)
        assert row.error == "HTTP 500: down"
        assert row.next_attempt_at == clock.now + timedelta(seconds=5)
        assert sender.drain() == 0  # not due yet
        clock.advance(seconds=5)
        sender.drain()
        assert only(database).next_attempt_at == clock.now + timedelta(seconds=30)
        clock.advance(seconds=30)
        sender.drain()
        requests = receiver.received()
    row = only(database)
    assert (row.status, row.attempts, row.response_code, row.error) == ("delivered", 3, 200, None)
    assert len(requests) == 3
    assert len({r.headers["idempotency-key"] for r in requests}) == 1  # the same message, three tries


def test_a_4xx_is_a_failure_that_is_not_retried(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(400, b'{"error": "no such channel"}')) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        dispatcher(database, local_alerts, clock).drain()
        clock.advance(hours=1)
        assert dispatcher(database, local_alerts, clock).drain() == 0
        assert len(receiver.received()) == 1
    row = only(database)
    assert (row.status, row.response_code) == ("failed", 400)
    assert row.error == 'HTTP 400: {"error": "no such channel"}'


def test_an_answer_without_a_body_is_logged_by_its_status_alone(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(404, b"")) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        dispatcher(database, local_alerts, clock).drain()
    assert (only(database).status, only(database).error) == ("failed", "HTTP 404")


def test_429_is_retried_after_the_receivers_retry_after(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(429, headers={"Retry-After": "120"}), Answer(204)) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        sender = dispatcher(database, local_alerts, clock)
        sender.drain()
        assert only(database).next_attempt_at == clock.now + timedelta(seconds=120)
        clock.advance(seconds=119)
        assert sender.drain() == 0
        clock.advance(seconds=1)
        sender.drain()
        assert len(receiver.received()) == 2
    assert (only(database).status, only(database).response_code) == ("delivered", 204)


def test_retries_end_after_the_retry_hours(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(503)) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        sender = dispatcher(database, local_alerts, clock)
        attempts = 0
        while only(database).status == "pending":
            clock.now = only(database).next_attempt_at or clock.now
            sender.drain()
            attempts += 1
            assert attempts < 40
    row = only(database)
    assert row.status == "failed"
    assert row.error is not None and row.error.startswith("gave up retrying: HTTP 503")
    assert row.last_attempt_at is not None and row.last_attempt_at - row.created_at <= timedelta(hours=24)
    assert row.last_attempt_at - row.created_at > timedelta(hours=20)  # retried for hours


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI
):
    settings = open_settings(app, alerts_timeout_seconds=0.5)
    with receiving(Answer(200, delay=3)) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        dispatcher(database, settings, clock).drain()
    row = only(database)
    assert (row.status, row.error) == ("pending", "no answer within 0.5 seconds")


def test_a_huge_answer_is_read_only_up_to_the_cap(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving(Answer(400, b"x" * (20 * 1024 * 1024))) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        dispatcher(database, local_alerts, clock).drain()
    row = only(database)
    assert row.status == "failed" and row.error is not None and len(row.error) < 400


def test_a_crashed_sender_leaves_the_message_to_another_with_the_same_key(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving() as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        # A sender leased it and died before sending (or mid-send): its lease runs out.
        [leased] = outbox.claim(database, "dead-sender", 10, timedelta(minutes=1), clock.now)
        assert dispatcher(database, local_alerts, clock).drain() == 0
        clock.advance(minutes=1, seconds=1)
        assert dispatcher(database, local_alerts, clock).drain() == 1
        [request] = receiver.received()
    assert request.headers["idempotency-key"] == str(leased.id)
    assert only(database).status == "delivered"


def test_a_notification_of_an_alert_disabled_since_is_not_sent(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving() as receiver:
        alert = create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        path = f"/api/projects/{tenant.project_id}/error_tracking/alerts/{alert['id']}/"
        assert client.patch(path, json={"enabled": False}, headers=tenant.headers()).status_code == 200
        dispatcher(database, local_alerts, clock).drain()
        assert receiver.received() == []
    assert only(database).status == "failed"
    assert only(database).error == "the alert was disabled before this notification was sent"


# --- the address guard ------------------------------------------------------------------------------


def test_a_private_address_is_refused_when_sending_too(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI
):
    with receiving() as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))  # saved while allowed
        new_issue(client, tenant, database, clock)
        strict = open_settings(app, alerts_allow_private_networks=False)
        dispatcher(database, strict, clock).drain()
        assert receiver.received() == []
    row = only(database)
    assert row.status == "failed"
    assert row.error is not None
    assert "127.0.0.1 is a loopback address" in row.error
    assert "TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS" in row.error


def test_a_redirect_to_the_metadata_address_is_refused(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    redirect = Answer(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    with receiving(redirect) as receiver:
        create_alert(client, tenant, destination=webhook(receiver.url))
        new_issue(client, tenant, database, clock)
        dispatcher(database, local_alerts, clock).drain()
        assert len(receiver.received()) == 1
    row = only(database)
    assert row.status == "failed"
    assert row.error is not None and "169.254.169.254 is a cloud metadata address" in row.error


def test_errors_in_the_log_never_show_the_secret_url(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI
):
    with receiving() as receiver:
        secret_path = "/services/T000/B000/XXXXsecretXXXX"
        create_alert(client, tenant, destination={"type": "slack", "url": receiver.url + secret_path})
        new_issue(client, tenant, database, clock)
    dispatcher(database, open_settings(app), clock).drain()  # the receiver is gone: refused
    row = only(database)
    assert row.status == "pending" and row.error
    assert "XXXXsecretXXXX" not in row.error


# --- chat services ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["slack", "discord", "teams"])
def test_chat_services_get_their_documented_body(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings, service: str
):
    with receiving(Answer(204 if service == "discord" else 200)) as receiver:
        create_alert(client, tenant, destination={"type": service, "url": receiver.url + "/incoming"})
        new_issue(client, tenant, database, clock, "PaymentDeclined")
        dispatcher(database, local_alerts, clock).drain()
        [request] = receiver.received()
    row = only(database)
    assert row.status == "delivered"
    link = row.payload["event"]["url"]
    body = request.json()
    if service == "slack":
        assert body["text"] == "New issue: PaymentDeclined"
        assert body["blocks"][0]["text"] == {"type": "mrkdwn", "text": f"*<{link}|New issue: PaymentDeclined>*"}
        assert body["blocks"][1]["text"]["text"] == "```'sku'```"
        facts = [element["text"] for element in body["blocks"][2]["elements"]]
        assert "Events (all time): 1" in facts
    elif service == "discord":
        [embed] = body["embeds"]
        assert body["content"] == "New issue: PaymentDeclined"
        assert (embed["title"], embed["url"], embed["description"]) == ("New issue: PaymentDeclined", link, "'sku'")
        assert {"name": "Events (all time)", "value": "1", "inline": True} in embed["fields"]
        assert body["allowed_mentions"] == {"parse": []}
    else:
        [attachment] = body["attachments"]
        card = attachment["content"]
        assert (body["type"], attachment["contentType"]) == ("message", "application/vnd.microsoft.card.adaptive")
        assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
        assert card["body"][0]["text"] == "New issue: PaymentDeclined"
        assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Trapline", "url": link}]


def test_a_throttled_alert_sends_its_summary_when_the_window_ends(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving() as receiver:
        create_alert(
            client, tenant, destination={"type": "slack", "url": receiver.url},
            throttle={"max_messages": 1, "per_minutes": 10},
        )  # fmt: skip
        send(client, tenant, database, clock, *[exception_event(exception(f"Error{i}")) for i in range(4)])
        sender = dispatcher(database, local_alerts, clock)
        assert sender.drain() == 1
        clock.advance(minutes=10)
        assert sender.drain() == 1
        first, summary = (r.json() for r in receiver.received())
    assert first["text"].startswith("New issue: Error")
    assert summary["text"] == "…and 3 more notifications from the alert “alert” in the last 10 minutes"
    assert summary["blocks"][-1]["text"]["text"].count("•") == 3


# --- email ------------------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
        asyncio.set_event_loop(None)


def test_email_arrives_at_a_real_smtp_server_with_the_issue_link(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI, smtp_server: Any
):
    port, inbox = smtp_server
    settings = open_settings(app, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_from="t@x.test")
    app.state.settings = settings  # email destinations need SMTP set up to be saved
    create_alert(client, tenant, destination={"type": "email", "to": ["oncall@example.com", "lead@example.com"]})
    new_issue(client, tenant, database, clock, "PaymentDeclined")
    dispatcher(database, settings, clock).drain()
    row = only(database)
    assert (row.status, row.response_code) == ("delivered", 250)
    [(sender, recipients, message)] = inbox.messages
    assert sender == "t@x.test"
    assert recipients == ["oncall@example.com", "lead@example.com"]
    assert message["Subject"] == "[Trapline] New issue: PaymentDeclined"
    assert message["Message-ID"] == f"<{row.id}@trapline>"
    text = message.get_payload()[0].get_payload(decode=True).decode()
    html = message.get_payload()[1].get_payload(decode=True).decode()
    assert row.payload["event"]["url"] in text and f"href='{row.payload['event']['url']}'" in html
    assert "'sku'" in text and "Events (all time): 1" in text


def test_an_smtp_server_that_is_down_is_retried(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI
):
    settings = open_settings(app, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    app.state.settings = settings
    create_alert(client, tenant, destination={"type": "email", "to": ["oncall@example.com"]})
    new_issue(client, tenant, database, clock)
    dispatcher(database, settings, clock).drain()
    row = only(database)
    assert row.status == "pending" and row.error == "SMTP: Connection refused"


# --- the long tail: apprise -------------------------------------------------------------------------


def test_apprise_urls_reach_their_service(
    client: TestClient, tenant: Tenant, database: Database, clock: Clock, local_alerts: Settings
):
    with receiving() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        create_alert(client, tenant, destination={"type": "apprise", "url": f"json://127.0.0.1:{port}/notify"})
        new_issue(client, tenant, database, clock, "PaymentDeclined")
        dispatcher(database, local_alerts, clock).drain()
        [request] = receiver.received()
    assert only(database).status == "delivered"
    body = request.json()
    assert request.path == "/notify"
    assert body["title"] == "New issue: PaymentDeclined"
    assert only(database).payload["event"]["url"] in body["message"]


def test_apprise_is_guarded_too(client: TestClient, tenant: Tenant, database: Database, clock: Clock, app: FastAPI):
    with receiving() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        create_alert(client, tenant, destination={"type": "apprise", "url": f"json://127.0.0.1:{port}/notify"})
        new_issue(client, tenant, database, clock)
        dispatcher(database, open_settings(app, alerts_allow_private_networks=False), clock).drain()
        assert receiver.received() == []
    row = only(database)
    assert row.status == "failed" and row.error is not None and "loopback" in row.error
