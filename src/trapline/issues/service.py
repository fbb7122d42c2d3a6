"""The write side of issues: update, assign, merge, split and bulk changes.

What to do is decided by pure functions (``merge_sources``, ``inherited_assignee``,
``plan_split``, ``changed_fields``); the service functions around them lock the rows, write
and commit. Every change a person makes stamps ``state_updated_at``.

Locking: each use case first locks the issue rows it changes (``SELECT … FOR UPDATE`` on
PostgreSQL, in id order so that two merges cannot deadlock; SQLite's write transactions are
serial anyway), so two requests changing one issue queue up instead of racing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from trapline.db.types import utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.issues.filters import owned_by
from trapline.issues.models import SEVERITIES, Issue, IssueAssignment, IssueFingerprint, MergedIssue
from trapline.rules.service import Assignee, resolve_assignee

__all__ = [
    "UNTITLED_ISSUE",
    "WRITABLE_STATUSES",
    "MergeResult",
    "NewIssue",
    "SplitEntry",
    "assign_issue",
    "bulk_update",
    "changed_fields",
    "inherited_assignee",
    "merge_issues",
    "merge_sources",
    "plan_split",
    "split_issue",
    "update_issue",
]

# archived and pending_release are legacy: stored rows may have them, nobody may set them.
WRITABLE_STATUSES = ("active", "resolved", "suppressed")
UNTITLED_ISSUE = "Untitled issue"
_EDITABLE = ("status", "severity", "name", "description")


class MergeResult(StrEnum):
    MERGED = "merged"
    # Only the target itself (or nothing) was named: nothing to do, answered success=false.
    NO_SOURCE_ISSUES = "no_source_issues"


@dataclass(frozen=True)
class SplitEntry:
    fingerprint: str
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class NewIssue:
    """An issue a split creates, and the fingerprints it takes."""

    fingerprints: tuple[str, ...]
    name: str
    description: str | None


# --- decisions ------------------------------------------------------------------------------


def merge_sources(target_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The issues a merge into ``target_id`` takes: deduplicated, without the target, sorted."""
    return sorted({issue_id for issue_id in ids if issue_id != target_id})


def inherited_assignee(target: Assignee | None, sources: Iterable[Assignee | None]) -> Assignee | None:
    """The assignee a merge gives the target: the sources' one assignee, if they agree on
    exactly one and the target has none. Unassigned sources do not count as a vote."""
    if target is not None:
        return None
    assigned = {assignee for assignee in sources if assignee is not None}
    return assigned.pop() if len(assigned) == 1 else None


def plan_split(entries: Sequence[SplitEntry], own: set[str], *, exclusive: bool = True) -> list[NewIssue]:
    """The issues a split creates. Fingerprints not (or no longer) on the issue are skipped.

    ``exclusive`` (the default, and the only behaviour of PostHog's current API) gives each
    fingerprint its own issue; PostHog's old API with ``exclusive: false`` moved all of them to
    one new issue, which then takes the first entry's name and description.
    """
    picked: list[SplitEntry] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.fingerprint in own and entry.fingerprint not in seen:
            seen.add(entry.fingerprint)
            picked.append(entry)
    if not picked:
        return []
    if exclusive:
        return [NewIssue((e.fingerprint,), e.name or UNTITLED_ISSUE, e.description) for e in picked]
    first = picked[0]
    return [NewIssue(tuple(e.fingerprint for e in picked), first.name or UNTITLED_ISSUE, first.description)]


def changed_fields(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The editable fields whose new value differs from the current one."""
    return {key: value for key, value in changes.items() if key in _EDITABLE and current.get(key) != value}


def _check(changes: Mapping[str, Any]) -> None:
    # The wire schema already refuses these; the service does not trust its callers.
    if "status" in changes and changes["status"] not in WRITABLE_STATUSES:
        raise InvalidInput(f'"{changes["status"]}" is not a valid choice.', code="invalid_choice", attr="status")
    if "severity" in changes and changes["severity"] not in (*SEVERITIES, None):
        raise InvalidInput(f'"{changes["severity"]}" is not a valid choice.', code="invalid_choice", attr="severity")


# --- use cases ------------------------------------------------------------------------------


def _lock(session: Session, project_id: int, issue_ids: Sequence[uuid.UUID]) -> list[Issue]:
    return list(
        session.scalars(
            select(Issue)
            .where(Issue.project_id == project_id, Issue.id.in_(list(issue_ids)))
            .order_by(Issue.id)
            .with_for_update()
        )
    )


def _locked_issue(session: Session, project_id: int, issue_id: uuid.UUID) -> Issue:
    issues = _lock(session, project_id, [issue_id])
    if not issues:
        raise NotFound("Issue not found")
    return issues[0]


def update_issue(session: Session, project_id: int, issue_id: uuid.UUID, changes: Mapping[str, Any]) -> Issue:
    """Set status, severity, name and description (those given); stamp if anything changed."""
    _check(changes)
    issue = _locked_issue(session, project_id, issue_id)
    current = {key: getattr(issue, key) for key in _EDITABLE}
    changed = changed_fields(current, changes)
    for key, value in changed.items():
        setattr(issue, key, value)
    if changed:
        issue.state_updated_at = utcnow()
    session.commit()
    return issue


def _resolve(
    session: Session, organization_id: uuid.UUID, assignee: Assignee | None
) -> tuple[int | None, uuid.UUID | None]:
    if assignee is None:
        return None, None
    try:
        return resolve_assignee(session, organization_id, assignee)
    except InvalidInput as exc:
        # PostHog's issue views answer these with ValidationError(str(err)): no attr.
        raise InvalidInput(exc.detail) from None


def _current_assignment(session: Session, issue_id: uuid.UUID) -> IssueAssignment | None:
    return session.scalar(select(IssueAssignment).where(IssueAssignment.issue_id == issue_id))


def _set_assignment(session: Session, issue: Issue, user_id: int | None, role_id: uuid.UUID | None) -> bool:
    """Make the issue's assignment (user_id, role_id); False if it already was that."""
    current = _current_assignment(session, issue.id)
    if user_id is None and role_id is None:
        if current is None:
            return False
        session.delete(current)
        return True
    if current is not None and (current.user_id, current.role_id) == (user_id, role_id):
        return False
    if current is None:
        session.add(IssueAssignment(issue_id=issue.id, project_id=issue.project_id, user_id=user_id, role_id=role_id))
    else:
        current.user_id, current.role_id = user_id, role_id
    return True


def assign_issue(
    session: Session, project_id: int, organization_id: uuid.UUID, issue_id: uuid.UUID, assignee: Assignee | None
) -> bool:
    """Assign (or, with None, unassign) the issue; False when nothing changed."""
    issue = _locked_issue(session, project_id, issue_id)
    user_id, role_id = _resolve(session, organization_id, assignee)
    changed = _set_assignment(session, issue, user_id, role_id)
    if changed:
        issue.state_updated_at = utcnow()
    session.commit()
    return changed


def _columns(assignee: Assignee) -> tuple[int | None, uuid.UUID | None]:
    kind, ident = assignee
    if kind == "user" and isinstance(ident, int):
        return ident, None
    if kind == "role" and isinstance(ident, uuid.UUID):
        return None, ident
    raise ValueError(f"not an assignee: {assignee!r}")


def _assignee_of(assignment: IssueAssignment | None) -> Assignee | None:
    if assignment is None:
        return None
    if assignment.user_id is not None:
        return ("user", assignment.user_id)
    if assignment.role_id is not None:
        return ("role", assignment.role_id)
    return None


def merge_issues(session: Session, project_id: int, target_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> MergeResult:
    """Move every fingerprint of the named issues onto the target and delete them.

    As in PostHog's current code, a target or a named source that does not exist (another
    merge got there first) is a 404 and nothing changes; naming only the target is a no-op.
    Events follow their fingerprints, so the sources' past events count for the target.
    """
    sources = merge_sources(target_id, ids)
    locked = {issue.id: issue for issue in _lock(session, project_id, [target_id, *sources])}
    if target_id not in locked or not set(sources) <= set(locked):
        raise NotFound("Issue not found")
    target = locked[target_id]
    if not sources:
        return MergeResult.NO_SOURCE_ISSUES

    session.execute(
        update(IssueFingerprint)
        .where(*owned_by(project_id, sources))
        .values(issue_id=target_id, version=IssueFingerprint.version + 1)
    )
    source_assignments = session.scalars(select(IssueAssignment).where(IssueAssignment.issue_id.in_(sources)))
    inherited = inherited_assignee(
        _assignee_of(_current_assignment(session, target_id)), (_assignee_of(a) for a in source_assignments)
    )
    if inherited is not None:
        _set_assignment(session, target, *_columns(inherited))
    # Their fingerprints have moved, so this cascades only to their assignments.
    session.execute(delete(Issue).where(Issue.project_id == project_id, Issue.id.in_(sources)))
    now = utcnow()
    # Links to the sources, and to issues merged into them before, now lead to the target.
    session.execute(
        update(MergedIssue)
        .where(MergedIssue.project_id == project_id, MergedIssue.merged_into.in_(sources))
        .values(merged_into=target_id)
    )
    session.add_all(
        MergedIssue(issue_id=source, project_id=project_id, merged_into=target_id, merged_at=now) for source in sources
    )
    target.state_updated_at = now
    session.commit()
    return MergeResult.MERGED


def split_issue(
    session: Session, project_id: int, issue_id: uuid.UUID, entries: Sequence[SplitEntry], *, exclusive: bool = True
) -> list[uuid.UUID]:
    """Move the named fingerprints of an issue to new issues; returns the new issues' ids."""
    issue = _locked_issue(session, project_id, issue_id)
    own = set(
        session.scalars(
            select(IssueFingerprint.fingerprint)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.issue_id == issue.id)
            .with_for_update()
        )
    )
    new_ids: list[uuid.UUID] = []
    for plan in plan_split(entries, own, exclusive=exclusive):
        new_issue = Issue(project_id=project_id, status="active", name=plan.name, description=plan.description)
        session.add(new_issue)
        session.flush()
        session.execute(
            update(IssueFingerprint)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint.in_(plan.fingerprints))
            .values(issue_id=new_issue.id, version=IssueFingerprint.version + 1)
        )
        new_ids.append(new_issue.id)
    if new_ids:
        issue.state_updated_at = utcnow()
    session.commit()
    return new_ids


def bulk_update(
    session: Session,
    project_id: int,
    organization_id: uuid.UUID,
    *,
    action: Literal["set_status", "assign"],
    ids: Sequence[uuid.UUID],
    status: str | None = None,
    assignee: Assignee | None = None,
) -> list[uuid.UUID]:
    """Set the status of, or assign, the named issues of the project (others are ignored).

    Issues already in that state are skipped (not stamped); returns the ids that changed.
    """
    if action == "set_status" and status not in WRITABLE_STATUSES:
        raise InvalidInput("Invalid status")
    user_id, role_id = _resolve(session, organization_id, assignee) if action == "assign" else (None, None)
    now = utcnow()
    changed: list[uuid.UUID] = []
    for issue in _lock(session, project_id, list(dict.fromkeys(ids))):
        if action == "set_status":
            if issue.status == status:
                continue
            issue.status = str(status)
        elif not _set_assignment(session, issue, user_id, role_id):
            continue
        issue.state_updated_at = now
        changed.append(issue.id)
    session.commit()
    return changed
