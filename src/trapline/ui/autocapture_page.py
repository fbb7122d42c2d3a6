"""``/project/{id}/settings/autocapture``: exception autocapture on or off (what
``PATCH /api/projects/{id}/`` changes), the web autocapture controls, and the events the
pipeline dropped, counted by reason. Writes validate with the REST API's request schemas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.api.deps import SessionDep, SettingsDep
from trapline.api.projects import ProjectUpdate
from trapline.api.schemas.autocapture import AutocaptureControlsWrite
from trapline.autocapture.controls import Controls
from trapline.autocapture.models import AutocaptureControls
from trapline.autocapture.service import WRITABLE_FIELDS, create_web_controls, web_controls
from trapline.errors import InvalidInput
from trapline.events.models import DroppedEvents
from trapline.projects.models import Project
from trapline.settings import Settings
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.drop_words import dropped_reason
from trapline.ui.errors import UiRoute
from trapline.ui.forms import in_words, lines, no_nul
from trapline.ui.render import redirect, render

__all__ = ["ControlsInput", "controls_body", "dropped_reason", "ignored_patterns", "router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@dataclass(frozen=True)
class ControlsInput:
    """The autocapture controls form: lists are one entry per line."""

    match_type: str = "all"
    sample_rate: str = "1.00"
    url_blocklist: str = ""
    url_triggers: str = ""
    event_triggers: str = ""
    flag_key: str = ""
    flag_variant: str = ""

    @classmethod
    def of(cls, controls: AutocaptureControls | None) -> ControlsInput:
        if controls is None:
            return cls()
        flag = controls.linked_feature_flag if isinstance(controls.linked_feature_flag, dict) else {}
        return cls(
            match_type=controls.match_type,
            sample_rate=f"{controls.sample_rate:.2f}",
            url_blocklist="\n".join(_pattern_texts(controls.url_blocklist)),
            url_triggers="\n".join(_pattern_texts(controls.url_triggers)),
            event_triggers="\n".join(str(name) for name in controls.event_triggers if isinstance(name, str)),
            flag_key=str(flag.get("key") or ""),
            flag_variant=str(flag.get("variant") or ""),
        )


def _pattern_texts(entries: Iterable[Any]) -> list[str]:
    # PostHog's entries are {"url", "matching": "regex"}; a bare string is read the same way.
    texts = []
    for entry in entries:
        pattern = entry.get("url") if isinstance(entry, dict) else entry
        if isinstance(pattern, str) and pattern:
            texts.append(pattern)
    return texts


def controls_body(posted: ControlsInput, current_flag: Any = None) -> dict[str, Any]:
    """The API request body for the form (every field: the form shows them all)."""
    flag: dict[str, Any] | None = None
    key = posted.flag_key.strip()
    if key:
        # A flag picked in PostHog carries its id; it stays while the key is the same.
        kept = current_flag if isinstance(current_flag, dict) and current_flag.get("key") == key else {}
        flag = {**{k: v for k, v in kept.items() if k == "id"}, "key": key}
        if posted.flag_variant.strip():
            flag["variant"] = posted.flag_variant.strip()
    return {
        "match_type": posted.match_type,
        "sample_rate": posted.sample_rate.strip(),
        "linked_feature_flag": flag,
        "event_triggers": lines(posted.event_triggers),
        "url_triggers": [{"url": line, "matching": "regex"} for line in lines(posted.url_triggers)],
        "url_blocklist": [{"url": line, "matching": "regex"} for line in lines(posted.url_blocklist)],
    }


def ignored_patterns(entries: Iterable[Any]) -> list[str]:
    """The URL patterns the controls leave out (not valid regexes), asked of the controls themselves."""
    ignored = []
    for text in _pattern_texts(entries):
        compiled = Controls.from_settings(
            match_type="all",
            sample_rate=1.0,
            linked_feature_flag=None,
            event_triggers=(),
            url_triggers=(),
            url_blocklist=[text],
        )
        if not compiled.url_blocklist:
            ignored.append(text)
    return ignored


def _autocapture_page(
    request: Request,
    session: Session,
    settings: Settings,
    project: Project,
    posted: ControlsInput | None = None,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    controls = web_controls(session, project.id)
    dropped = session.scalars(
        select(DroppedEvents).where(DroppedEvents.project_id == project.id).order_by(DroppedEvents.count.desc())
    ).all()
    ignored = ignored_patterns([*controls.url_blocklist, *controls.url_triggers]) if controls is not None else []
    return render(
        request,
        "settings_autocapture.html",
        {
            "section": "autocapture",
            "controls": controls,
            "posted": posted or ControlsInput.of(controls),
            "problems": list(problems),
            "ignored": ignored,
            "dropped": [(row, dropped_reason(row.reason)) for row in dropped],
            "config_url": f"{settings.base_url}/array/{project.api_token}/config",
        },
        status_code=status,
    )


@router.get("/project/{project_id}/settings/autocapture", name="ui_autocapture")
def autocapture(request: Request, project: UiProject, session: SessionDep, settings: SettingsDep) -> Response:
    return _autocapture_page(request, session, settings, project)


@router.post("/project/{project_id}/settings/autocapture/exceptions", name="ui_autocapture_exceptions")
def autocapture_exceptions(
    project: UiProject, _: CsrfChecked, session: SessionDep, enabled: Annotated[str, Form()] = ""
) -> Response:
    try:
        body = ProjectUpdate.model_validate({"autocapture_exceptions_opt_in": enabled})
    except ValidationError as exc:
        raise InvalidInput(" ".join(in_words(exc))) from None
    if body.autocapture_exceptions_opt_in is not None:
        project.autocapture_exceptions_opt_in = body.autocapture_exceptions_opt_in
    session.commit()
    state = "on" if project.autocapture_exceptions_opt_in else "off"
    return redirect(
        f"/project/{project.id}/settings/autocapture",
        f"Exception autocapture is {state}; browsers follow within seconds.",
    )


def _posted_controls(
    match_type: Annotated[str, Form()] = "all",
    sample_rate: Annotated[str, Form()] = "1.00",
    url_blocklist: Annotated[str, Form()] = "",
    url_triggers: Annotated[str, Form()] = "",
    event_triggers: Annotated[str, Form()] = "",
    flag_key: Annotated[str, Form()] = "",
    flag_variant: Annotated[str, Form()] = "",
) -> ControlsInput:
    no_nul(match_type, sample_rate, url_blocklist, url_triggers, event_triggers, flag_key, flag_variant)
    return ControlsInput(match_type, sample_rate, url_blocklist, url_triggers, event_triggers, flag_key, flag_variant)


@router.post("/project/{project_id}/settings/autocapture/controls", name="ui_autocapture_controls")
def autocapture_controls(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    settings: SettingsDep,
    posted: Annotated[ControlsInput, Depends(_posted_controls)],
) -> Response:
    controls = web_controls(session, project.id)
    try:
        body = AutocaptureControlsWrite.model_validate(
            controls_body(posted, controls.linked_feature_flag if controls else None)
        )
    except ValidationError as exc:
        return _autocapture_page(request, session, settings, project, posted, in_words(exc), status=400)
    fields = body.model_dump(include=set(WRITABLE_FIELDS))
    controls, created = create_web_controls(session, project.id, fields)
    if not created:  # an update, also when someone else made them since the page was read
        for name, value in fields.items():
            setattr(controls, name, value)
        session.commit()
    notice = "The autocapture controls were saved; capture applies them within five seconds."
    skipped = ignored_patterns([*body.url_blocklist, *body.url_triggers])
    if skipped:
        notice += f" Not valid regexes, so ignored: {', '.join(skipped)}."
    return redirect(f"/project/{project.id}/settings/autocapture", notice)


@router.post("/project/{project_id}/settings/autocapture/controls/delete", name="ui_autocapture_controls_delete")
def autocapture_controls_delete(project: UiProject, _: CsrfChecked, session: SessionDep) -> Response:
    controls = web_controls(session, project.id)
    if controls is not None:
        session.delete(controls)
        session.commit()
    return redirect(
        f"/project/{project.id}/settings/autocapture",
        "The autocapture controls were removed: browsers capture every exception again.",
    )
