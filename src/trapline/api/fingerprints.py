"""``/error_tracking/fingerprints``: which issue each fingerprint belongs to (read-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Response
from sqlalchemy import select

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.fingerprints import FingerprintOut
from trapline.db.types import storable_text
from trapline.errors import InvalidInput, NotFound
from trapline.issues.models import IssueFingerprint

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/fingerprints", tags=["error_tracking"])
RESOURCE = "fingerprints"
_ERRORS = error_responses(*STANDARD_ERRORS)


def serialize(fp: IssueFingerprint) -> dict[str, Any]:
    return {
        "id": fp.id,
        "fingerprint": fp.fingerprint,
        "issue_id": fp.issue_id,
        "created_at": fp.created_at,
        "first_seen": fp.first_seen,
    }


def _uuid(value: str, message: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(message) from None


@router.get("", name=f"error_tracking_{RESOURCE}_list", response_model=Page[FingerprintOut], responses=_ERRORS)
def list_(
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    issue_id: Annotated[str | None, Query(description="Only the fingerprints of this issue.")] = None,
) -> dict[str, Any]:
    stmt = select(IssueFingerprint).where(IssueFingerprint.project_id == project.id)
    if issue_id:  # as in PostHog, an empty ?issue_id= means no filter, not a malformed id
        stmt = stmt.where(IssueFingerprint.issue_id == _uuid(issue_id, "issue_id must be a valid UUID"))
    return paginate(session, stmt.order_by(IssueFingerprint.created_at, IssueFingerprint.id), page, serialize)


@router.get("/resolve", name=f"error_tracking_{RESOURCE}_resolve", response_model=FingerprintOut, responses=_ERRORS)
def resolve(
    project: ReadProject,
    session: SessionDep,
    fingerprint: Annotated[str | None, Query(description="The fingerprint value to look up.")] = None,
) -> dict[str, Any]:
    if not fingerprint:
        raise InvalidInput("fingerprint query parameter is required")
    fp = session.scalar(
        select(IssueFingerprint).where(
            IssueFingerprint.project_id == project.id, IssueFingerprint.fingerprint == storable_text(fingerprint)
        )
    )
    if fp is None:
        raise NotFound("Fingerprint not found")
    return serialize(fp)


@router.get("/{id}", name=f"error_tracking_{RESOURCE}_retrieve", response_model=FingerprintOut, responses=_ERRORS)
def retrieve(id: str, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    fp = session.scalar(
        select(IssueFingerprint).where(
            IssueFingerprint.project_id == project.id,
            IssueFingerprint.id == _uuid(id, "Invalid fingerprint id"),
        )
    )
    if fp is None:
        raise NotFound("Fingerprint not found")
    return serialize(fp)


@router.delete(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_destroy",
    status_code=405,
    response_class=Response,
    responses={405: {"description": "Hard delete of this model is not allowed."}, **_ERRORS},
    summary="Delete a fingerprint (not allowed)",
    description='Hard delete of this model is not allowed. Use a patch API call to set "deleted" to true',
)
def destroy(id: str, project: WriteProject) -> Response:
    return Response(status_code=405)
