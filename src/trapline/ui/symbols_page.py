"""``/project/{id}/settings/symbol-sets``: uploaded (and missing) source maps, filtered,
paged and deleted through ``symbols.service``; uploads are the CLI's job."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from trapline.api.deps import ObjectStoreDep, SessionDep, SettingsDep
from trapline.db.types import storable_text
from trapline.errors import NotFound
from trapline.projects.models import Project
from trapline.settings import Settings
from trapline.symbols import service as symbols
from trapline.symbols.models import SymbolSet
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.forms import PAGE_SIZE, Offset, paged
from trapline.ui.render import redirect, render

__all__ = ["router", "symbol_status"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


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
        project.id, ref=None, search=storable_text(search.strip()) or None, status=status, order_by=order
    )
    count, rows = paged(session, stmt, offset)
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


@router.get("/project/{project_id}/settings/symbol-sets/{set_id}/download", name="ui_symbol_set_download")
def symbol_set_download(project: UiProject, session: SessionDep, store: ObjectStoreDep, set_id: str) -> Response:
    # The browser follows to the store's presigned URL (ours for a local folder, S3's otherwise).
    url = symbols.download_url(store, symbols.get_symbol_set(session, project.id, set_id))
    return RedirectResponse(url, status_code=303)


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
