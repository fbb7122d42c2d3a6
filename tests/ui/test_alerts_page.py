"""The alerts pages: alerts made, changed, tested and switched off in a browser; the spike detector;
the delivery log on an alert's page and on the issue page."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.alerts.receiver import Answer, receiving
from tests.factories import Tenant
from tests.issue_data import make_issue
from tests.ui.conftest import csrf_of
from trapline.alerts import service
from trapline.alerts.models import Alert, AlertDelivery
from trapline.alerts.spikes import SpikeSettings
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.ids import uuid7
from trapline.settings import Settings
from trapline.ui.alert_words import header_lines, trigger_words

HOOK = "https://hooks.example.com/services/T0KEN-abc123"
SECRET = "s3cr3t-signing-value"
TOKEN = "Bearer tok-98765"
MASK = service.MASK


def page_url(tenant: Tenant, *rest: str) -> str:
    return "/".join([f"/project/{tenant.project_id}/settings/alerts", *rest])


def alert_form(*conditions: tuple[str, str, str], **fields: Any) -> dict[str, Any]:
    """The new-alert form as a browser posts it: the filled condition rows and a blank one."""
    filled = [*conditions, ("", "exact", "")]
    form: dict[str, Any] = {
        "name": "Checkout errors",
        "trigger": "issue_created",
        "threshold": "",
        "window_minutes": "",
        "interval_minutes": "",
        "match": "AND",
        "shape": "nested",
        "mode": "builder",
        "key": [c[0] for c in filled],
        "operator": [c[1] for c in filled],
        "value": [c[2] for c in filled],
        "property_type": ["event"] * len(filled),
        "destination_type": "webhook",
        "url": HOOK,
        "secret": "",
        "headers": "",
        "to": "",
        "throttle_max": "",
        "throttle_minutes": "",
        "enabled": "on",
    }
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def submit(ui: TestClient, url: str, form: dict[str, Any]) -> Any:
    # The token belongs to the session, so any page of it carries the same one.
    token = csrf_of(ui.get("/account").text)
    return ui.post(url, data={**form, "csrf_token": token}, follow_redirects=False)


def create(ui: TestClient, tenant: Tenant, *conditions: tuple[str, str, str], **fields: Any) -> str:
    answer = submit(ui, page_url(tenant), alert_form(*conditions, **fields))
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(page_url(tenant) + "#alert-")
    return location.split("#alert-")[1]


def stored(database: Database, alert_id: str) -> Alert:
    with database.session(write=False) as session:
        alert = session.get(Alert, uuid.UUID(alert_id))
        assert alert is not None
        session.expunge(alert)
        return alert


def alert_count(database: Database, tenant: Tenant) -> int:
    with database.session(write=False) as session:
        return len(session.scalars(select(Alert.id).where(Alert.project_id == tenant.project_id)).all())


def text_of(html: str) -> str:
    """The page's words, tags dropped, entities read, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


class _FormFields(HTMLParser):
    """What a browser would post from the form with this id (its default submit button aside)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.in_template = 0
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and found.get("id") == self.form_id:
            self.inside = True
        if tag == "template":
            self.in_template += 1
        if not self.inside or self.in_template:
            return
        if tag == "option" and self._select and "selected" in found:
            self.fields.append((self._select, found.get("value", "")))
        if "name" not in found:
            return
        if tag == "input":
            kind = found.get("type", "text")
            if kind == "checkbox" and "checked" not in found:
                return
            if kind in ("submit", "button"):
                return
            if kind == "radio" and "checked" not in found:
                return
            self.fields.append((found["name"], found.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea":
            self._textarea, self._text = found["name"], ""
        elif tag == "select":
            self._select = found["name"]

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.in_template -= 1
        elif tag == "form":
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            # A browser drops the newline that opens a textarea's content.
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_fields(html: str, form_id: str = "alert-form") -> dict[str, list[str]]:
    parser = _FormFields(form_id)
    parser.feed(html)
    fields: dict[str, list[str]] = {}
    for name, value in parser.fields:
        fields.setdefault(name, []).append(value)
    return fields


def as_posted(fields: dict[str, list[str]], **changes: Any) -> dict[str, Any]:
    """The form's fields as ``data=`` takes them, one value where there is one, with changes."""
    data: dict[str, Any] = {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    data.pop("csrf_token", None)
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def add_delivery(database: Database, alert_id: str, project_id: int, **fields: Any) -> uuid.UUID:
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid7(),
        "project_id": project_id,
        "alert_id": uuid.UUID(alert_id),
        "kind": "issue_created",
        "event_uuid": uuid7(),
        "payload": {},
        "status": "delivered",
        "attempts": 1,
        "created_at": now,
        "summary_count": 0,
    }
    values.update(fields)
    with database.session(write=True) as session:
        session.add(AlertDelivery(**values))
        session.commit()
    return uuid.UUID(str(values["id"]))


# --- making and showing alerts --------------------------------------------------------------------


def test_an_alert_from_the_form_is_stored_and_listed_with_its_secrets_masked(
    ui: TestClient, tenant: Tenant, database: Database
):
    alert_id = create(
        ui,
        tenant,
        ("$exception_types", "exact", "TypeError"),
        secret=SECRET,
        headers=f"Authorization: {TOKEN}\n\nX-Team: payments\n",
        throttle_max="5",
        throttle_minutes="10",
    )
    alert = stored(database, alert_id)
    assert alert.project_id == tenant.project_id and alert.name == "Checkout errors" and alert.enabled
    assert (alert.trigger, alert.threshold, alert.window_minutes) == ("issue_created", None, None)
    assert alert.destination_type == "webhook"
    assert alert.destination == {
        "url": HOOK,
        "secret": SECRET,
        "headers": {"Authorization": TOKEN, "X-Team": "payments"},
    }
    condition = {"key": "$exception_types", "type": "event", "operator": "exact", "value": ["TypeError"]}
    assert alert.filters == {"type": "AND", "values": [{"type": "AND", "values": [condition]}]}
    assert (alert.throttle_max, alert.throttle_minutes) == (5, 10)
    # The REST API sees the same alert.
    api = ui.get(f"/api/projects/{tenant.project_id}/error_tracking/alerts/{alert_id}", headers=tenant.headers())
    assert api.status_code == 200 and api.json()["destination"]["url"] == f"https://hooks.example.com/{MASK}"

    listing = ui.get(page_url(tenant))
    assert listing.status_code == 200
    words = text_of(listing.text)
    assert "The alert “Checkout errors” was created." in words
    assert "New issue" in words and "$exception_types is exactly TypeError" in words
    assert f"https://hooks.example.com/{MASK}" in words and "signed with a secret" in words
    assert "headers: Authorization, X-Team" in words
    assert "at most 5 messages per 10 minutes" in words
    assert "enabled" in words and "none yet" in words
    for page in (listing.text, ui.get(page_url(tenant, alert_id)).text):
        assert "T0KEN" not in page and SECRET not in page and "tok-98765" not in page and "payments" not in page


def test_the_list_says_each_trigger_in_words(ui: TestClient, tenant: Tenant):
    create(ui, tenant, name="a", trigger="issue_reopened")
    create(ui, tenant, name="b", trigger="issue_spiking", threshold="7")  # ignored: not a threshold trigger
    create(ui, tenant, name="c", trigger="issue_frequency", threshold="100", window_minutes="15")
    create(ui, tenant, name="d", trigger="issue_users", threshold="20", interval_minutes="30")
    words = text_of(ui.get(page_url(tenant)).text)
    assert "Reopened issue" in words and "Spiking issue" in words
    assert "More than 100 events in 15 minutes" in words
    assert "More than 20 users in 60 minutes, repeats every 30 minutes" in words
    assert "every event" in words  # no conditions


def test_the_alerts_page_is_in_the_project_navigation(ui: TestClient, tenant: Tenant):
    page = ui.get(page_url(tenant))
    assert f'href="{page_url(tenant)}" aria-current="page">Alerts</a>' in page.text
    issues = ui.get(f"/project/{tenant.project_id}/error_tracking")
    assert re.search(rf'<a href="{page_url(tenant)}"\s*>Alerts</a>', issues.text)


# --- refusals, in words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"url": "http://127.0.0.1/hook"}, "URL: This URL is refused: 127.0.0.1 is a loopback address."),
        ({"url": "ftp://hooks.example.com/x"}, "URL: Enter an http:// or https:// URL."),
        ({"url": ""}, "URL: This field is required."),
        (
            {"trigger": "issue_frequency"},
            "Threshold: This field is required: the alert fires when an issue has more than this many events",
        ),
        ({"trigger": "issue_users", "threshold": "many"}, "Threshold: enter a whole number."),
        ({"trigger": "issue_users", "threshold": "0"}, "Threshold: must be at least 1."),
        ({"trigger": "issue_frequency", "threshold": "5", "window_minutes": "99999"}, "Window: must be at most 10080."),
        ({"trigger": "sometimes"}, "Trigger: choose one of the listed choices."),
        ({"name": "  "}, "Name: this field may not be blank."),
        ({"throttle_max": "5"}, "Throttle: give both the number of messages and the minutes"),
        ({"throttle_max": "0", "throttle_minutes": "10"}, "Throttle (messages): must be at least 1."),
        ({"headers": "Authorization Bearer x"}, "Headers: line 1 is not “Name: value”."),
        ({"headers": "Content-Type: text/plain"}, "Headers: The Content-Type header is set by Trapline."),
        ({"destination_type": "email", "to": "ops@example.com"}, "Destination: Email is not set up on this server"),
        ({"destination_type": "carrier-pigeon"}, 'Destination: "carrier-pigeon" is not a valid choice'),
        ({"destination_type": "apprise", "url": "nonsense"}, "URL: apprise does not understand this URL"),
        ({"mode": "json", "filters_json": "{nope"}, "The filters are not valid JSON"),
        ({"mode": "json", "filters_json": '{"type": "XOR", "values": []}'}, "Invalid filters payload"),
    ],
)
def test_a_refused_alert_answers_400_with_the_problem_and_what_was_typed(
    ui: TestClient, tenant: Tenant, database: Database, fields: dict[str, str], words: str
):
    answer = submit(ui, page_url(tenant), alert_form(**{"name": "Typed <name>", **fields}))
    assert answer.status_code == 400, answer.text
    text = text_of(answer.text)
    assert "The alert was not saved." in text
    assert words in text, text[text.find("not saved") :][:600]
    if fields.get("name") is None:
        assert 'value="Typed &lt;name&gt;"' in answer.text
    assert alert_count(database, tenant) == 0


def test_a_half_filled_condition_is_named_by_its_row(ui: TestClient, tenant: Tenant, database: Database):
    answer = submit(ui, page_url(tenant), alert_form(("", "exact", "TypeError")))
    assert answer.status_code == 400
    assert "Condition 1 has a value but no property" in text_of(answer.text)
    # The row comes back as typed.
    assert ">TypeError</textarea>" in answer.text
    assert alert_count(database, tenant) == 0


def test_forms_need_their_csrf_token(ui: TestClient, tenant: Tenant, database: Database):
    answer = ui.post(page_url(tenant), data=alert_form(), follow_redirects=False)
    assert answer.status_code == 403
    assert alert_count(database, tenant) == 0


# --- editing ------------------------------------------------------------------------------------


def test_the_edit_form_shows_secrets_masked_and_saving_it_keeps_them(
    ui: TestClient, tenant: Tenant, database: Database
):
    alert_id = create(ui, tenant, ("$lib", "exact", "web"), secret=SECRET, headers=f"Authorization: {TOKEN}")
    page = ui.get(page_url(tenant, alert_id))
    assert page.status_code == 200
    fields = form_fields(page.text)
    assert fields["url"] == [f"https://hooks.example.com/{MASK}"]
    assert fields["secret"] == [MASK]
    assert fields["headers"] == [f"Authorization: {MASK}"]
    assert fields["name"] == ["Checkout errors"] and fields["enabled"] == ["on"]
    assert fields["key"][0] == "$lib" and fields["value"][0] == "web"

    changed = as_posted(
        fields, mode="builder", name="Checkout, busy", trigger="issue_frequency", threshold="100", window_minutes="15",
        interval_minutes="60",
    )  # fmt: skip
    answer = submit(ui, page_url(tenant, alert_id), changed)
    assert answer.status_code == 303, text_of(answer.text)[:1000]
    assert answer.headers["location"] == page_url(tenant) + f"#alert-{alert_id}"
    alert = stored(database, alert_id)
    assert alert.destination == {"url": HOOK, "secret": SECRET, "headers": {"Authorization": TOKEN}}
    assert alert.name == "Checkout, busy"
    assert (alert.trigger, alert.threshold, alert.window_minutes, alert.interval_minutes) == (
        "issue_frequency", 100, 15, 60,
    )  # fmt: skip
    condition = {"key": "$lib", "type": "event", "operator": "exact", "value": ["web"]}
    assert alert.filters == {"type": "AND", "values": [{"type": "AND", "values": [condition]}]}
    words = text_of(ui.get(page_url(tenant)).text)
    assert "The alert “Checkout, busy” was saved." in words
    assert "More than 100 events in 15 minutes, repeats every 60 minutes" in words

    # Emptying the secret and the headers removes them; a new URL replaces the stored one.
    again = as_posted(form_fields(ui.get(page_url(tenant, alert_id)).text), mode="builder", secret="", headers="",
                      url="https://hooks.example.com/other")  # fmt: skip
    assert submit(ui, page_url(tenant, alert_id), again).status_code == 303
    assert stored(database, alert_id).destination == {"url": "https://hooks.example.com/other"}


def test_an_edit_that_is_refused_answers_400_and_keeps_the_alert(ui: TestClient, tenant: Tenant, database: Database):
    alert_id = create(ui, tenant, secret=SECRET)
    fields = form_fields(ui.get(page_url(tenant, alert_id)).text)
    answer = submit(ui, page_url(tenant, alert_id), as_posted(fields, mode="builder", url="http://10.0.0.7/hook"))
    assert answer.status_code == 400
    text = text_of(answer.text)
    assert "The alert was not saved." in text and "10.0.0.7 is a private address" in text
    assert 'value="http://10.0.0.7/hook"' in answer.text  # what was typed stays
    assert SECRET not in answer.text and "T0KEN" not in answer.text
    assert stored(database, alert_id).destination == {"url": HOOK, "secret": SECRET}


def test_switching_the_destination_type_asks_for_its_own_url(ui: TestClient, tenant: Tenant, database: Database):
    alert_id = create(ui, tenant)
    fields = form_fields(ui.get(page_url(tenant, alert_id)).text)
    answer = submit(ui, page_url(tenant, alert_id), as_posted(fields, mode="builder", destination_type="slack"))
    # The masked webhook URL cannot stand for a Slack URL: the stored one is the webhook's.
    assert answer.status_code == 400 and "URL: This field is required." in text_of(answer.text)
    slack = "https://hooks.slack.com/services/T0/B0/xyz"
    slack_form = as_posted(fields, mode="builder", destination_type="slack", url=slack)
    answer = submit(ui, page_url(tenant, alert_id), slack_form)
    assert answer.status_code == 303
    alert = stored(database, alert_id)
    assert (alert.destination_type, alert.destination) == ("slack", {"url": slack})


def test_filters_the_rows_cannot_show_are_edited_as_json(ui: TestClient, tenant: Tenant, database: Database):
    nested = {
        "type": "OR",
        "values": [
            {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["web"]}]},
            {"type": "AND", "values": [{"key": "$os", "type": "event", "operator": "exact", "value": ["iOS"]}]},
        ],
    }
    made = ui.post(
        f"/api/projects/{tenant.project_id}/error_tracking/alerts",
        json={"name": "api", "trigger": {"type": "issue_created"}, "filters": nested,
              "destination": {"type": "webhook", "url": HOOK}},
        headers=tenant.headers(),
    )  # fmt: skip
    assert made.status_code == 201, made.text
    alert_id = made.json()["id"]
    page = ui.get(page_url(tenant, alert_id))
    fields = form_fields(page.text)
    assert fields["mode"] == ["json"] and "key" not in fields
    assert "$lib is exactly web" in text_of(page.text)
    answer = submit(ui, page_url(tenant, alert_id), as_posted(fields, name="renamed"))
    assert answer.status_code == 303
    alert = stored(database, alert_id)
    assert alert.filters == nested and alert.name == "renamed"


def test_an_apprise_url_sent_back_as_shown_keeps_the_stored_one(ui: TestClient, tenant: Tenant, database: Database):
    ntfy = "ntfy://ntfy.sh/trapline-alerts?priority=high"
    alert_id = create(ui, tenant, destination_type="apprise", url=ntfy)
    fields = form_fields(ui.get(page_url(tenant, alert_id)).text)
    assert fields["url"][0].startswith("ntfy://") and "priority" not in fields["url"][0]
    assert submit(ui, page_url(tenant, alert_id), as_posted(fields, mode="builder")).status_code == 303
    assert stored(database, alert_id).destination == {"url": ntfy}


# --- enabling, deleting, unknown ids -------------------------------------------------------------


def test_an_alert_is_disabled_enabled_and_deleted(ui: TestClient, tenant: Tenant, database: Database):
    alert_id = create(ui, tenant)
    off = submit(ui, page_url(tenant, alert_id, "toggle"), {"enabled": "false"})
    assert off.status_code == 303 and off.headers["location"] == page_url(tenant) + f"#alert-{alert_id}"
    assert stored(database, alert_id).enabled is False
    words = text_of(ui.get(page_url(tenant)).text)
    assert "is disabled: it sends nothing until it is enabled again" in words and "disabled" in words
    # Sent twice, the same form leaves it disabled.
    assert submit(ui, page_url(tenant, alert_id, "toggle"), {"enabled": "false"}).status_code == 303
    assert stored(database, alert_id).enabled is False
    on = submit(ui, page_url(tenant, alert_id, "toggle"), {"enabled": "true", "back": "edit"})
    assert on.headers["location"] == page_url(tenant, alert_id)
    assert stored(database, alert_id).enabled is True
    assert submit(ui, page_url(tenant, alert_id, "toggle"), {}).status_code == 400

    gone = submit(ui, page_url(tenant, alert_id, "delete"), {})
    assert gone.status_code == 303 and gone.headers["location"] == page_url(tenant)
    assert "The alert “Checkout errors” was deleted" in text_of(ui.get(page_url(tenant)).text)
    assert alert_count(database, tenant) == 0
    again = submit(ui, page_url(tenant, alert_id, "delete"), {})
    assert again.status_code == 404 and "There is no such alert in this project." in again.text


def test_unknown_and_foreign_alerts_are_not_found(
    ui: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        foreign = Alert(
            id=uuid7(), project_id=other_tenant.project_id, name="theirs", trigger="issue_created",
            filters={"type": "AND", "values": []}, destination_type="webhook", destination={"url": HOOK},
        )  # fmt: skip
        session.add(foreign)
        session.commit()
        foreign_id = str(foreign.id)
    for ident in ("not-a-uuid", str(uuid.uuid4()), foreign_id, "%00"):
        page = ui.get(page_url(tenant, ident))
        assert page.status_code == 404 and "There is no such alert in this project." in page.text
        for action in ((), ("delete",), ("test",), ("toggle",)):
            answer = submit(ui, page_url(tenant, ident, *action), {**alert_form(), "enabled": "false"})
            assert answer.status_code == 404, (ident, action)
    assert stored(database, foreign_id).enabled is True


# --- the spike detector -------------------------------------------------------------------------


def test_the_spike_detector_form(ui: TestClient, tenant: Tenant, database: Database):
    words = text_of(ui.get(page_url(tenant)).text)
    assert "5-minute buckets" in words
    assert "at least 500 and more than 10 × its usual rate" in words and "once per 10 minutes" in words
    url = page_url(tenant, "spike-detector")
    answer = submit(ui, url, {"enabled": "on", "threshold": "50", "multiplier": "3", "snooze_minutes": "30"})
    assert answer.status_code == 303 and answer.headers["location"] == page_url(tenant) + "#spike-detector"
    with database.session(write=False) as session:
        assert service.spike_settings(session, tenant.project_id) == SpikeSettings(True, 3, 50, 30)
    words = text_of(ui.get(page_url(tenant)).text)
    assert "The spike detector was saved." in words
    assert "at least 50 and more than 3 × its usual rate" in words and "once per 30 minutes" in words

    refused = submit(ui, url, {"threshold": "0", "multiplier": "x", "snooze_minutes": ""})
    assert refused.status_code == 400
    words = text_of(refused.text)
    assert "The spike detector was not saved." in words and "Snooze: enter a whole number." in words
    assert 'name="multiplier" value="x"' in refused.text
    refused = submit(ui, url, {"threshold": "0", "multiplier": "x", "snooze_minutes": "5"})
    words = text_of(refused.text)
    assert "Threshold: must be at least 1." in words and "Multiplier: enter a whole number." in words

    off = submit(ui, url, {"threshold": "50", "multiplier": "3", "snooze_minutes": "30"})
    assert off.status_code == 303
    with database.session(write=False) as session:
        assert service.spike_settings(session, tenant.project_id).enabled is False
    assert "It is off for this project." in text_of(ui.get(page_url(tenant)).text)


# --- the delivery log -----------------------------------------------------------------------------


def test_the_edit_page_shows_the_delivery_log(ui: TestClient, tenant: Tenant, database: Database):
    alert_id = create(ui, tenant)
    issue_id = uuid7()
    now = utcnow()
    add_delivery(
        database, alert_id, tenant.project_id, issue_id=issue_id, status="failed", response_code=400,
        error="HTTP 400: bad <payload>", attempts=1, created_at=now - timedelta(minutes=3),
        payload={"issue": {"name": "KeyError in checkout"}},
    )  # fmt: skip
    add_delivery(
        database, alert_id, tenant.project_id, status="pending", attempts=2, response_code=503, error="HTTP 503: busy",
        next_attempt_at=now + timedelta(minutes=5), created_at=now - timedelta(minutes=2),
    )  # fmt: skip
    add_delivery(database, alert_id, tenant.project_id, kind="summary", summary_count=7, created_at=now)
    page = ui.get(page_url(tenant, alert_id))
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Delivery log" in words
    failed = re.search(r'<tr id="delivery-[^"]+">(?:(?!</tr>).)*failed(?:(?!</tr>).)*</tr>', page.text, re.S)
    assert failed is not None
    row = failed[0]
    assert "<code>400</code>" in row and "HTTP 400: bad &lt;payload&gt;" in row
    assert f'href="/project/{tenant.project_id}/error_tracking/{issue_id}">KeyError in checkout</a>' in row
    assert "New issue" in row
    assert "Summary, stands for 7" in words and "pending" in words and "in 4 minutes" in words
    # Newest first.
    assert words.index("Summary, stands for 7") < words.index("HTTP 503: busy") < words.index("HTTP 400: bad")
    # The list shows the newest message's state.
    listing = ui.get(page_url(tenant)).text
    assert "delivery-delivered" in listing


def test_the_delivery_log_is_paged(ui: TestClient, tenant: Tenant, database: Database):
    alert_id = create(ui, tenant)
    now = utcnow()
    for index in range(55):
        add_delivery(database, alert_id, tenant.project_id, created_at=now - timedelta(minutes=index), attempts=index)
    first = ui.get(page_url(tenant, alert_id))
    assert first.text.count('<tr id="delivery-') == 50
    assert "1–50 of 55" in first.text and f"{page_url(tenant, alert_id)}?offset=50" in first.text
    second = ui.get(page_url(tenant, alert_id), params={"offset": 50})
    assert second.text.count('<tr id="delivery-') == 5 and "51–55 of 55" in second.text


def test_send_test_shows_the_receivers_answer(ui: TestClient, tenant: Tenant, local_alerts: Settings):
    with receiving(Answer(400, b"bad")) as receiver:
        alert_id = create(ui, tenant, url=f"{receiver.url}/hook")
        answer = submit(ui, page_url(tenant, alert_id, "test"), {"back": "edit"})
        assert answer.status_code == 303 and answer.headers["location"] == page_url(tenant, alert_id)
        assert len(receiver.received()) == 1
    page = ui.get(page_url(tenant, alert_id))
    words = text_of(page.text)
    assert "The test failed: HTTP 400: bad" in words
    assert re.search(r"Test\s*</td>\s*<td>.*?</td>\s*<td><span class=\"badge delivery-failed\">failed", page.text, re.S)
    assert "<code>400</code>" in page.text

    with receiving(Answer(200, b"ok")) as receiver:
        alert_id = create(ui, tenant, name="works", url=f"{receiver.url}/hook")
        answer = submit(ui, page_url(tenant, alert_id, "test"), {})
        assert answer.headers["location"] == page_url(tenant) + f"#alert-{alert_id}"
        body = receiver.received()[0].json()
        assert body["alert"]["name"] == "works" and body["event"]["properties"]["test"] is True
    assert "Sent: the receiver answered 200." in text_of(ui.get(page_url(tenant)).text)


# --- the issue page -------------------------------------------------------------------------------


def test_the_issue_page_lists_the_alerts_sent_about_it(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-alerted"])
        other = make_issue(session, tenant.project_id, ["fp-quiet"])
        issue_id, other_id = issue.id, other.id
    alert_id = create(ui, tenant, name="Pager <duty>")
    now = utcnow()
    add_delivery(database, alert_id, tenant.project_id, issue_id=issue_id, response_code=200, created_at=now)
    add_delivery(
        database, alert_id, tenant.project_id, issue_id=issue_id, status="failed", response_code=500,
        error="gave up retrying: HTTP 500: down", kind="issue_reopened", created_at=now - timedelta(hours=1),
    )  # fmt: skip
    page = ui.get(f"/project/{tenant.project_id}/error_tracking/{issue_id}")
    assert page.status_code == 200
    section = page.text[page.text.index('id="alerts-sent"') :]
    words = text_of(section)
    assert "Alerts sent" in words
    assert f'href="{page_url(tenant, alert_id)}">Pager &lt;duty&gt;</a>' in section
    assert "New issue" in words and "delivered" in words and "200" in words
    assert "Reopened issue" in words and "failed" in words and "gave up retrying: HTTP 500: down" in words
    assert words.index("delivered") < words.index("failed")  # newest first
    quiet = ui.get(f"/project/{tenant.project_id}/error_tracking/{other_id}")
    assert "No alert has been sent for this issue." in quiet.text

    for index in range(25):
        moment = now - timedelta(minutes=index)
        add_delivery(database, alert_id, tenant.project_id, issue_id=other_id, created_at=moment)
    busy = ui.get(f"/project/{tenant.project_id}/error_tracking/{other_id}").text
    section = busy[busy.index('id="alerts-sent"') :]
    assert section.count("badge delivery-delivered") == 20 and "The 20 newest" in section


# --- in words (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "numbers", "words"),
    [
        ("issue_created", (None, None, None), "New issue"),
        ("issue_frequency", (100, 15, None), "More than 100 events in 15 minutes"),
        ("issue_users", (1, 1, 1), "More than 1 user in 1 minute, repeats every 1 minute"),
        ("issue_frequency", (5, None, None), "More than 5 events in 60 minutes"),
    ],
)
def test_trigger_words(trigger: str, numbers: tuple[Any, Any, Any], words: str):
    assert trigger_words(trigger, *numbers) == words


def test_header_lines():
    assert header_lines("A: 1\n\n  B :  two: three  \r\n") == ({"A": "1", "B": "two: three"}, [])
    assert header_lines("ok: 1\nnot a header\n: no name") == (
        {"ok": "1"},
        ["Headers: line 2 is not “Name: value”.", "Headers: line 3 is not “Name: value”."],
    )
