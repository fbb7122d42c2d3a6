"""Issues, fingerprints and processed events, inserted straight into the tables.

The read side is tested on rows with chosen timestamps, users and sessions, without going
through ingestion: these functions write what the pipeline would have written (an event's
properties in PostHog's output shape, its ``search_text``, and the fingerprint's running
totals), no more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.search import record as search_summaries
from trapline.volumes import record as volumes
from trapline.volumes.record import Counted

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(**delta: float) -> datetime:
    """A moment before the start of the test run, e.g. ``ago(hours=2)``."""
    return NOW - timedelta(**delta)


def make_issue(
    session: Session,
    project_id: int,
    fingerprints: Sequence[str] = (),
    *,
    name: str | None = "TypeError",
    description: str | None = "boom",
    status: str = "active",
    severity: str | None = None,
    user_id: int | None = None,
    role_id: uuid.UUID | None = None,
    first_seen: datetime | None = None,
) -> Issue:
    """An issue owning ``fingerprints`` (default: one named after the issue's id)."""
    issue = Issue(project_id=project_id, name=name, description=description, status=status, severity=severity)
    session.add(issue)
    session.flush()
    for fingerprint in fingerprints or [f"fp-{issue.id}"]:
        add_fingerprint(session, issue, fingerprint, first_seen=first_seen)
    if user_id is not None or role_id is not None:
        session.add(IssueAssignment(issue_id=issue.id, project_id=project_id, user_id=user_id, role_id=role_id))
    session.commit()
    return issue


def add_fingerprint(
    session: Session, issue: Issue, fingerprint: str, *, first_seen: datetime | None = None
) -> IssueFingerprint:
    row = IssueFingerprint(
        project_id=issue.project_id, issue_id=issue.id, fingerprint=fingerprint, first_seen=first_seen
    )
    session.add(row)
    session.flush()
    return row


def fingerprints_of(session: Session, issue_id: uuid.UUID) -> list[str]:
    return sorted(session.scalars(select(IssueFingerprint.fingerprint).where(IssueFingerprint.issue_id == issue_id)))


def frame(
    function: str,
    source: str,
    *,
    line: int = 1,
    column: int = 1,
    in_app: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A resolved frame as cymbal stores it in ``$exception_list``."""
    return {
        "raw_id": f"{uuid.uuid4().hex}/0",
        "mangled_name": function,
        "line": line,
        "column": column,
        "source": source,
        "in_app": in_app,
        "resolved_name": function,
        "lang": "javascript",
        "resolved": True,
        "synthetic": False,
        "suspicious": False,
        **extra,
    }


def exception(type_: str = "TypeError", value: str = "boom", frames: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": type_,
        "value": value,
        "mechanism": {"handled": False, "type": "onerror", "synthetic": False},
    }
    if frames:
        entry["stacktrace"] = {"type": "resolved", "frames": list(frames)}
    return entry


def _search_text(properties: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("$exception_types", "$exception_values", "$exception_sources", "$exception_functions"):
        parts += [str(item) for item in properties.get(key) or []]
    if isinstance(properties.get("email"), str):
        parts.append(properties["email"])
    return "\x1f".join(parts).lower()


def make_event(
    session: Session,
    project_id: int,
    fingerprint: str,
    *,
    timestamp: datetime | None = None,
    distinct_id: str = "user-1",
    session_id: str | None = None,
    library: str | None = "web",
    exceptions: Sequence[dict[str, Any]] | None = None,
    email: str | None = None,
    properties: dict[str, Any] | None = None,
    commit: bool = True,
) -> ExceptionEvent:
    """A processed event with ``fingerprint``, counted in the fingerprint's running totals."""
    timestamp = timestamp or ago(hours=1)
    owner = session.scalar(
        select(IssueFingerprint).where(
            IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint == fingerprint
        )
    )
    assert owner is not None, f"no issue has fingerprint {fingerprint!r}"
    exceptions = list(exceptions if exceptions is not None else [exception()])
    frames = [f for e in exceptions for f in (e.get("stacktrace") or {}).get("frames", [])]
    props: dict[str, Any] = {
        "$exception_list": exceptions,
        "$exception_types": sorted({e["type"] for e in exceptions}),
        "$exception_values": sorted({e["value"] for e in exceptions}),
        "$exception_sources": sorted({f["source"] for f in frames if f.get("in_app")}),
        "$exception_functions": sorted({f["resolved_name"] for f in frames if f.get("in_app")}),
        "$exception_fingerprint": fingerprint,
        "$exception_issue_id": str(owner.issue_id),
        "$exception_handled": False,
    }
    if library is not None:
        props["$lib"] = library
    if session_id is not None:
        props["$session_id"] = session_id
    if email is not None:
        props["email"] = email
    props.update(properties or {})
    event = ExceptionEvent(
        project_id=project_id,
        uuid=uuid.uuid4(),
        timestamp=timestamp,
        distinct_id=distinct_id,
        session_id=session_id,
        fingerprint=fingerprint,
        issue_id=owner.issue_id,
        library=library,
        search_text=_search_text(props),
        properties=props,
    )
    session.add(event)
    # What the pipeline's storage stage does besides inserting: the volume rollups.
    volumes.add(session.connection(), [Counted(project_id, fingerprint, timestamp, distinct_id, session_id)])
    search_summaries.add(session.connection(), [(project_id, fingerprint, event.search_text or "")])
    owner.occurrences += 1
    if owner.first_seen is None or timestamp < owner.first_seen:
        owner.first_seen = timestamp
    if owner.last_seen is None or timestamp > owner.last_seen:
        owner.last_seen = timestamp
    if commit:
        session.commit()
    else:
        session.flush()
    return event


def make_events(
    session: Session, project_id: int, fingerprint: str, count: int, *, timestamp: datetime | None = None, **kwargs: Any
) -> None:
    """``count`` events an hour apart (the first an hour ago), unless a timestamp is given."""
    for n in range(count):
        make_event(session, project_id, fingerprint, timestamp=timestamp or ago(hours=n + 1), commit=False, **kwargs)
    session.commit()
