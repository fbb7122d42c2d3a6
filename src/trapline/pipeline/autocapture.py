"""The autocapture controls stage: drop the autocaptured browser exceptions the project's
controls do not want (see ``autocapture/controls.py``), counted per reason like every drop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from trapline.autocapture.controls import Controls, decide
from trapline.pipeline.batch import Item

__all__ = ["enforce_controls", "sessions_to_read"]


def _session(item: Item) -> str | None:
    session = item.properties.get("$session_id")
    return session if isinstance(session, str) and session else None


def sessions_to_read(items: list[Item], controls: Mapping[int, Controls]) -> dict[int, set[str]]:
    """The sessions whose signals the stage needs: those of projects with URL or event triggers."""
    wanted: dict[int, set[str]] = {}
    for item in items:
        project = controls.get(item.project_id)
        session = _session(item)
        if item.live and project is not None and project.records_signals and session is not None:
            wanted.setdefault(item.project_id, set()).add(session)
    return wanted


def enforce_controls(
    items: list[Item],
    controls: Mapping[int, Controls],
    signals: Mapping[tuple[int, str], Mapping[str, datetime]],
) -> None:
    for item in items:
        project = controls.get(item.project_id)
        if not item.live or item.exception is None or project is None:
            continue
        session = _session(item)
        verdict = decide(
            project,
            item.properties,
            handled=item.exception.handled,
            timestamp=item.timestamp,
            signals=signals.get((item.project_id, session), {}) if session is not None else {},
        )
        if verdict is not None:
            item.reject(verdict.reason, verdict.detail)
