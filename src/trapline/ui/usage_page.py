"""``/project/{id}/settings/usage``: events stored and dropped per day and reason, the queue,
storage sizes, and the forms for the project's rate limits and retention (saved through
``limits.service``, checked as the REST API checks them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy.orm import Session

from trapline.api.deps import DatabaseDep, ObjectStoreDep, SessionDep, SettingsDep
from trapline.db.types import utcnow
from trapline.errors import InvalidInput
from trapline.limits import service as limits
from trapline.objects.store import ObjectStore
from trapline.projects.models import Project
from trapline.settings import Settings
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.drop_words import dropped_reason
from trapline.ui.errors import UiRoute
from trapline.ui.forms import no_nul
from trapline.ui.render import redirect, render
from trapline.usage.command import human_size
from trapline.usage.report import installation_usage, project_usage

__all__ = ["LimitsInput", "router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

_DAYS = 30
# The form's fields, in the order shown, with what each means.
_LABELS: Mapping[str, str] = {
    "project_rate_limit_value": "Project limit (events per bucket)",
    "project_rate_limit_bucket_size_minutes": "Project bucket (minutes)",
    "per_issue_rate_limit_value": "Per-issue limit (events per bucket)",
    "per_issue_rate_limit_bucket_size_minutes": "Per-issue bucket (minutes)",
    "retention_days": "Keep events for (days)",
    "max_events_per_issue": "Keep at most (events per issue)",
}


@dataclass(frozen=True)
class LimitsInput:
    """The limits form as typed: empty means no limit (or the installation's default)."""

    project_rate_limit_value: str = ""
    project_rate_limit_bucket_size_minutes: str = ""
    per_issue_rate_limit_value: str = ""
    per_issue_rate_limit_bucket_size_minutes: str = ""
    retention_days: str = ""
    max_events_per_issue: str = ""

    @classmethod
    def of(cls, view: limits.SettingsView) -> LimitsInput:
        return cls(**{f.name: "" if getattr(view, f.name) is None else str(getattr(view, f.name)) for f in fields(cls)})

    def changes(self) -> dict[str, int | None]:
        """Every field, as the service takes it; raises ``InvalidInput`` naming a bad one."""
        parsed: dict[str, int | None] = {}
        for f in fields(self):
            text = getattr(self, f.name).strip().replace(",", "").replace("_", "")
            if not text:
                parsed[f.name] = None
                continue
            try:
                parsed[f.name] = int(text)
            except ValueError:
                raise InvalidInput(f"{_LABELS[f.name]}: a whole number is required.", attr=f.name) from None
        try:
            return limits.validate_changes(parsed)
        except InvalidInput as exc:
            raise InvalidInput(f"{_LABELS.get(exc.attr or '', exc.attr)}: {exc.detail}", attr=exc.attr) from None


def _posted(
    project_rate_limit_value: Annotated[str, Form()] = "",
    project_rate_limit_bucket_size_minutes: Annotated[str, Form()] = "",
    per_issue_rate_limit_value: Annotated[str, Form()] = "",
    per_issue_rate_limit_bucket_size_minutes: Annotated[str, Form()] = "",
    retention_days: Annotated[str, Form()] = "",
    max_events_per_issue: Annotated[str, Form()] = "",
) -> LimitsInput:
    posted = LimitsInput(
        project_rate_limit_value,
        project_rate_limit_bucket_size_minutes,
        per_issue_rate_limit_value,
        per_issue_rate_limit_bucket_size_minutes,
        retention_days,
        max_events_per_issue,
    )
    no_nul(*(getattr(posted, f.name) for f in fields(posted)))
    return posted


PostedLimits = Annotated[LimitsInput, Depends(_posted)]


def _usage_page(
    request: Request,
    session: Session,
    db: DatabaseDep,
    settings: Settings,
    store: ObjectStore,
    project: Project,
    posted: LimitsInput | None = None,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    pressure = getattr(request.app.state, "pressure", None)
    with db.queue.session(write=False) as queue:
        usage = project_usage(session, queue, project, today=utcnow().date(), days=_DAYS, store=store)
        installation = installation_usage(
            session,
            queue,
            db.engine,
            disk=pressure.disk if pressure is not None else None,
            objects_folder=settings.objects_folder,
        )
    refusal = pressure.installation() if pressure is not None else None
    limited = pressure.project(project.id) if pressure is not None else None
    return render(
        request,
        "settings_usage.html",
        {
            "section": "usage",
            "usage": usage,
            "active_days": [day for day in usage.days if day.stored or day.dropped],
            "reasons": [(reason, dropped_reason(reason)) for reason in usage.reasons],
            "all_time": sorted(usage.dropped_all_time.items(), key=lambda item: (-item[1], item[0])),
            "dropped_reason": dropped_reason,
            "installation": installation,
            "refusal": refusal,
            "limited": limited,
            "size": human_size,
            "days": _DAYS,
            "default_retention_days": settings.retention_days,
            "labels": _LABELS,
            "posted": posted or LimitsInput.of(limits.get_settings(session, project.id)),
            "problems": list(problems),
        },
        status_code=status,
    )


@router.get("/project/{project_id}/settings/usage", name="ui_usage")
def usage_page(
    request: Request,
    project: UiProject,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
    store: ObjectStoreDep,
) -> Response:
    return _usage_page(request, session, db, settings, store, project)


@router.post("/project/{project_id}/settings/usage/limits", name="ui_usage_limits")
def usage_limits(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
    store: ObjectStoreDep,
    posted: PostedLimits,
) -> Response:
    try:
        limits.update_settings(session, project.id, posted.changes())
    except InvalidInput as exc:
        session.rollback()
        return _usage_page(request, session, db, settings, store, project, posted, [exc.detail], status=400)
    return redirect(f"/project/{project.id}/settings/usage", "Limits and retention saved; they apply within seconds.")
