"""Issue linking: fingerprint → issue, created if new, reopened if resolved.

Race-safe without locks, as cymbal does it: the unique (project, fingerprint) constraint
decides. A new fingerprint inserts its issue and fingerprint row in a savepoint; if another
worker inserted the same fingerprint first, the savepoint is rolled back and that worker's
issue is used. Then:

* a resolved (or legacy archived / pending_release) issue is reopened;
* a suppressed issue keeps its status and its new events are dropped;
* on creation and on reopening, the issue gets an assignee: the matching grouping rule's,
  else the first matching assignment rule's; an existing assignment is never replaced.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trapline.db.upsert import dialect_insert
from trapline.ids import uuid7
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.pipeline.batch import Assignee, Item
from trapline.pipeline.rules import ProjectRules
from trapline.rules.evaluate import Subject

__all__ = ["ISSUE_SUPPRESSED", "IssueChange", "link_issues"]

log = logging.getLogger("trapline.pipeline")

ISSUE_SUPPRESSED = "issue_suppressed"
_REOPENABLE = ("resolved", "archived", "pending_release")
_DESCRIPTION_LIMIT = 255


@dataclass(frozen=True)
class IssueChange:
    """An issue this batch created or reopened (what alerts will be sent for)."""

    kind: Literal["created", "reopened"]
    project_id: int
    issue_id: uuid.UUID
    fingerprint: str


class _Lost(Exception):
    """Another worker created this fingerprint first."""


def link_issues(session: Session, items: list[Item], rules: dict[int, ProjectRules]) -> list[IssueChange]:
    """Set ``issue_id`` on every live item; reject the events of suppressed issues."""
    groups: dict[tuple[int, str], list[Item]] = defaultdict(list)
    for item in items:
        if item.live and item.fingerprint is not None:
            groups[(item.project_id, item.fingerprint)].append(item)
    if not groups:
        return []
    known = _known_issues(session, groups)
    changes: list[IssueChange] = []
    # Rows are written in one global order (by fingerprint), so that two workers linking
    # overlapping batches on PostgreSQL wait for each other instead of deadlocking.
    for (project_id, fingerprint), group in sorted(groups.items()):
        first = group[0]
        issue = known.get((project_id, fingerprint))
        if issue is None:
            issue, created = _create(session, project_id, fingerprint, group)
            if created:
                changes.append(IssueChange("created", project_id, issue.id, fingerprint))
                _assign(session, issue, first, rules[project_id])
        if issue.status in _REOPENABLE and _reopen(session, issue):
            changes.append(IssueChange("reopened", project_id, issue.id, fingerprint))
            _assign(session, issue, first, rules[project_id])
        for item in group:
            if issue.status == "suppressed":
                item.reject(ISSUE_SUPPRESSED, f"issue {issue.id}")
            else:
                item.issue_id = issue.id
    return changes


def _known_issues(session: Session, groups: dict[tuple[int, str], list[Item]]) -> dict[tuple[int, str], Issue]:
    by_project: dict[int, list[str]] = defaultdict(list)
    for project_id, fingerprint in groups:
        by_project[project_id].append(fingerprint)
    known: dict[tuple[int, str], Issue] = {}
    for project_id, fingerprints in by_project.items():
        rows = session.execute(
            select(IssueFingerprint.fingerprint, Issue)
            .join(Issue, Issue.id == IssueFingerprint.issue_id)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint.in_(fingerprints))
        ).all()
        for fingerprint, issue in rows:
            known[(project_id, fingerprint)] = issue
    return known


def _create(session: Session, project_id: int, fingerprint: str, group: list[Item]) -> tuple[Issue, bool]:
    first = group[0]
    name, description = _name_and_description(first)
    issue = Issue(id=uuid7(), project_id=project_id, status="active", name=name, description=description)
    try:
        with session.begin_nested():
            session.add(issue)
            session.flush()
            inserted = session.execute(
                dialect_insert(session, IssueFingerprint)
                .values(
                    id=uuid7(),
                    project_id=project_id,
                    issue_id=issue.id,
                    fingerprint=fingerprint,
                    version=0,
                    first_seen=min(item.timestamp for item in group),
                    occurrences=0,
                    created_at=issue.created_at,
                )
                .on_conflict_do_nothing(index_elements=["project_id", "fingerprint"])
                .returning(IssueFingerprint.issue_id)
            ).scalar_one_or_none()
            if inserted is None:
                raise _Lost()
    except _Lost:
        winner = session.execute(
            select(Issue)
            .join(IssueFingerprint, IssueFingerprint.issue_id == Issue.id)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint == fingerprint)
        ).scalar_one()
        return winner, False
    return issue, True


def _name_and_description(item: Item) -> tuple[str | None, str | None]:
    """``$issue_name`` / ``$issue_description`` if sent, else the first exception's type and value."""
    exception = item.exception
    first = item.exception_list[0] if item.exception_list else None
    name = (exception.issue_name if exception else None) or (first["type"] if first else None)
    description = (exception.issue_description if exception else None) or (first["value"] if first else None)
    return name, None if description is None else description[:_DESCRIPTION_LIMIT]


def _reopen(session: Session, issue: Issue) -> bool:
    changed = session.execute(
        update(Issue).where(Issue.id == issue.id, Issue.status != "active").values(status="active")
    ).rowcount  # type: ignore[attr-defined]
    if changed:
        issue.status = "active"
    return bool(changed)


def _assign(session: Session, issue: Issue, item: Item, rules: ProjectRules) -> None:
    assignee: Assignee | None = item.rule_assignee
    if assignee is None:
        subject = Subject(
            properties=item.output,
            issue={"status": issue.status, "name": issue.name, "description": issue.description},
        )
        rule = rules.first_match(rules.assignment, subject)
        assignee = rule.assignee if rule is not None else None
    if assignee is None:
        return
    kind, ident = assignee
    session.execute(
        dialect_insert(session, IssueAssignment)
        .values(
            id=uuid7(),
            issue_id=issue.id,
            project_id=issue.project_id,
            user_id=ident if kind == "user" else None,
            role_id=ident if kind == "role" else None,
            created_at=issue.created_at,
        )
        .on_conflict_do_nothing(index_elements=["issue_id"])
    )
