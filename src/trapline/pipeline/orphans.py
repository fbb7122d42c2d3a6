"""Queued events of projects deleted since capture took them.

The queue keeps a project's id, not a reference to it (on SQLite it is another file): a
project deleted while its events wait leaves them to nobody. Storing or counting them would
fail on the project's foreign key, again at every retry, until the requests were parked as
failed. They are discarded instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.pipeline.batch import DoorDrop, Item
from trapline.projects.models import Project

__all__ = ["existing_projects", "of_projects"]

log = logging.getLogger("trapline.pipeline")


def existing_projects(session: Session, ids: Iterable[int]) -> set[int]:
    return set(session.scalars(select(Project.id).where(Project.id.in_(sorted(set(ids))))))


def of_projects(items: list[Item], door: list[DoorDrop], projects: set[int]) -> tuple[list[Item], list[DoorDrop]]:
    """The items and drop counts of ``projects``; the others are logged and left out."""
    kept = [item for item in items if item.project_id in projects]
    kept_door = [drop for drop in door if drop.project_id in projects]
    if len(kept) < len(items) or len(kept_door) < len(door):
        gone = sorted(({item.project_id for item in items} | {drop.project_id for drop in door}) - projects)
        log.warning(
            "events of deleted projects discarded",
            extra={"events": len(items) - len(kept), "drop_counts": len(door) - len(kept_door), "projects": gone},
        )
    return kept, kept_door
