"""What the Usage page and ``trapline usage`` show: per project, events stored and dropped per
day and reason, what is kept and what waits; for the installation, the database, the object
store and the disks.

Per-day numbers come from ``usage_day`` (written with what they count); all-time drops from
``dropped_events``; the rest is measured when asked: the page is opened rarely, and a number
that is read live cannot drift.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, case, func, select, text
from sqlalchemy.orm import Session

from trapline.diskspace import DiskSpace, Volume
from trapline.events.models import DroppedEvents, ExceptionEvent, QueuedRequest
from trapline.objects.store import ObjectStore
from trapline.projects.models import Project
from trapline.symbols.models import SymbolSet
from trapline.usage.models import STORED, UsageDay

__all__ = ["DayUsage", "InstallationUsage", "ProjectUsage", "installation_usage", "project_usage"]

# Sizes of at most this many symbol sets are looked up per project (S3 answers one HEAD each).
_SIZED_SETS = 500


@dataclass(frozen=True)
class DayUsage:
    day: date
    stored: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass(frozen=True)
class ProjectUsage:
    project_id: int
    name: str
    days: list[DayUsage]  # newest first, every day of the period
    events_kept: int
    dropped_all_time: dict[str, int]
    queued_requests: int
    queued_events: int
    parked_requests: int
    symbol_sets: int
    symbol_bytes: int | None  # None: some sizes were not looked up (too many sets)

    @property
    def stored(self) -> int:
        return sum(day.stored for day in self.days)

    @property
    def dropped(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for day in self.days:
            for reason, count in day.dropped.items():
                totals[reason] += count
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    @property
    def reasons(self) -> list[str]:
        return list(self.dropped)


@dataclass(frozen=True)
class InstallationUsage:
    database: str  # "sqlite" or "postgresql"
    database_bytes: int | None
    database_free_bytes: int | None  # SQLite pages that are free for reuse
    object_store_bytes: int | None  # None: not measured here (S3: see the projects' sets)
    queued_events: int
    parked_requests: int
    volumes: list[Volume]
    disk_min_free: int


def days_back(today: date, days: int) -> list[date]:
    return [today - timedelta(days=n) for n in range(days)]


def usage_by_day(rows: Iterable[tuple[date, str, int]], today: date, days: int) -> list[DayUsage]:
    """Rows of (day, outcome, count) as one entry per day of the period, newest first (pure)."""
    stored: dict[date, int] = defaultdict(int)
    dropped: dict[date, dict[str, int]] = defaultdict(dict)
    for day, outcome, count in rows:
        if outcome == STORED:
            stored[day] += count
        else:
            dropped[day][outcome] = dropped[day].get(outcome, 0) + count
    return [DayUsage(day, stored.get(day, 0), dropped.get(day, {})) for day in days_back(today, days)]


def project_usage(
    session: Session,
    queue: Session,
    project: Project,
    *,
    today: date,
    days: int = 30,
    store: ObjectStore | None = None,
) -> ProjectUsage:
    """``queue``: a session on the queue's database (``Database.queue``)."""
    first = today - timedelta(days=days - 1)
    rows = session.execute(
        select(UsageDay.day, UsageDay.outcome, UsageDay.count).where(
            UsageDay.project_id == project.id, UsageDay.day >= first, UsageDay.day <= today
        )
    ).all()
    kept = session.scalar(
        select(func.count()).select_from(ExceptionEvent).where(ExceptionEvent.project_id == project.id)
    )
    dropped = dict(
        session.execute(
            select(DroppedEvents.reason, DroppedEvents.count).where(DroppedEvents.project_id == project.id)
        ).all()
    )
    queued = queue.execute(
        select(
            func.count(QueuedRequest.id).filter(QueuedRequest.failed_at.is_(None)),
            func.coalesce(func.sum(case((QueuedRequest.failed_at.is_(None), QueuedRequest.event_count), else_=0)), 0),
            func.count(QueuedRequest.id).filter(QueuedRequest.failed_at.is_not(None)),
        ).where(QueuedRequest.project_id == project.id)
    ).one()
    keys = list(
        session.scalars(
            select(SymbolSet.storage_ptr).where(SymbolSet.project_id == project.id, SymbolSet.storage_ptr.is_not(None))
        )
    )
    return ProjectUsage(
        project_id=project.id,
        name=project.name,
        days=usage_by_day(((row[0], row[1], int(row[2])) for row in rows), today, days),
        events_kept=int(kept or 0),
        dropped_all_time={str(reason): int(count) for reason, count in dropped.items()},
        queued_requests=int(queued[0]),
        queued_events=int(queued[1]),
        parked_requests=int(queued[2]),
        symbol_sets=len(keys),
        symbol_bytes=_objects_size(store, [key for key in keys if key]),
    )


def _objects_size(store: ObjectStore | None, keys: Sequence[str]) -> int | None:
    if store is None or len(keys) > _SIZED_SETS:
        return None
    total = 0
    for key in keys:
        total += store.size(key) or 0
    return total


def installation_usage(
    session: Session, queue: Session, engine: Engine, *, disk: DiskSpace | None, objects_folder: Path | None
) -> InstallationUsage:
    """``queue``: a session on the queue's database (``Database.queue``), counted in the size
    when it is a file of its own."""
    queued = queue.execute(
        select(
            func.coalesce(func.sum(case((QueuedRequest.failed_at.is_(None), QueuedRequest.event_count), else_=0)), 0),
            func.count(QueuedRequest.id).filter(QueuedRequest.failed_at.is_not(None)),
        )
    ).one()
    size, free = _database_size(session, engine)
    if queue.get_bind() is not session.get_bind() and size is not None:
        queue_size, queue_free = _database_size(queue, engine)
        size, free = size + (queue_size or 0), (free or 0) + (queue_free or 0)
    return InstallationUsage(
        database=engine.dialect.name,
        database_bytes=size,
        database_free_bytes=free,
        object_store_bytes=_folder_size(objects_folder) if objects_folder is not None else None,
        queued_events=int(queued[0]),
        parked_requests=int(queued[1]),
        volumes=disk.volumes() if disk is not None else [],
        disk_min_free=disk.min_free if disk is not None else 0,
    )


def _database_size(session: Session, engine: Engine) -> tuple[int | None, int | None]:
    if engine.dialect.name == "sqlite":
        page_size = session.execute(text("PRAGMA page_size")).scalar_one()
        pages = session.execute(text("PRAGMA page_count")).scalar_one()
        free = session.execute(text("PRAGMA freelist_count")).scalar_one()
        return int(pages) * int(page_size), int(free) * int(page_size)
    if engine.dialect.name == "postgresql":
        return int(session.execute(text("SELECT pg_database_size(current_database())")).scalar_one()), None
    return None, None


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while we walked
    return total
