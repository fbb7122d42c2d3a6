"""``/project/{id}/settings/releases``: releases with their symbol sets, made, edited and
deleted through ``releases.service`` and validated with the API's schema."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trapline.api.deps import SessionDep
from trapline.api.schemas.releases import ReleaseWrite
from trapline.errors import InvalidInput, NotFound
from trapline.projects.models import Project
from trapline.releases import service as releases
from trapline.releases.models import Release
from trapline.symbols.models import SymbolSet
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.forms import PAGE_SIZE, Offset, in_words, no_nul, paged
from trapline.ui.render import redirect, render

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@dataclass(frozen=True)
class ReleaseInput:
    version: str = ""
    project: str = ""
    hash_id: str = ""

    def body(self) -> ReleaseWrite:
        """What was typed, as the API would take it (raises ``ValidationError``)."""
        return ReleaseWrite.model_validate(
            {"version": self.version, "project": self.project, "hash_id": self.hash_id or None}
        )


def _posted(
    version: Annotated[str, Form()] = "", app: Annotated[str, Form()] = "", hash_id: Annotated[str, Form()] = ""
) -> ReleaseInput:
    posted = ReleaseInput(version.strip(), app.strip(), hash_id.strip())
    no_nul(posted.version, posted.project, posted.hash_id)
    return posted


# The create and edit forms' fields, trimmed; NUL refused.
PostedRelease = Annotated[ReleaseInput, Depends(_posted)]


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
    count, rows = paged(session, stmt, offset)
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
    request: Request, project: UiProject, _: CsrfChecked, session: SessionDep, posted: PostedRelease
) -> Response:
    try:
        body = posted.body()
        release = releases.create_release(
            session, project.id, version=body.version, project_name=body.project, hash_id=body.hash_id, metadata=None
        )
    except ValidationError as exc:
        return _releases_page(request, session, project, 0, posted, in_words(exc), status=400)
    except InvalidInput as exc:
        session.rollback()
        return _releases_page(request, session, project, 0, posted, [exc.detail], status=400)
    return redirect(
        f"/project/{project.id}/settings/releases", f"Release {release.project_name} {release.version} created."
    )


def _release(session: Session, project: Project, release_id: str) -> Release:
    try:
        parsed = uuid.UUID(release_id)
    except ValueError:
        raise NotFound("There is no such release in this project.") from None
    return releases.get_release(session, project.id, parsed)


def _edit_page(
    request: Request,
    release: Release,
    posted: ReleaseInput,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    return render(
        request,
        "settings_release_edit.html",
        {"section": "releases", "release": release, "posted": posted, "problems": list(problems)},
        status_code=status,
    )


@router.get("/project/{project_id}/settings/releases/{release_id}/edit", name="ui_release_edit")
def release_edit(request: Request, project: UiProject, session: SessionDep, release_id: str) -> Response:
    release = _release(session, project, release_id)
    return _edit_page(request, release, ReleaseInput(release.version, release.project_name, release.hash_id))


@router.post("/project/{project_id}/settings/releases/{release_id}/edit", name="ui_release_save")
def release_save(
    request: Request,
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    release_id: str,
    posted: PostedRelease,
) -> Response:
    release = _release(session, project, release_id)
    if not posted.version or not posted.project:
        # The API keeps a field sent empty; a form that was emptied means a mistake.
        return _edit_page(request, release, posted, ["A release needs a version and an app name."], status=400)
    try:
        body = posted.body()
        releases.update_release(
            session, release, version=body.version, project_name=body.project, hash_id=body.hash_id, metadata=None
        )
    except ValidationError as exc:
        return _edit_page(request, release, posted, in_words(exc), status=400)
    except InvalidInput as exc:
        session.rollback()
        return _edit_page(request, release, posted, [exc.detail], status=400)  # rolled back: reads as stored
    return redirect(
        f"/project/{project.id}/settings/releases", f"Release {release.project_name} {release.version} saved."
    )


@router.post("/project/{project_id}/settings/releases/{release_id}/delete", name="ui_release_delete")
def release_delete(project: UiProject, _: CsrfChecked, session: SessionDep, release_id: str) -> Response:
    release = _release(session, project, release_id)
    name = f"{release.project_name} {release.version}"
    session.delete(release)
    session.commit()
    return redirect(f"/project/{project.id}/settings/releases", f"Release {name} deleted, with its symbol sets.")
