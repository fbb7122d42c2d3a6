"""``trapline usage``: what the Usage page shows, for every project (or one), as text or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import DiskSpace
from trapline.objects.store import ObjectStore
from trapline.projects.models import Project
from trapline.settings import Settings
from trapline.usage.report import InstallationUsage, ProjectUsage, installation_usage, project_usage

__all__ = ["human_size", "report", "run"]


def report(
    db: Database, settings: Settings, store: ObjectStore | None, *, project_id: int | None, days: int, today: date
) -> tuple[InstallationUsage, list[ProjectUsage]]:
    disk = DiskSpace(settings.local_folders, settings.disk_min_free)
    with db.session(write=False) as session, db.queue.session(write=False) as queue:
        installation = installation_usage(session, queue, db.engine, disk=disk, objects_folder=settings.objects_folder)
        query = select(Project).order_by(Project.id)
        if project_id is not None:
            query = query.where(Project.id == project_id)
        projects = [
            project_usage(session, queue, project, today=today, days=days, store=store)
            for project in session.scalars(query)
        ]
    return installation, projects


def run(
    db: Database, settings: Settings, store: ObjectStore | None, *, project_id: int | None, days: int, as_json: bool
) -> str:
    installation, projects = report(db, settings, store, project_id=project_id, days=days, today=utcnow().date())
    if as_json:
        return json.dumps(
            {"installation": _jsonable(asdict(installation)), "projects": [_project_json(p) for p in projects]},
            indent=2,
        )
    return "\n".join(_text(installation, projects, days))


def _project_json(usage: ProjectUsage) -> dict[str, Any]:
    data: dict[str, Any] = _jsonable(asdict(usage))
    data["days"] = [
        {"day": day.day.isoformat(), "stored": day.stored, "dropped": day.dropped}
        for day in usage.days
        if day.stored or day.dropped
    ]
    data["stored"] = usage.stored
    data["dropped"] = usage.dropped
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, (date, Path)):
        return str(value)
    return value


def human_size(size: int | None) -> str:
    if size is None:
        return "not measured"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _text(installation: InstallationUsage, projects: list[ProjectUsage], days: int) -> list[str]:
    free = (
        f" ({human_size(installation.database_free_bytes)} free for reuse)" if installation.database_free_bytes else ""
    )
    lines = [
        f"Database      {installation.database}, {human_size(installation.database_bytes)}{free}",
        f"Object store  {human_size(installation.object_store_bytes)}",
    ]
    lines += [
        f"Disk          {volume.path}: {human_size(volume.free)} free"
        f" (capture stops below {human_size(installation.disk_min_free)})"
        for volume in installation.volumes
    ]
    lines.append(
        f"Queue         {installation.queued_events:,} events waiting, {installation.parked_requests:,} parked requests"
    )
    for usage in projects:
        dropped = ", ".join(f"{reason} {count:,}" for reason, count in usage.dropped.items()) or "none"
        sets = f"{usage.symbol_sets:,}" + (f" ({human_size(usage.symbol_bytes)})" if usage.symbol_bytes else "")
        lines += [
            "",
            f"Project {usage.project_id} {usage.name!r}",
            f"  {'events kept':<19}{usage.events_kept:,}",
            f"  {f'stored ({days} d)':<19}{usage.stored:,}",
            f"  {f'dropped ({days} d)':<19}{dropped}",
            f"  {'queue':<19}{usage.queued_requests:,} requests ({usage.queued_events:,} events),"
            f" {usage.parked_requests:,} parked",
            f"  {'symbol sets':<19}{sets}",
        ]
        active = [day for day in usage.days if day.stored or day.dropped]
        if active:
            lines.append(f"  {'day':<12}{'stored':>10}{'dropped':>10}  reasons")
            for day in active:
                reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(day.dropped.items()))
                lines.append(f"  {day.day.isoformat():<12}{day.stored:>10,}{day.dropped_total:>10,}  {reasons}")
    return lines
