"""Use cases for releases."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trapline.errors import InvalidInput, NotFound
from trapline.ids import uuid7
from trapline.releases.models import Release

__all__ = ["MAX_HASH_ID_LENGTH", "create_release", "get_release", "update_release"]

MAX_HASH_ID_LENGTH = 128


def get_release(session: Session, project_id: int, release_id: uuid.UUID) -> Release:
    release = session.scalar(select(Release).where(Release.project_id == project_id, Release.id == release_id))
    if release is None:
        raise NotFound()
    return release


def _checked_hash_id(hash_id: str | None) -> str | None:
    if not hash_id:
        return None
    if len(hash_id) > MAX_HASH_ID_LENGTH:
        raise InvalidInput("Hash id length cannot exceed 128 bytes")
    return hash_id


def _hash_in_use(session: Session, project_id: int, hash_id: str) -> bool:
    return (
        session.scalar(select(Release.id).where(Release.project_id == project_id, Release.hash_id == hash_id))
        is not None
    )


def create_release(
    session: Session,
    project_id: int,
    *,
    version: str | None,
    project_name: str | None,
    hash_id: str | None,
    metadata: Any,
) -> Release:
    if not version:
        raise InvalidInput("Version is required")
    if not project_name:
        raise InvalidInput("Project is required")
    release_id = uuid7()
    # Without a client hash the release's own id serves, as in PostHog.
    resolved_hash = _checked_hash_id(hash_id) or str(release_id)
    if _hash_in_use(session, project_id, resolved_hash):
        raise InvalidInput(f"Hash id {resolved_hash} already in use")
    release = Release(
        id=release_id,
        project_id=project_id,
        hash_id=resolved_hash,
        version=version,
        project_name=project_name,
        metadata_=metadata,
    )
    session.add(release)
    _commit_unique(session, resolved_hash)
    return release


def update_release(
    session: Session,
    release: Release,
    *,
    version: str | None,
    project_name: str | None,
    hash_id: str | None,
    metadata: Any,
) -> None:
    """Change the fields given (empty values keep the current ones, as in PostHog)."""
    new_hash = _checked_hash_id(hash_id)
    if metadata:
        release.metadata_ = metadata
    if version:
        release.version = version
    if project_name:
        release.project_name = project_name
    if new_hash and new_hash != release.hash_id:
        if _hash_in_use(session, release.project_id, new_hash):
            raise InvalidInput(f"Hash id {new_hash} already in use")
        release.hash_id = new_hash
    _commit_unique(session, new_hash or release.hash_id)


def _commit_unique(session: Session, hash_id: str) -> None:
    # The check above answers the common case; the unique constraint settles two requests racing.
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InvalidInput(f"Hash id {hash_id} already in use") from None
