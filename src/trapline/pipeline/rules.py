"""A project's enabled rules, compiled once per batch, and what happens when one fails.

Rules are read fresh for every batch (three small queries): a rule created through the API
applies to the next batch, on every worker, with no cache to invalidate. A rule whose filter
cannot be evaluated (a bad regex, an unsupported filter type) is recorded as a failure;
the failures are written as ``disabled_data`` in the batch's transaction and the rule is
skipped from then on, until someone edits it, as in PostHog.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trapline.db.types import utcnow
from trapline.pipeline.batch import Assignee
from trapline.rules.evaluate import EvaluationError, Predicate, Subject, compile_filters
from trapline.rules.filters import has_filter_values
from trapline.rules.models import AssignmentRule, GroupingRule, SuppressionRule

__all__ = ["LoadedRule", "ProjectRules", "RuleFailure", "load_rules", "save_failures"]

RuleKind = Literal["grouping", "assignment", "suppression"]
_MODELS: dict[RuleKind, type[GroupingRule] | type[AssignmentRule] | type[SuppressionRule]] = {
    "grouping": GroupingRule,
    "assignment": AssignmentRule,
    "suppression": SuppressionRule,
}
# disabled_data keeps the properties the rule failed on, to help whoever fixes it; the
# exception list is left out because it can be large and is not what filters look at.
_NOT_KEPT_IN_DISABLED_DATA = frozenset({"$exception_list"})


@dataclass(frozen=True)
class LoadedRule:
    kind: RuleKind
    id: uuid.UUID
    matcher: Predicate | None
    compile_error: str | None = None
    sampling_rate: float = 1.0
    assignee: Assignee | None = None


@dataclass(frozen=True)
class RuleFailure:
    kind: RuleKind
    rule_id: uuid.UUID
    message: str
    props: dict[str, Any]
    issue: dict[str, Any] | None = None


@dataclass
class ProjectRules:
    suppression: list[LoadedRule] = field(default_factory=list)
    grouping: list[LoadedRule] = field(default_factory=list)
    assignment: list[LoadedRule] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    _disabled: set[uuid.UUID] = field(default_factory=set)

    def first_match(self, rules: Sequence[LoadedRule], subject: Subject) -> LoadedRule | None:
        """The first rule (in order) whose filters match; failing rules are disabled and skipped."""
        for rule in rules:
            if rule.id in self._disabled:
                continue
            try:
                if rule.matcher is None:
                    raise EvaluationError(rule.compile_error or "the rule could not be compiled")
                if rule.matcher(subject):
                    return rule
            except EvaluationError as exc:
                self._disable(rule, str(exc), subject)
        return None

    def _disable(self, rule: LoadedRule, message: str, subject: Subject) -> None:
        self._disabled.add(rule.id)
        props = {k: v for k, v in subject.properties.items() if k not in _NOT_KEPT_IN_DISABLED_DATA}
        issue = dict(subject.issue) if rule.kind == "assignment" and subject.issue is not None else None
        self.failures.append(RuleFailure(rule.kind, rule.id, message, props, issue))


def load_rules(session: Session, project_ids: Iterable[int]) -> dict[int, ProjectRules]:
    """The enabled rules of each project, in evaluation order, compiled."""
    ids = sorted(set(project_ids))
    rules: dict[int, ProjectRules] = {pid: ProjectRules() for pid in ids}
    if not ids:
        return rules
    for row in _enabled(session, SuppressionRule, ids):
        rules[row.project_id].suppression.append(_load("suppression", row))
    for grouping in _enabled(session, GroupingRule, ids):
        rules[grouping.project_id].grouping.append(_load("grouping", grouping))
    for assignment in _enabled(session, AssignmentRule, ids):
        rules[assignment.project_id].assignment.append(_load("assignment", assignment))
    return rules


_R = TypeVar("_R", GroupingRule, AssignmentRule, SuppressionRule)


def _enabled(session: Session, model: type[_R], project_ids: list[int]) -> Sequence[_R]:
    return session.scalars(
        select(model)
        .where(model.project_id.in_(project_ids), model.disabled_data.is_(None))
        .order_by(model.project_id, model.order_key, model.created_at, model.id)
    ).all()


def _load(kind: RuleKind, row: GroupingRule | AssignmentRule | SuppressionRule) -> LoadedRule:
    assignee: Assignee | None = None
    if isinstance(row, GroupingRule | AssignmentRule):
        if row.user_id is not None:
            assignee = ("user", row.user_id)
        elif row.role_id is not None:
            assignee = ("role", row.role_id)
    sampling_rate = row.sampling_rate if isinstance(row, SuppressionRule) else 1.0
    filters = row.filters
    if not has_filter_values(filters):
        # Empty suppression and assignment filters match every event (PostHog compiles them
        # to `return true`). The API refuses empty grouping filters; should one exist anyway,
        # it must not swallow every exception into one issue.
        matcher: Predicate = _never if kind == "grouping" else _always
        return LoadedRule(kind, row.id, matcher, sampling_rate=sampling_rate, assignee=assignee)
    try:
        matcher = compile_filters(filters)
    except EvaluationError as exc:
        return LoadedRule(kind, row.id, None, str(exc), sampling_rate, assignee)
    return LoadedRule(kind, row.id, matcher, sampling_rate=sampling_rate, assignee=assignee)


def _always(_subject: Subject) -> bool:
    return True


def _never(_subject: Subject) -> bool:
    return False


def save_failures(session: Session, failures: Iterable[RuleFailure]) -> None:
    """Disable each failed rule with PostHog's ``disabled_data`` shape, in the caller's transaction."""
    now = utcnow()
    for failure in failures:
        data: dict[str, Any] = {"message": failure.message, "props": failure.props}
        if failure.issue is not None:
            data["issue"] = failure.issue
        model = _MODELS[failure.kind]
        session.execute(
            update(model)
            .where(model.id == failure.rule_id, model.disabled_data.is_(None))
            .values(disabled_data=_jsonable(data), updated_at=now)
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
