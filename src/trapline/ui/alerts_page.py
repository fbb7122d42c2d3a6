"""``/project/{id}/settings/alerts``: who hears about new, reopened, spiking and frequent issues.

The list shows a project's alerts in words (trigger, filters, masked destination, throttle,
last delivery), the create form and the project's spike detector; ``…/{alert_id}`` edits one
alert and shows its delivery log. A form goes through what the REST API uses: its request
schema (``AlertCreate``), then ``alerts.service``, which checks the destination's address and
stores the alert, so an alert made here is the API's alert. Secrets are only ever shown
masked: the edit form holds the masked values, and the service keeps the stored secret when
one comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from trapline.alerts import service
from trapline.alerts.models import Alert, AlertDelivery
from trapline.alerts.senders import Senders
from trapline.alerts.service import AlertInput
from trapline.alerts.spikes import SpikeSettings
from trapline.api.deps import SessionDep, SettingsDep
from trapline.api.schemas.alerts import AlertCreate, SpikeDetectionConfigUpdate
from trapline.errors import InvalidInput, NotFound
from trapline.projects.models import Project
from trapline.rules.filters import MATCH_ALL
from trapline.settings import Settings
from trapline.ui import filter_form
from trapline.ui.alert_words import (
    DESTINATION_LABELS,
    TRIGGER_CHOICES,
    header_lines,
    label,
    log_row,
    schema_problems,
    service_problem,
    throttle_words,
    trigger_words,
)
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.filter_form import FilterForm
from trapline.ui.forms import (
    PAGE_SIZE,
    Offset,
    PostedFiltersDep,
    builder_context,
    filters_posted,
    no_nul,
    paged,
    pretty_json,
)
from trapline.ui.render import redirect, render

__all__ = ["AlertForm", "SpikeForm", "router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

BASE = "/project/{project_id}/settings/alerts"
_NO_SUCH_ALERT = "There is no such alert in this project."


# --- what the alert form posts -----------------------------------------------------------------


def _text(number: int | None) -> str:
    return "" if number is None else str(number)


@dataclass(frozen=True)
class AlertForm:
    """The alert form's fields as typed; numbers stay text until the schema reads them."""

    name: str = ""
    enabled: bool = True
    trigger: str = "issue_created"
    threshold: str = ""
    window_minutes: str = ""
    interval_minutes: str = ""
    filters: FilterForm = field(default_factory=FilterForm)
    json_mode: bool = False
    filters_json: str = ""
    destination_type: str = "webhook"
    url: str = ""
    secret: str = ""
    headers: str = ""
    to: str = ""
    throttle_max: str = ""
    throttle_minutes: str = ""

    @classmethod
    def of(cls, alert: Alert) -> AlertForm:
        """The alert as the edit form shows it: its secrets masked."""
        shown = service.masked_destination(alert)
        rows = filter_form.from_filters(alert.filters)
        return cls(
            name=alert.name,
            enabled=alert.enabled,
            trigger=alert.trigger,
            threshold=_text(alert.threshold),
            window_minutes=_text(alert.window_minutes),
            interval_minutes=_text(alert.interval_minutes),
            filters=rows or FilterForm(),
            json_mode=rows is None,
            filters_json=pretty_json(alert.filters),
            destination_type=alert.destination_type,
            url=str(shown.get("url") or ""),
            secret=str(shown.get("secret") or ""),
            headers="\n".join(f"{name}: {value}" for name, value in (shown.get("headers") or {}).items()),
            to=", ".join(shown.get("to") or []),
            throttle_max=_text(alert.throttle_max),
            throttle_minutes=_text(alert.throttle_minutes),
        )


def _posted(
    filters: PostedFiltersDep,
    name: Annotated[str, Form()] = "",
    enabled: Annotated[str, Form()] = "",
    trigger: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    window_minutes: Annotated[str, Form()] = "",
    interval_minutes: Annotated[str, Form()] = "",
    destination_type: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
    headers: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
    throttle_max: Annotated[str, Form()] = "",
    throttle_minutes: Annotated[str, Form()] = "",
) -> AlertForm:
    texts = (name, trigger, threshold, window_minutes, interval_minutes, destination_type)
    no_nul(*texts, url, secret, headers, to, throttle_max, throttle_minutes)
    return AlertForm(
        name=name.strip(),
        enabled=bool(enabled),
        trigger=trigger.strip(),
        threshold=threshold.strip(),
        window_minutes=window_minutes.strip(),
        interval_minutes=interval_minutes.strip(),
        filters=filters.form,
        json_mode=filters.json_mode,
        filters_json=filters.filters_json,
        destination_type=destination_type.strip(),
        url=url.strip(),
        secret=secret,
        headers=headers,
        to=to,
        throttle_max=throttle_max.strip(),
        throttle_minutes=throttle_minutes.strip(),
    )


PostedAlert = Annotated[AlertForm, Depends(_posted)]


def _trigger(posted: AlertForm) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": posted.trigger}
    # The number fields stay on the form whatever the trigger (they are hidden only with
    # JavaScript); for the other triggers they mean nothing, and are not sent.
    if posted.trigger in service.THRESHOLD_TRIGGERS:
        trigger.update(
            threshold=posted.threshold or None,
            window_minutes=posted.window_minutes or None,
            interval_minutes=posted.interval_minutes or None,
        )
    return trigger


def _destination(posted: AlertForm, problems: list[str]) -> dict[str, Any]:
    """The destination the form stands for: only the fields its type has."""
    kind = posted.destination_type
    if kind == "email":
        return {"type": kind, "to": posted.to}
    if kind == "webhook":
        headers, bad_lines = header_lines(posted.headers)
        problems.extend(bad_lines)
        return {"type": kind, "url": posted.url, "secret": posted.secret.strip(), "headers": headers}
    return {"type": kind, "url": posted.url}


def _throttle(posted: AlertForm, problems: list[str]) -> dict[str, Any] | None:
    if not posted.throttle_max and not posted.throttle_minutes:
        return None
    if not posted.throttle_max or not posted.throttle_minutes:
        problems.append(
            "Throttle: give both the number of messages and the minutes, or leave both empty for no throttle."
        )
        return None
    return {"max_messages": posted.throttle_max, "per_minutes": posted.throttle_minutes}


def _input(posted: AlertForm, current: Alert | None) -> tuple[AlertInput | None, list[str]]:
    """The service's input for the form, or the problems that keep it from being one."""
    problems: list[str] = []
    destination = _destination(posted, problems)
    if current is not None:
        destination = _unchanged_url_kept(destination, current)
    body = {
        "name": posted.name,
        "enabled": posted.enabled,
        "trigger": _trigger(posted),
        "filters": filters_posted(posted.filters, posted.json_mode, posted.filters_json, problems),
        "destination": destination,
        "throttle": _throttle(posted, problems),
    }
    try:
        valid = AlertCreate.model_validate(body)
    except ValidationError as exc:
        return None, problems + schema_problems(exc, None if posted.json_mode else posted.filters)
    if problems:
        return None, problems
    return AlertInput(
        name=valid.name,
        enabled=valid.enabled,
        trigger=valid.trigger.model_dump(),
        # The form always says what its filters are: JSON "null" is every issue, not "keep".
        filters=valid.filters if valid.filters is not None else dict(MATCH_ALL),
        destination=valid.destination,
        throttle=valid.throttle.model_dump() if valid.throttle is not None else None,
        throttle_given=True,  # the form always says: both fields empty means no throttle
    ), []


def _unchanged_url_kept(destination: dict[str, Any], alert: Alert) -> dict[str, Any]:
    # An apprise URL's masked form may hide nothing (a public ntfy topic) and drops the query:
    # sent back as shown, it stands for the stored URL, not for a new one without its options.
    if destination.get("type") != alert.destination_type or "url" not in destination:
        return destination
    if destination["url"] != service.masked_destination(alert).get("url"):
        return destination
    return {**destination, "url": service.MASK}


# --- the spike detector's form -----------------------------------------------------------------


@dataclass(frozen=True)
class SpikeForm:
    enabled: bool = True
    threshold: str = ""
    multiplier: str = ""
    snooze_minutes: str = ""

    @classmethod
    def of(cls, settings: SpikeSettings) -> SpikeForm:
        return cls(
            enabled=settings.enabled,
            threshold=str(settings.threshold),
            multiplier=str(settings.multiplier),
            snooze_minutes=str(settings.snooze_duration_minutes),
        )


def _posted_spikes(
    enabled: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    multiplier: Annotated[str, Form()] = "",
    snooze_minutes: Annotated[str, Form()] = "",
) -> SpikeForm:
    no_nul(threshold, multiplier, snooze_minutes)
    return SpikeForm(bool(enabled), threshold.strip(), multiplier.strip(), snooze_minutes.strip())


PostedSpikes = Annotated[SpikeForm, Depends(_posted_spikes)]


def _spike_changes(posted: SpikeForm) -> tuple[dict[str, Any], list[str]]:
    fields = {
        "threshold": posted.threshold,
        "multiplier": posted.multiplier,
        "snooze_duration_minutes": posted.snooze_minutes,
    }
    # Every field is on the form: an empty one is a mistake, not "keep what is stored".
    problems = [f"{label(name)}: enter a whole number." for name, text in fields.items() if not text]
    if problems:
        return {}, problems
    try:
        valid = SpikeDetectionConfigUpdate.model_validate({**fields, "enabled": posted.enabled})
    except ValidationError as exc:
        return {}, schema_problems(exc, None)
    return valid.model_dump(), []


# --- showing alerts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    trigger: str
    words: list[tuple[str, str]]
    destination: dict[str, Any]
    throttle: str | None
    last: AlertDelivery | None


def _row(session: Session, alert: Alert) -> AlertRow:
    return AlertRow(
        alert=alert,
        trigger=trigger_words(alert.trigger, alert.threshold, alert.window_minutes, alert.interval_minutes),
        words=filter_form.describe_parts(alert.filters),
        destination=service.masked_destination(alert),
        throttle=throttle_words(alert.throttle_max, alert.throttle_minutes),
        last=service.last_delivery(session, alert),
    )


def _form_context(posted: AlertForm, settings: Settings) -> dict[str, Any]:
    if not posted.filters_json:
        posted = replace(posted, filters_json=pretty_json(MATCH_ALL))
    return {
        "posted": posted,
        # The issue's own properties (status, assignee) can be tested too: the stage reads them.
        **builder_context(posted.filters, issue_types=True),
        "trigger_choices": TRIGGER_CHOICES,
        "threshold_triggers": service.THRESHOLD_TRIGGERS,
        "destination_labels": DESTINATION_LABELS,
        "email_ready": bool(settings.smtp_host),
        "mask": service.MASK,
    }


def _base(project_id: int) -> str:
    return BASE.format(project_id=project_id)


def _list_page(
    request: Request,
    session: Session,
    project: Project,
    settings: Settings,
    posted: AlertForm,
    problems: Sequence[str] = (),
    spikes: SpikeForm | None = None,
    spike_problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    detector = service.spike_settings(session, project.id)
    context = _form_context(posted, settings)
    context.update(
        section="alerts",
        base=_base(project.id),
        alerts=[_row(session, alert) for alert in session.scalars(service.list_alerts(project.id))],
        problems=list(problems),
        action=_base(project.id),
        detector=detector,
        spikes=spikes or SpikeForm.of(detector),
        spike_problems=list(spike_problems),
        retry_hours=settings.alerts_retry_hours,
    )
    return render(request, "alerts.html", context, status_code=status)


def _edit_page(
    request: Request,
    session: Session,
    project: Project,
    settings: Settings,
    alert: Alert,
    posted: AlertForm,
    offset: int = 0,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    count, deliveries = paged(session, service.alert_deliveries(project.id, alert_id=alert.id), offset)
    context = _form_context(posted, settings)
    context.update(
        section="alerts",
        base=_base(project.id),
        row=_row(session, alert),
        problems=list(problems),
        action=f"{_base(project.id)}/{alert.id}",
        deliveries=[log_row(delivery) for delivery in deliveries],
        count=count,
        offset=offset,
        page_size=PAGE_SIZE,
    )
    return render(request, "alerts_edit.html", context, status_code=status)


# --- routes ------------------------------------------------------------------------------------


def _alert(session: Session, project_id: int, text: str) -> Alert:
    try:
        return service.get_alert(session, project_id, uuid.UUID(text))
    except (ValueError, NotFound):
        raise NotFound(_NO_SUCH_ALERT) from None


def _back(project_id: int, alert_id: uuid.UUID, back: str) -> str:
    # Only ever one of our two pages: "back" is a choice, never a URL.
    if back == "edit":
        return f"{_base(project_id)}/{alert_id}"
    return f"{_base(project_id)}#alert-{alert_id}"


def _test_notice(delivery: AlertDelivery) -> str:
    if delivery.status == "delivered":
        if delivery.response_code is None:
            return "Sent: the test notification was accepted."
        return f"Sent: the receiver answered {delivery.response_code}."
    return f"The test failed: {delivery.error or 'no answer'}"


@router.get(BASE, name="ui_alerts")
def list_page(request: Request, project: UiProject, session: SessionDep, settings: SettingsDep) -> Response:
    return _list_page(request, session, project, settings, AlertForm())


@router.post(BASE, name="ui_alerts_create")
def create(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    posted: PostedAlert,
) -> Response:
    given, problems = _input(posted, None)
    if given is not None:
        try:
            alert = service.create_alert(session, project.id, given, settings)
        except InvalidInput as exc:
            session.rollback()
            problems = [service_problem(exc, None if posted.json_mode else posted.filters)]
        else:
            return redirect(f"{_base(project.id)}#alert-{alert.id}", f"The alert “{alert.name}” was created.")
    return _list_page(request, session, project, settings, posted, problems, status=400)


# Registered before /{alert_id}, whose POST would take "spike-detector" for an alert id.
@router.post(BASE + "/spike-detector", name="ui_alerts_spike_detector")
def save_spike_detector(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    posted: PostedSpikes,
) -> Response:
    changes, problems = _spike_changes(posted)
    if problems:
        return _list_page(
            request, session, project, settings, AlertForm(), spikes=posted, spike_problems=problems, status=400
        )
    saved = service.update_spike_settings(session, project.id, changes)
    notice = "The spike detector was saved."
    if not saved.enabled:
        notice = "The spike detector is off: no issue is reported spiking."
    return redirect(f"{_base(project.id)}#spike-detector", notice)


@router.get(BASE + "/{alert_id}", name="ui_alert")
def edit_page(
    request: Request,
    project: UiProject,
    session: SessionDep,
    settings: SettingsDep,
    alert_id: str,
    offset: Offset = 0,
) -> Response:
    alert = _alert(session, project.id, alert_id)
    return _edit_page(request, session, project, settings, alert, AlertForm.of(alert), offset)


@router.post(BASE + "/{alert_id}", name="ui_alert_update")
def update(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    posted: PostedAlert,
    alert_id: str,
) -> Response:
    alert = _alert(session, project.id, alert_id)
    given, problems = _input(posted, alert)
    if given is not None:
        try:
            service.update_alert(session, alert, given, settings)
        except InvalidInput as exc:
            session.rollback()
            problems = [service_problem(exc, None if posted.json_mode else posted.filters)]
        else:
            return redirect(f"{_base(project.id)}#alert-{alert.id}", f"The alert “{alert.name}” was saved.")
    return _edit_page(request, session, project, settings, alert, posted, problems=problems, status=400)


@router.post(BASE + "/{alert_id}/delete", name="ui_alert_delete")
def delete(project: UiProject, _: CsrfChecked, session: SessionDep, alert_id: str) -> Response:
    alert = _alert(session, project.id, alert_id)
    name = alert.name
    service.delete_alert(session, project.id, alert.id)
    return redirect(_base(project.id), f"The alert “{name}” was deleted, with its delivery log.")


@router.post(BASE + "/{alert_id}/toggle", name="ui_alert_toggle")
def toggle(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    alert_id: str,
    enabled: Annotated[str, Form(max_length=10)] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    alert = _alert(session, project.id, alert_id)
    # The state wanted, not "flip": a form sent twice must not switch the alert back.
    if enabled not in ("true", "false"):
        raise InvalidInput("Choose whether to enable or disable the alert.", attr="enabled")
    service.update_alert(session, alert, AlertInput(enabled=enabled == "true"), settings)
    notice = (
        f"The alert “{alert.name}” is enabled."
        if alert.enabled
        else f"The alert “{alert.name}” is disabled: it sends nothing until it is enabled again."
    )
    return redirect(_back(project.id, alert.id, back), notice)


@router.post(BASE + "/{alert_id}/test", name="ui_alert_test")
def send_test(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    alert_id: str,
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    alert = _alert(session, project.id, alert_id)
    senders: Senders = request.app.state.senders
    delivery = service.send_test(session, alert, project, senders, settings.base_url)
    return redirect(_back(project.id, alert.id, back), _test_notice(delivery))
