"""Use cases of a project's autocapture controls, shared by the REST API and the web UI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trapline.autocapture.models import AutocaptureControls

__all__ = ["WRITABLE_FIELDS", "create_web_controls", "web_controls"]

# The fields of the controls a client may write (the REST API and the UI's form alike).
WRITABLE_FIELDS = (
    "match_type",
    "sample_rate",
    "linked_feature_flag",
    "event_triggers",
    "url_triggers",
    "url_blocklist",
)


def web_controls(session: Session, project_id: int) -> AutocaptureControls | None:
    """The project's controls for posthog-js (the only library that has them)."""
    return session.scalar(
        select(AutocaptureControls).where(
            AutocaptureControls.project_id == project_id, AutocaptureControls.library == "web"
        )
    )


def create_web_controls(
    session: Session, project_id: int, fields: Mapping[str, Any]
) -> tuple[AutocaptureControls, bool]:
    """The project's web controls made with ``fields`` and committed, or the ones that exist
    already (then ``False``, and ``fields`` are not applied)."""
    existing = web_controls(session, project_id)
    if existing is not None:
        return existing, False
    controls = AutocaptureControls(project_id=project_id, library="web", **fields)
    session.add(controls)
    try:
        session.commit()
    except IntegrityError:
        # Another request created them between the check and the commit (PostgreSQL lets both
        # through the check); the unique constraint settles it, and the loser finds theirs.
        session.rollback()
        existing = web_controls(session, project_id)
        if existing is None:
            raise
        return existing, False
    return controls, True
