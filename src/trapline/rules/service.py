"""Use cases for rules: create, update, delete and reorder, for all three kinds."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from trapline.accounts.models import Membership, Role
from trapline.db.types import INTEGER_RANGE, utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.issues.models import Issue, IssueFingerprint
from trapline.rules.models import AssignmentRule, GroupingRule, Rule, SuppressionRule

__all__ = [
    "Assignee",
    "assignee_of",
    "create_rule",
    "custom_rule_fingerprint",
    "delete_rule",
    "get_rule",
    "grouping_rule_issues",
    "ordered_rules",
    "reorder_rules",
    "resolve_assignee",
    "touch_rule",
]

R = TypeVar("R", GroupingRule, AssignmentRule, SuppressionRule)
Assignee = tuple[Literal["user", "role"], int | uuid.UUID]


def custom_rule_fingerprint(rule_id: uuid.UUID) -> str:
    """The fingerprint every event matched by a grouping rule gets."""
    return f"custom-rule:{rule_id}"


def ordered_rules(model: type[R], project_id: int) -> Select[R]:
    """The project's rules in evaluation order (order_key, then creation)."""
    return select(model).where(model.project_id == project_id).order_by(model.order_key, model.created_at, model.id)


def get_rule(session: Session, model: type[R], project_id: int, rule_id: uuid.UUID) -> R:
    rule = session.scalar(select(model).where(model.project_id == project_id, model.id == rule_id))
    if rule is None:
        raise NotFound()
    return rule


def resolve_assignee(
    session: Session, organization_id: uuid.UUID, assignee: Assignee
) -> tuple[int | None, uuid.UUID | None]:
    """(user_id, role_id) for an assignee, after checking it belongs to the organization."""
    kind, ident = assignee
    if kind == "user":
        member = (
            session.scalar(
                select(Membership.id).where(Membership.organization_id == organization_id, Membership.user_id == ident)
            )
            # A larger number would fail the query on PostgreSQL: no user has it anyway.
            if isinstance(ident, int) and ident in INTEGER_RANGE
            else None
        )
        if member is None:
            raise InvalidInput("Assignee user does not belong to this organization.", attr="assignee__id")
        return int(ident), None
    role = session.scalar(select(Role.id).where(Role.organization_id == organization_id, Role.id == ident))
    if role is None:
        raise InvalidInput("Assignee role does not belong to this organization.", attr="assignee__id")
    return None, uuid.UUID(str(ident))


def create_rule(
    session: Session,
    model: type[R],
    project_id: int,
    organization_id: uuid.UUID,
    *,
    filters: Any,
    order_key: int,
    assignee: Assignee | None = None,
    **fields: Any,
) -> R:
    """Add and commit a rule of any kind; an assignee must belong to the organization."""
    if assignee is not None:
        fields["user_id"], fields["role_id"] = resolve_assignee(session, organization_id, assignee)
    rule = model(project_id=project_id, filters=filters, order_key=order_key, **fields)
    session.add(rule)
    session.commit()
    return rule


def assignee_of(rule: GroupingRule | AssignmentRule) -> dict[str, Any] | None:
    if rule.user_id is not None:
        return {"type": "user", "id": rule.user_id}
    if rule.role_id is not None:
        return {"type": "role", "id": rule.role_id}
    return None


def touch_rule(rule: Rule, filters: dict[str, Any] | None) -> None:
    """Apply new filters (if given) and re-enable: editing a rule is how a person fixes it."""
    if filters is not None:
        rule.filters = filters
    rule.disabled_data = None
    # Set, not left to onupdate: that only fires when a column changed, and PostHog stamps
    # every save, even one that changes nothing.
    rule.updated_at = utcnow()


def delete_rule(session: Session, model: type[R], project_id: int, rule_id: uuid.UUID) -> None:
    session.delete(get_rule(session, model, project_id, rule_id))
    session.commit()


def reorder_rules(session: Session, model: type[R], project_id: int, orders: Mapping[uuid.UUID, int]) -> None:
    """Set ``order_key`` for the named rules of this project; other ids are ignored."""
    if orders:
        rules = session.scalars(select(model).where(model.project_id == project_id, model.id.in_(list(orders))))
        for rule in rules:
            rule.order_key = orders[rule.id]
    session.commit()


def grouping_rule_issues(session: Session, project_id: int, rule_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Issue]:
    """rule id → the issue its ``custom-rule:<id>`` fingerprint currently belongs to."""
    if not rule_ids:
        return {}
    by_fingerprint = {custom_rule_fingerprint(rule_id): rule_id for rule_id in rule_ids}
    rows = session.execute(
        select(IssueFingerprint.fingerprint, Issue)
        .join(Issue, Issue.id == IssueFingerprint.issue_id)
        .where(IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint.in_(list(by_fingerprint)))
    ).all()
    return {by_fingerprint[fingerprint]: issue for fingerprint, issue in rows}
