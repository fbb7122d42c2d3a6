"""Project settings pages: autocapture, symbol sets, releases and SDK setup.

- ``/project/{id}/settings/autocapture``: exception autocapture on or off (what
  ``PATCH /api/projects/{id}/`` changes), the web autocapture controls, and the events the
  pipeline dropped, counted by reason;
- ``/project/{id}/settings/symbol-sets``: uploaded (and missing) source maps, filtered,
  paged and deleted through ``symbols.service``; uploads are the CLI's job;
- ``/project/{id}/settings/releases``: releases with their symbol sets, made and deleted
  through ``releases.service``;
- ``/project/{id}/settings/sdk``: copy-paste setup for the SDKs and the CLI, filled in.

Writes validate with the REST API's request schemas, so a value refused there is refused
here with the same reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trapline.api.deps import ObjectStoreDep, SessionDep, SettingsDep
from trapline.api.projects import ProjectUpdate
from trapline.api.schemas.autocapture import AutocaptureControlsWrite
from trapline.api.schemas.releases import ReleaseWrite
from trapline.autocapture.controls import BLOCKED_URL, NOT_SAMPLED, NOT_TRIGGERED, Controls
from trapline.autocapture.models import AutocaptureControls
from trapline.autocapture.service import create_web_controls, web_controls
from trapline.errors import InvalidInput, NotFound
from trapline.events.models import DroppedEvents
from trapline.issues.queries import text_param
from trapline.pipeline.suppression import SUPPRESSED
from trapline.projects.models import Project
from trapline.releases import service as releases
from trapline.releases.models import Release
from trapline.sentry.auth import dsn
from trapline.settings import Settings
from trapline.symbols import service as symbols
from trapline.symbols.models import SymbolSet
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.render import redirect, render

__all__ = [
    "ControlsInput",
    "Snippet",
    "controls_body",
    "dropped_reason",
    "ignored_patterns",
    "router",
    "sdk_snippets",
    "symbol_status",
]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 50
_FIELD_WORDS = {
    "match_type": "Match",
    "sample_rate": "Sample rate",
    "linked_feature_flag": "Linked feature flag",
    "event_triggers": "Event triggers",
    "url_triggers": "URL triggers",
    "url_blocklist": "URL blocklist",
    "autocapture_exceptions_opt_in": "Exception autocapture",
    "version": "Version",
    "project": "App name",
    "hash_id": "Hash id",
}


def _no_nul(*texts: str) -> None:
    # PostgreSQL text cannot hold NUL; the API refuses it in every body, and so do forms.
    if any("\x00" in text for text in texts):
        raise InvalidInput("Text cannot contain NUL characters.")


def _in_words(exc: ValidationError) -> list[str]:
    found = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error.get("loc") else ""
        found.append(f"{_FIELD_WORDS.get(where, where or 'The form')}: {error.get('msg', 'is not valid')}")
    return found


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _pages(session: Session, stmt: Select[Any], offset: int) -> tuple[int, list[Any]]:
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return count, list(session.scalars(stmt.limit(PAGE_SIZE).offset(offset)))


Offset = Annotated[int, Query(ge=0, le=2**53)]


# --- autocapture ---------------------------------------------------------------------------------


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
        "event_triggers": _lines(posted.event_triggers),
        "url_triggers": [{"url": line, "matching": "regex"} for line in _lines(posted.url_triggers)],
        "url_blocklist": [{"url": line, "matching": "regex"} for line in _lines(posted.url_blocklist)],
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


_DROPPED_WORDS = {
    SUPPRESSED: "dropped by a suppression rule",
    "issue_suppressed": "of a suppressed issue",
    "invalid_exception": "with an exception list that could not be read",
    BLOCKED_URL: "autocaptured on a blocklisted URL",
    NOT_TRIGGERED: "autocaptured in a session no trigger started",
    NOT_SAMPLED: "autocaptured in a session outside the sample rate",
}


def dropped_reason(reason: str) -> str:
    if reason in _DROPPED_WORDS:
        return _DROPPED_WORDS[reason]
    if reason.startswith("sentry_"):
        return f"Sentry {reason.removeprefix('sentry_').replace('_', ' ')} items (only events are kept)"
    return reason.replace("_", " ")


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
        raise InvalidInput(" ".join(_in_words(exc))) from None
    if body.autocapture_exceptions_opt_in is not None:
        project.autocapture_exceptions_opt_in = body.autocapture_exceptions_opt_in
    session.commit()
    state = "on" if project.autocapture_exceptions_opt_in else "off"
    return redirect(
        f"/project/{project.id}/settings/autocapture",
        f"Exception autocapture is {state}; browsers follow within seconds.",
    )


# What the form sets: every field the API lets a client write.
_CONTROL_FIELDS = {
    "match_type",
    "sample_rate",
    "linked_feature_flag",
    "event_triggers",
    "url_triggers",
    "url_blocklist",
}


def _posted_controls(
    match_type: Annotated[str, Form()] = "all",
    sample_rate: Annotated[str, Form()] = "1.00",
    url_blocklist: Annotated[str, Form()] = "",
    url_triggers: Annotated[str, Form()] = "",
    event_triggers: Annotated[str, Form()] = "",
    flag_key: Annotated[str, Form()] = "",
    flag_variant: Annotated[str, Form()] = "",
) -> ControlsInput:
    _no_nul(match_type, sample_rate, url_blocklist, url_triggers, event_triggers, flag_key, flag_variant)
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
        return _autocapture_page(request, session, settings, project, posted, _in_words(exc), status=400)
    fields = body.model_dump(include=_CONTROL_FIELDS)
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


# --- symbol sets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolStatus:
    label: str
    css: str
    detail: str


def symbol_status(row: SymbolSet) -> SymbolStatus:
    """What became of a symbol set: uploaded, waiting for its upload to be confirmed, missing, failed."""
    if row.failure_reason:
        return SymbolStatus("failed", "disabled", row.failure_reason)
    if row.storage_ptr is None:
        return SymbolStatus("missing", "warn", "Frames asked for this chunk and nothing was uploaded for it.")
    if row.content_hash is None:
        return SymbolStatus("not confirmed", "warn", "An upload was started and never confirmed.")
    return SymbolStatus("uploaded", "ok", "")


_SYMBOL_STATUSES = (("all", "All"), ("valid", "Uploaded"), ("invalid", "Missing or not uploaded"))
_SYMBOL_ORDERS = (("-created_at", "Newest first"), ("-last_used", "Last used"), ("ref", "Ref"))


def _cli_env(settings: Settings, project: Project) -> str:
    return (
        f"export POSTHOG_CLI_HOST={settings.base_url}\n"
        f"export POSTHOG_CLI_ENV_ID={project.id}\n"
        "export POSTHOG_CLI_TOKEN=phx_…   # a personal API key with error_tracking:write (see /account)\n"
    )


def _symbols_url(project_id: int, status: str, search: str) -> str:
    query = urlencode({k: v for k, v in (("status", status), ("search", search)) if v and v != "all"})
    return f"/project/{project_id}/settings/symbol-sets" + (f"?{query}" if query else "")


@router.get("/project/{project_id}/settings/symbol-sets", name="ui_symbol_sets")
def symbol_sets(
    request: Request,
    project: UiProject,
    session: SessionDep,
    settings: SettingsDep,
    offset: Offset = 0,
    status: Annotated[str, Query()] = "all",
    search: Annotated[str, Query(max_length=500)] = "",
    order: Annotated[str, Query()] = "-created_at",
) -> Response:
    stmt = symbols.list_query(
        project.id, ref=None, search=text_param(search.strip()) or None, status=status, order_by=order
    )
    count, rows = _pages(session, stmt, offset)
    return render(
        request,
        "settings_symbol_sets.html",
        {
            "section": "symbols",
            "rows": [(row, symbol_status(row)) for row in rows],
            "count": count,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "status": status,
            "search": search,
            "order": order,
            "statuses": _SYMBOL_STATUSES,
            "orders": _SYMBOL_ORDERS,
            "cli_env": _cli_env(settings, project),
        },
    )


def _delete_sets(session: Session, store: ObjectStoreDep, project_id: int, ids: Iterable[str]) -> int:
    rows = []
    for set_id in dict.fromkeys(ids):
        try:
            rows.append(symbols.get_symbol_set(session, project_id, set_id))
        except NotFound:
            continue  # already gone, as the API's bulk delete treats it
    return symbols.delete_symbol_sets(session, store, rows)


def _deleted_notice(count: int) -> str:
    if count == 0:
        return "Nothing was deleted: choose the symbol sets to delete first."
    return f"{count} symbol set{'' if count == 1 else 's'} deleted. Frames already resolved with them stay resolved."


@router.post("/project/{project_id}/settings/symbol-sets/delete", name="ui_symbol_sets_delete")
def symbol_sets_delete(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    store: ObjectStoreDep,
    ids: Annotated[list[str] | None, Form()] = None,
    status: Annotated[str, Form()] = "all",
    search: Annotated[str, Form()] = "",
) -> Response:
    deleted = _delete_sets(session, store, project.id, ids or [])
    return redirect(_symbols_url(project.id, status, search), _deleted_notice(deleted))


@router.post("/project/{project_id}/settings/symbol-sets/{set_id}/delete", name="ui_symbol_set_delete")
def symbol_set_delete(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    store: ObjectStoreDep,
    set_id: str,
    status: Annotated[str, Form()] = "all",
    search: Annotated[str, Form()] = "",
) -> Response:
    symbols.delete_symbol_sets(session, store, [symbols.get_symbol_set(session, project.id, set_id)])
    return redirect(_symbols_url(project.id, status, search), _deleted_notice(1))


# --- releases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseInput:
    version: str = ""
    project: str = ""
    hash_id: str = ""


def _releases_page(
    request: Request,
    session: Session,
    project: Project,
    offset: int,
    posted: ReleaseInput | None = None,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    stmt = select(Release).where(Release.project_id == project.id).order_by(Release.created_at.desc(), Release.id)
    count, rows = _pages(session, stmt, offset)
    sets = dict(
        session.execute(
            select(SymbolSet.release_id, func.count())
            .where(SymbolSet.project_id == project.id, SymbolSet.release_id.in_([r.id for r in rows]))
            .group_by(SymbolSet.release_id)
        ).all()
    )
    return render(
        request,
        "settings_releases.html",
        {
            "section": "releases",
            "rows": [(row, sets.get(row.id, 0)) for row in rows],
            "count": count,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "posted": posted or ReleaseInput(),
            "problems": list(problems),
        },
        status_code=status,
    )


@router.get("/project/{project_id}/settings/releases", name="ui_releases")
def releases_page(request: Request, project: UiProject, session: SessionDep, offset: Offset = 0) -> Response:
    return _releases_page(request, session, project, offset)


@router.post("/project/{project_id}/settings/releases", name="ui_releases_create")
def releases_create(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    version: Annotated[str, Form()] = "",
    app: Annotated[str, Form()] = "",
    hash_id: Annotated[str, Form()] = "",
) -> Response:
    posted = ReleaseInput(version.strip(), app.strip(), hash_id.strip())
    _no_nul(posted.version, posted.project, posted.hash_id)
    try:
        body = ReleaseWrite.model_validate(
            {"version": posted.version, "project": posted.project, "hash_id": posted.hash_id or None}
        )
        release = releases.create_release(
            session, project.id, version=body.version, project_name=body.project, hash_id=body.hash_id, metadata=None
        )
    except ValidationError as exc:
        return _releases_page(request, session, project, 0, posted, _in_words(exc), status=400)
    except InvalidInput as exc:
        session.rollback()
        return _releases_page(request, session, project, 0, posted, [exc.detail], status=400)
    return redirect(
        f"/project/{project.id}/settings/releases", f"Release {release.project_name} {release.version} created."
    )


@router.post("/project/{project_id}/settings/releases/{release_id}/delete", name="ui_release_delete")
def release_delete(project: UiProject, _: CsrfChecked, session: SessionDep, release_id: str) -> Response:
    try:
        parsed = uuid.UUID(release_id)
    except ValueError:
        raise NotFound("There is no such release in this project.") from None
    release = releases.get_release(session, project.id, parsed)
    name = f"{release.project_name} {release.version}"
    session.delete(release)
    session.commit()
    return redirect(f"/project/{project.id}/settings/releases", f"Release {name} deleted, with its symbol sets.")


# --- SDK setup -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    title: str
    language: str
    code: str
    note: str = ""
    install: str = ""


def sdk_snippets(*, host: str, token: str, sentry_dsn: str, project_id: int, js_served: bool) -> list[Snippet]:
    """The setup snippets with this project's values in them."""
    served = (
        "Trapline serves posthog-js's scripts (TRAPLINE_POSTHOG_JS_DIST is set)."
        if js_served
        else "Needs TRAPLINE_POSTHOG_JS_DIST on the server (a posthog-js installation), which is not set: "
        "until it is, /static/array.js answers 404."
    )
    return [
        Snippet(
            "posthog-js (npm)",
            "js",
            'import posthog from "posthog-js"\n'
            "// Bundles exception capture, so nothing is loaded from /static/:\n"
            'import "posthog-js/dist/exception-autocapture"\n\n'
            f'posthog.init("{token}", {{ api_host: "{host}" }})\n'
            "// Manual captures work whether or not autocapture is on:\n"
            'posthog.captureException(new Error("hello from Trapline"))',
            "Unhandled errors and rejections are captured when exception autocapture is on for the project: "
            "posthog-js reads it from the remote config (see Autocapture), so the page needs no option for it.",
            install="npm install posthog-js",
        ),
        Snippet(
            "posthog-js (script tag)",
            "html",
            f'<script src="{host}/static/array.js"></script>\n'
            f'<script>posthog.init("{token}", {{ api_host: "{host}" }})</script>',
            served,
        ),
        Snippet(
            "posthog-python",
            "python",
            "from posthog import Posthog\n\n"
            f'posthog = Posthog("{token}", host="{host}", enable_exception_autocapture=True)\n'
            'posthog.capture_exception(ValueError("hello from Trapline"))',
            "enable_exception_autocapture captures uncaught exceptions, in the main thread and in others.",
            install="pip install posthog",
        ),
        Snippet(
            "posthog-node",
            "js",
            'import { PostHog } from "posthog-node"\n\n'
            f'const posthog = new PostHog("{token}", {{\n'
            f'  host: "{host}",\n'
            "  enableExceptionAutocapture: true,\n"
            "})\n"
            'posthog.captureException(new Error("hello from Trapline"))\n'
            "await posthog.shutdown()",
            install="npm install posthog-node",
        ),
        Snippet(
            "sentry-sdk (Python)",
            "python",
            f'import sentry_sdk\n\nsentry_sdk.init(dsn="{sentry_dsn}")',
            "Sentry's SDKs report into the same issues: only the DSN changes.",
            install="pip install sentry-sdk",
        ),
        Snippet(
            "@sentry/browser",
            "js",
            f'import * as Sentry from "@sentry/browser"\n\nSentry.init({{ dsn: "{sentry_dsn}" }})',
            install="npm install @sentry/browser",
        ),
        Snippet(
            "Source maps (trapline sourcemap)",
            "sh",
            f"export POSTHOG_CLI_HOST={host}\n"
            f"export POSTHOG_CLI_ENV_ID={project_id}\n"
            "export POSTHOG_CLI_TOKEN=phx_…   # a personal API key with error_tracking:write\n"
            "trapline sourcemap process --directory dist   # inject chunk ids, then upload",
            "Run it on the build output before deploying. PostHog's own posthog-cli reads the same variables "
            "(and the newer POSTHOG_CLI_API_KEY and POSTHOG_CLI_PROJECT_ID).",
        ),
    ]


@router.get("/project/{project_id}/settings/sdk", name="ui_sdk")
def sdk(request: Request, project: UiProject, settings: SettingsDep) -> Response:
    sentry_dsn = dsn(settings.public_url, project.sentry_public_key, project.id)
    return render(
        request,
        "settings_sdk.html",
        {
            "section": "sdk",
            "host": settings.base_url,
            "sentry_dsn": sentry_dsn,
            "snippets": sdk_snippets(
                host=settings.base_url,
                token=project.api_token,
                sentry_dsn=sentry_dsn,
                project_id=project.id,
                js_served=settings.posthog_js_dist is not None,
            ),
        },
    )
