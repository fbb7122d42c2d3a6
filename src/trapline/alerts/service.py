"""Use cases of alerts for the REST API and the web UI: validate, save, show masked, test.

Destinations are validated here, once for both callers: the URL's scheme and host, and the
address it resolves to (``netguard``), so that a webhook to a private address is refused when
it is saved, with words that say why, and not only when something is sent. Secrets are shown
masked from then on; an update that sends the masked value back (or leaves the field out)
keeps the stored secret.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from trapline.alerts import netguard, outbox
from trapline.alerts.messages import TRIGGERS, AlertRef, IssueFacts, ProjectRef, build_payload
from trapline.alerts.models import Alert, AlertDelivery, SpikeDetectionConfig, SpikeEvent
from trapline.alerts.senders import RESERVED_HEADERS, Senders
from trapline.alerts.spikes import SpikeSettings
from trapline.db.types import utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.ids import uuid7
from trapline.projects.models import Project
from trapline.rules.evaluate import EvaluationError, compile_filters
from trapline.rules.filters import MATCH_ALL, FilterError, validate_filters
from trapline.settings import Settings

__all__ = [
    "DESTINATION_TYPES",
    "MASK",
    "MAX_WINDOW_MINUTES",
    "THRESHOLD_TRIGGERS",
    "TRIGGERS",
    "AlertInput",
    "alert_deliveries",
    "create_alert",
    "delete_alert",
    "get_alert",
    "last_delivery",
    "list_alerts",
    "masked_destination",
    "send_test",
    "spike_events",
    "spike_settings",
    "update_alert",
    "update_spike_settings",
]

DESTINATION_TYPES = ("webhook", "slack", "discord", "teams", "email", "apprise")
THRESHOLD_TRIGGERS = ("issue_frequency", "issue_users")
MASK = "••••••••"
# The longest window (and throttle period) an alert may have: a week. Counts are kept that long.
MAX_WINDOW_MINUTES = 7 * 24 * 60
_MAX_HEADERS = 20
_MAX_RECIPIENTS = 20
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Good enough to catch a typo; the SMTP server has the final word.
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass(frozen=True)
class AlertInput:
    """An alert's fields as given (None: not given, keep what is stored on update)."""

    name: str | None = None
    enabled: bool | None = None
    trigger: Mapping[str, Any] | None = None
    filters: Mapping[str, Any] | None = None
    destination: Mapping[str, Any] | None = None
    throttle: Mapping[str, Any] | None = None
    throttle_given: bool = False  # throttle: null removes it, so "given" is told apart


# --- validation ----------------------------------------------------------------------------------


def _trigger(raw: Mapping[str, Any]) -> tuple[str, int | None, int | None, int | None]:
    kind = raw.get("type")
    if kind not in TRIGGERS:
        raise InvalidInput(
            f'"{kind}" is not a valid choice: use one of {", ".join(TRIGGERS)}.',
            code="invalid_choice",
            attr="trigger__type",
        )
    threshold, window, interval = (raw.get(key) for key in ("threshold", "window_minutes", "interval_minutes"))
    if kind not in THRESHOLD_TRIGGERS:
        for key, value in (("threshold", threshold), ("window_minutes", window), ("interval_minutes", interval)):
            if value is not None:
                raise InvalidInput(
                    f"{key} applies only to the issue_frequency and issue_users triggers.", attr=f"trigger__{key}"
                )
        return str(kind), None, None, None
    if threshold is None:
        raise InvalidInput(
            "This field is required: the alert fires when an issue has more than this many "
            + ("events" if kind == "issue_frequency" else "users")
            + " in the window.",
            code="required",
            attr="trigger__threshold",
        )
    return str(kind), threshold, window if window is not None else 60, interval


def _filters(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    filters = dict(raw) if raw is not None else dict(MATCH_ALL)
    try:
        validate_filters(filters)
        compile_filters(filters)
    except (FilterError, EvaluationError) as exc:
        raise InvalidInput(f"Invalid filters payload: {exc}.", attr="filters") from None
    return filters


def _url(value: Any, attr: str, settings: Settings) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("This field is required.", code="required", attr=attr)
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Enter an http:// or https:// URL.", attr=attr)
    allowed = settings.alerts_allow_private_networks
    problem = netguard.url_problem(parts.hostname, allow_private=allowed)
    if problem is not None:
        # The setting is named only where it would help (never for a metadata address).
        hint = (
            " Alerts may only reach public addresses; TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS=true allows private "
            "networks on this server."
            if not allowed and netguard.url_problem(parts.hostname, allow_private=True) is None
            else ""
        )
        raise InvalidInput(f"This URL is refused: {problem}.{hint}", code="forbidden_address", attr=attr)
    return url


def _kept(given: Any, stored: Any) -> Any:
    """A secret field as given, or the stored one when the masked value came back."""
    if given is None or (isinstance(given, str) and MASK in given):
        return stored
    return given


def _destination(raw: Mapping[str, Any], current: Alert | None, settings: Settings) -> tuple[str, dict[str, Any]]:
    kind = raw.get("type")
    if kind not in DESTINATION_TYPES:
        raise InvalidInput(
            f'"{kind}" is not a valid choice: use one of {", ".join(DESTINATION_TYPES)}.',
            code="invalid_choice",
            attr="destination__type",
        )
    stored: dict[str, Any] = dict(current.destination) if current and current.destination_type == kind else {}
    if kind == "email":
        if not settings.smtp_host:
            raise InvalidInput(
                "Email is not set up on this server: set TRAPLINE_SMTP_HOST (and the other TRAPLINE_SMTP_* "
                "settings) to send alerts by email.",
                attr="destination__type",
            )
        to = raw.get("to")
        if isinstance(to, str):
            to = [part.strip() for part in re.split(r"[,\s]+", to) if part.strip()]
        if not isinstance(to, list) or not to:
            raise InvalidInput("Give at least one email address.", code="required", attr="destination__to")
        if len(to) > _MAX_RECIPIENTS:
            raise InvalidInput(f"At most {_MAX_RECIPIENTS} addresses.", attr="destination__to")
        for address in to:
            if not isinstance(address, str) or not _EMAIL.match(address):
                raise InvalidInput(f"{address!r} is not an email address.", attr="destination__to")
        return kind, {"to": list(dict.fromkeys(to))}
    if kind == "apprise":
        url = _kept(raw.get("url"), stored.get("url"))
        if not isinstance(url, str) or not url.strip():
            raise InvalidInput("This field is required.", code="required", attr="destination__url")
        import apprise  # loaded when needed: it imports a plugin per service

        plugin = apprise.Apprise.instantiate(url.strip())
        if not plugin:
            raise InvalidInput(
                "apprise does not understand this URL; see https://github.com/caronc/apprise/wiki for each "
                "service's form (ntfy://, tgram://, matrix://, mmost://, gchat://, pagerduty://, opsgenie://, …).",
                attr="destination__url",
            )
        return kind, {"url": url.strip()}
    url = _url(_kept(raw.get("url"), stored.get("url")), "destination__url", settings)
    config: dict[str, Any] = {"url": url}
    if kind == "webhook":
        secret = _kept(raw.get("secret"), stored.get("secret")) if "secret" in raw else stored.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise InvalidInput("Not a valid string.", attr="destination__secret")
        if secret:
            config["secret"] = secret
        headers = raw.get("headers", stored.get("headers"))
        config_headers = _headers(headers, stored.get("headers") or {})
        if config_headers:
            config["headers"] = config_headers
    return str(kind), config


def _headers(raw: Any, stored: Mapping[str, str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput('Expected an object of header names to values: {"Authorization": "Bearer …"}.',
                           attr="destination__headers")  # fmt: skip
    if len(raw) > _MAX_HEADERS:
        raise InvalidInput(f"At most {_MAX_HEADERS} headers.", attr="destination__headers")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidInput(f"{name!r} is not a valid header name.", attr="destination__headers")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"The {name} header is set by Trapline.", attr="destination__headers")
        value = _kept(value, stored.get(name))
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\x00") or len(value) > 4000:
            raise InvalidInput(f"The value of {name} must be one line of text.", attr="destination__headers")
        headers[name] = value
    return headers


def _throttle(raw: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    maximum, minutes = raw.get("max_messages"), raw.get("per_minutes")
    if not isinstance(maximum, int) or isinstance(maximum, bool) or not 1 <= maximum <= 10_000:
        raise InvalidInput("Ensure this value is an integer from 1 to 10000.", attr="throttle__max_messages")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_WINDOW_MINUTES:
        raise InvalidInput(
            f"Ensure this value is an integer from 1 to {MAX_WINDOW_MINUTES}.", attr="throttle__per_minutes"
        )
    return maximum, minutes


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("This field may not be blank.", code="blank", attr="name")
    if len(value) > 400:
        raise InvalidInput("Ensure this field has no more than 400 characters.", code="max_length", attr="name")
    return value.strip()


# --- use cases -----------------------------------------------------------------------------------


def list_alerts(project_id: int) -> Select[Alert]:
    return select(Alert).where(Alert.project_id == project_id).order_by(Alert.created_at, Alert.id)


def get_alert(session: Session, project_id: int, alert_id: uuid.UUID) -> Alert:
    alert = session.scalar(select(Alert).where(Alert.project_id == project_id, Alert.id == alert_id))
    if alert is None:
        raise NotFound("Alert not found.")
    return alert


def create_alert(session: Session, project_id: int, given: AlertInput, settings: Settings) -> Alert:
    if given.trigger is None:
        raise InvalidInput("This field is required.", code="required", attr="trigger")
    if given.destination is None:
        raise InvalidInput("This field is required.", code="required", attr="destination")
    alert = Alert(id=uuid7(), project_id=project_id, name=_name(given.name), enabled=given.enabled is not False)
    alert.trigger, alert.threshold, alert.window_minutes, alert.interval_minutes = _trigger(given.trigger)
    alert.filters = _filters(given.filters)
    alert.destination_type, alert.destination = _destination(given.destination, None, settings)
    alert.throttle_max, alert.throttle_minutes = _throttle(given.throttle)
    session.add(alert)
    session.commit()
    return alert


def update_alert(session: Session, alert: Alert, given: AlertInput, settings: Settings) -> Alert:
    """Change the fields given; the others keep their values."""
    if given.name is not None:
        alert.name = _name(given.name)
    if given.enabled is not None:
        alert.enabled = given.enabled
    if given.trigger is not None:
        alert.trigger, alert.threshold, alert.window_minutes, alert.interval_minutes = _trigger(given.trigger)
    if given.filters is not None:
        alert.filters = _filters(given.filters)
    if given.destination is not None:
        alert.destination_type, alert.destination = _destination(given.destination, alert, settings)
    if given.throttle_given:
        alert.throttle_max, alert.throttle_minutes = _throttle(given.throttle)
    alert.updated_at = utcnow()
    session.commit()
    return alert


def delete_alert(session: Session, project_id: int, alert_id: uuid.UUID) -> None:
    session.delete(get_alert(session, project_id, alert_id))
    session.commit()


def masked_destination(alert: Alert) -> dict[str, Any]:
    """The destination as it may be shown: URLs cut to their host, secrets replaced."""
    config = alert.destination or {}
    shown: dict[str, Any] = {"type": alert.destination_type}
    if alert.destination_type == "email":
        shown["to"] = list(config.get("to") or [])
        return shown
    url = str(config.get("url") or "")
    if alert.destination_type == "apprise":
        shown["url"] = _masked_apprise(url)
        return shown
    shown["url"] = _masked_url(url)
    if alert.destination_type == "webhook":
        shown["secret"] = MASK if config.get("secret") else None
        shown["headers"] = dict.fromkeys(config.get("headers") or {}, MASK)
    return shown


def _masked_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.netloc:
        return MASK
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{MASK}"


def _masked_apprise(url: str) -> str:
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return MASK
    shown: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]
    # apprise's own privacy form keeps the service and hides its tokens; the query is its
    # defaults, noise here.
    return shown.split("?", 1)[0].replace("...", MASK)


# --- sending a sample now ------------------------------------------------------------------------


def send_test(session: Session, alert: Alert, project: Project, senders: Senders, base_url: str) -> AlertDelivery:
    """Send a sample notification through the alert's destination now; it is logged like the
    others (kind ``test``), and if this process dies mid-send, a worker sends it later."""
    now = utcnow()
    sample = IssueFacts(
        id=uuid7(),
        name="TestAlertError",
        description=f"A sample notification of the alert “{alert.name}”: nothing happened in your app.",
        status="active",
        fingerprint="trapline-test",
        occurrences=1,
        first_seen=now,
        last_seen=now,
    )
    project_url = f"{base_url}/project/{project.id}/error_tracking"
    payload = build_payload(
        alert.trigger,
        event_uuid=uuid7(),
        now=now,
        project=ProjectRef(project.id, project.name, project_url),
        issue=sample,
        alert=AlertRef(alert.id, alert.name, alert.trigger),
        issue_link=project_url,
        exception_timestamp=now,
        exception_props={"$exception_types": ["TestAlertError"], "$exception_values": [sample.description]},
        extra=_sample_extra(alert),
    )
    payload["event"]["properties"]["test"] = True
    sender_id = f"test:{uuid7().hex[-12:]}"
    delivery = AlertDelivery(
        id=uuid7(),
        project_id=project.id,
        alert_id=alert.id,
        kind="test",
        event_uuid=uuid.UUID(payload["event"]["uuid"]),
        payload=payload,
        status="pending",
        next_attempt_at=now,
        created_at=now,
        claimed_by=sender_id,
        claimed_until=now + outbox.TEST_LEASE,
        attempts=0,
        summary_count=0,
    )
    session.add(delivery)
    session.commit()
    outcome = senders.send(alert.destination_type, alert.destination, payload, delivery.id)
    finished = utcnow()
    # A test is tried once, now: the person is waiting for its answer.
    outcome = outbox.Outcome("failed", outcome.response_code, outcome.error) if outcome.status == "retry" else outcome
    outbox.record(session, sender_id, delivery.id, outcome, finished, finished)
    session.commit()
    session.refresh(delivery)
    return delivery


def _sample_extra(alert: Alert) -> dict[str, Any]:
    if alert.trigger == "issue_spiking":
        return {"computed_baseline": 2.0, "current_bucket_value": 600}
    if alert.trigger == "issue_frequency":
        return {
            "count": (alert.threshold or 0) + 1,
            "threshold": alert.threshold,
            "window_minutes": alert.window_minutes,
        }
    if alert.trigger == "issue_users":
        return {
            "users": (alert.threshold or 0) + 1,
            "threshold": alert.threshold,
            "window_minutes": alert.window_minutes,
        }
    return {}


# --- the delivery log ----------------------------------------------------------------------------


def alert_deliveries(
    project_id: int,
    *,
    alert_id: uuid.UUID | None = None,
    issue_id: uuid.UUID | None = None,
    statuses: Sequence[str] = (),
) -> Select[AlertDelivery]:
    """A project's notifications, newest first; throttled ones are shown by their summary."""
    query = select(AlertDelivery).where(AlertDelivery.project_id == project_id)
    if alert_id is not None:
        query = query.where(AlertDelivery.alert_id == alert_id)
    if issue_id is not None:
        query = query.where(AlertDelivery.issue_id == issue_id)
    if statuses:
        query = query.where(AlertDelivery.status.in_(list(statuses)))
    return query.order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc())


def last_delivery(session: Session, alert: Alert) -> AlertDelivery | None:
    return session.scalars(alert_deliveries(alert.project_id, alert_id=alert.id).limit(1)).first()


# --- the spike detector --------------------------------------------------------------------------


def spike_settings(session: Session, project_id: int) -> SpikeSettings:
    row = session.get(SpikeDetectionConfig, project_id)
    if row is None:
        return SpikeSettings()
    return SpikeSettings(row.enabled, row.multiplier, row.threshold, row.snooze_duration_minutes)


def update_spike_settings(session: Session, project_id: int, changes: Mapping[str, Any]) -> SpikeSettings:
    row = session.get(SpikeDetectionConfig, project_id)
    if row is None:
        defaults = SpikeSettings()
        row = SpikeDetectionConfig(
            project_id=project_id,
            enabled=defaults.enabled,
            multiplier=defaults.multiplier,
            threshold=defaults.threshold,
            snooze_duration_minutes=defaults.snooze_duration_minutes,
        )
        session.add(row)
    for key in ("enabled", "multiplier", "threshold", "snooze_duration_minutes"):
        if changes.get(key) is not None:
            setattr(row, key, changes[key])
    session.commit()
    return SpikeSettings(row.enabled, row.multiplier, row.threshold, row.snooze_duration_minutes)


def spike_events(
    project_id: int,
    *,
    issue_ids: Sequence[uuid.UUID] = (),
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    order_by: str = "-detected_at",
) -> Select[SpikeEvent]:
    query = select(SpikeEvent).where(SpikeEvent.project_id == project_id)
    if issue_ids:
        query = query.where(SpikeEvent.issue_id.in_(list(issue_ids)))
    if date_from is not None:
        query = query.where(SpikeEvent.detected_at >= date_from)
    if date_to is not None:
        query = query.where(SpikeEvent.detected_at <= date_to)
    column = getattr(SpikeEvent, order_by.lstrip("-"))
    return query.order_by(column.desc() if order_by.startswith("-") else column.asc(), SpikeEvent.id.desc())
