"""Rules pages: suppression, grouping and assignment rules, listed in order, made and changed.

``/project/{id}/settings/{suppression,grouping,assignment}-rules`` list a project's rules in
evaluation order, their filters in words, and the create form; ``…/{rule_id}`` edits one.
A rule made here goes through what the REST API uses: its request schemas (so validation and
its messages are the API's), ``rules.service`` (assignees, re-enabling on edit, delete,
reorder) and the same model fields, so the pipeline cannot tell where a rule came from.
The form's rows become PostHog's filter JSON in ``filter_form``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trapline.api.deps import SessionDep
from trapline.api.schemas.common import RequestModel
from trapline.api.schemas.rules import (
    AssignmentRuleCreate,
    AssignmentRuleUpdate,
    GroupingRuleCreate,
    GroupingRuleUpdate,
    SuppressionRuleCreate,
    SuppressionRuleUpdate,
)
from trapline.errors import InvalidInput, NotFound
from trapline.issues.models import Issue
from trapline.projects.models import Project
from trapline.rules import service
from trapline.rules.evaluate import EvaluationError, compile_filters
from trapline.rules.filters import MATCH_ALL, has_filter_values
from trapline.rules.models import AssignmentRule, GroupingRule, SuppressionRule
from trapline.sdk.config import client_safe_rule
from trapline.ui import filter_form
from trapline.ui.assignees import Assignable, assignable
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.filter_form import FilterForm
from trapline.ui.forms import PostedFiltersDep, builder_context, filters_posted, no_nul, pretty_json
from trapline.ui.render import redirect, render

__all__ = ["KINDS", "RuleInput", "moved", "router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

_ORDER_KEY_MAX = 2**31 - 1


@dataclass(frozen=True)
class RuleKind:
    key: Literal["suppression", "grouping", "assignment"]
    slug: str
    title: str
    noun: str
    summary: str
    # The ORM class; Any because rules.service's functions take each kind through a
    # constrained TypeVar, which a union of the three classes does not satisfy.
    model: Any
    create: type[RequestModel]
    update: type[RequestModel]
    assignee: Literal["none", "optional", "required"] = "none"
    sampling: bool = False
    description: bool = False
    issue_types: bool = False  # filters on the issue (status, name) make sense: assignment only


SUPPRESSION = RuleKind(
    key="suppression",
    slug="suppression-rules",
    title="Suppression rules",
    noun="suppression rule",
    summary="Exceptions matching a rule are dropped when they arrive (counted on the Autocapture page). "
    "Rules on exception types and messages also run in browsers, which then do not send them.",
    model=SuppressionRule,
    create=SuppressionRuleCreate,
    update=SuppressionRuleUpdate,
    sampling=True,
)
GROUPING = RuleKind(
    key="grouping",
    slug="grouping-rules",
    title="Grouping rules",
    noun="grouping rule",
    summary="Exceptions matching a rule all go into one issue, whatever their stack; the first matching rule "
    "wins. The issue can be given an assignee.",
    model=GroupingRule,
    create=GroupingRuleCreate,
    update=GroupingRuleUpdate,
    assignee="optional",
    description=True,
)
ASSIGNMENT = RuleKind(
    key="assignment",
    slug="assignment-rules",
    title="Assignment rules",
    noun="assignment rule",
    summary="New and reopened issues whose exception matches a rule are assigned to its user or role; the first "
    "matching rule wins, and an assignee someone chose is never replaced.",
    model=AssignmentRule,
    create=AssignmentRuleCreate,
    update=AssignmentRuleUpdate,
    assignee="required",
    issue_types=True,
)
KINDS: tuple[RuleKind, ...] = (SUPPRESSION, GROUPING, ASSIGNMENT)


# --- what the form posts -----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInput:
    """The rule form's fields, as posted or as the rule has them."""

    filters: FilterForm = field(default_factory=FilterForm)
    json_mode: bool = False
    filters_json: str = ""
    sampling_rate: str = "1"
    assignee: str = ""
    description: str = ""

    @classmethod
    def of(cls, kind: RuleKind, rule: Any) -> RuleInput:
        shown = filter_form.from_filters(rule.filters)
        assignee = service.assignee_of(rule) if kind.assignee != "none" else None
        return cls(
            filters=shown or FilterForm(),
            json_mode=shown is None,
            filters_json=pretty_json(rule.filters),
            sampling_rate=_rate_text(rule.sampling_rate) if kind.sampling else "1",
            assignee=f"{assignee['type']}:{assignee['id']}" if assignee else "",
            description=(rule.description or "") if kind.description else "",
        )


def _rate_text(rate: float) -> str:
    return f"{rate:g}"


def _posted(
    filters: PostedFiltersDep,
    sampling_rate: Annotated[str, Form()] = "1",
    assignee: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> RuleInput:
    no_nul(sampling_rate, assignee, description)
    return RuleInput(
        filters=filters.form,
        json_mode=filters.json_mode,
        filters_json=filters.filters_json,
        sampling_rate=sampling_rate.strip(),
        assignee=assignee.strip(),
        description=description.strip(),
    )


PostedRule = Annotated[RuleInput, Depends(_posted)]


def _body(kind: RuleKind, posted: RuleInput) -> tuple[dict[str, Any], list[str]]:
    """The API request body the form stands for, or the problems that keep it from being one."""
    problems: list[str] = []
    body: dict[str, Any] = {"filters": filters_posted(posted.filters, posted.json_mode, posted.filters_json, problems)}
    if kind.sampling:
        body["sampling_rate"] = posted.sampling_rate
    if kind.assignee != "none":
        if posted.assignee:
            kind_, _, ident = posted.assignee.partition(":")
            body["assignee"] = {"type": kind_, "id": ident}
        elif kind.assignee == "required":
            problems.append("Choose who the rule assigns issues to.")
    if kind.description:
        body["description"] = posted.description or None
    return body, problems


def _validated(schema: type[RequestModel], body: dict[str, Any], posted: RuleInput) -> tuple[Any, list[str]]:
    try:
        return schema.model_validate(body), []
    except ValidationError as exc:
        return None, _problems(exc, None if posted.json_mode else posted.filters)


def _problems(exc: ValidationError, form: FilterForm | None) -> list[str]:
    """The schema's complaints in words, naming rows rather than JSON paths."""
    found: list[str] = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error.get("loc") else ""
        message = str(error.get("msg", "is not valid"))
        if where == "filters":
            text = filter_form.humanize_filter_error(message, form)
        elif where == "sampling_rate":
            text = "The sampling rate must be a number from 0 to 1 (1 drops every matching event, 0.25 a quarter)."
        elif where == "assignee":
            text = (
                "Choose who the rule assigns issues to."
                if error["type"] == "missing"
                else (f"The assignee is not valid: {message}")
            )
        else:
            text = f"{where or 'The form'}: {message}"
        if text not in found:
            found.append(text)
    return found


# --- showing rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRow:
    rule: Any
    words: list[tuple[str, str]]
    assignee: str | None
    disabled: str | None
    cannot_run: str | None
    in_browser: bool
    issue: Issue | None


def _assignee_label(members: Assignable, assignee: dict[str, Any] | None) -> str | None:
    if assignee is None:
        return None
    found = members.name((assignee["type"], assignee["id"]))
    return found or f"{assignee['type']} {assignee['id']} (no longer in the organization)"


def cannot_run(kind: RuleKind, filters: Any) -> str | None:
    """Why the pipeline would disable (or never match) the rule, before any event arrives."""
    if isinstance(filters, dict) and not has_filter_values(filters):
        return "It has no conditions, so it never matches." if kind.key == "grouping" else None
    try:
        compile_filters(filters)
    except EvaluationError as exc:
        return _in_rows(str(exc), filters)
    return None


def _in_rows(message: str, filters: Any) -> str:
    # The pipeline's messages name JSON paths; the page shows rows.
    return filter_form.humanize_filter_error(message, filter_form.from_filters(filters))


def _disabled_message(rule: Any) -> str | None:
    if not rule.disabled_data:
        return None
    message = rule.disabled_data.get("message") if isinstance(rule.disabled_data, dict) else None
    return _in_rows(str(message), rule.filters) if message else "Evaluating it failed."


def _rows(session: Session, project: Project, kind: RuleKind, assignees: Assignable) -> list[RuleRow]:
    rules = session.scalars(service.ordered_rules(kind.model, project.id)).all()
    issues = service.grouping_rule_issues(session, project.id, [r.id for r in rules]) if kind.key == "grouping" else {}
    return [
        RuleRow(
            rule=rule,
            words=filter_form.describe_parts(rule.filters),
            assignee=_assignee_label(assignees, service.assignee_of(rule)) if kind.assignee != "none" else None,
            disabled=_disabled_message(rule),
            cannot_run=None if rule.disabled_data else cannot_run(kind, rule.filters),
            in_browser=kind.sampling and client_safe_rule(rule.filters, rule.sampling_rate) is not None,
            issue=issues.get(rule.id),
        )
        for rule in rules
    ]


def _form_context(kind: RuleKind, posted: RuleInput, assignees: Assignable) -> dict[str, Any]:
    if not posted.filters_json:
        posted = dataclasses.replace(posted, filters_json=pretty_json(MATCH_ALL))
    return {
        "kind": kind,
        "kinds": KINDS,
        "posted": posted,
        **builder_context(posted.filters, issue_types=kind.issue_types),
        "assignees": assignees,
    }


def _base(project_id: int, kind: RuleKind) -> str:
    return f"/project/{project_id}/settings/{kind.slug}"


def _list_page(
    request: Request,
    session: Session,
    project: Project,
    kind: RuleKind,
    posted: RuleInput,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    assignees = assignable(session, project.organization_id)
    context = _form_context(kind, posted, assignees)
    context.update(
        section="settings",
        rules=_rows(session, project, kind, assignees),
        base=_base(project.id, kind),
        problems=list(problems),
        action=_base(project.id, kind),
    )
    return render(request, "rules.html", context, status_code=status)


def _edit_page(
    request: Request,
    session: Session,
    project: Project,
    kind: RuleKind,
    rule: Any,
    posted: RuleInput,
    problems: Sequence[str] = (),
    status: int = 200,
) -> Response:
    assignees = assignable(session, project.organization_id)
    context = _form_context(kind, posted, assignees)
    context.update(
        section="settings",
        rule=rule,
        disabled=_disabled_message(rule),
        words=filter_form.describe_parts(rule.filters),
        base=_base(project.id, kind),
        problems=list(problems),
        action=f"{_base(project.id, kind)}/{rule.id}",
    )
    return render(request, "rules_edit.html", context, status_code=status)


# --- changing rules: the API's create and update, step for step --------------------------------


def _next_order_key(session: Session, kind: RuleKind, project_id: int) -> int:
    # A rule made here goes last, where the person looking at the list expects it.
    model = kind.model
    highest = session.scalar(select(func.max(model.order_key)).where(model.project_id == project_id))
    return 0 if highest is None else min(highest + 1, _ORDER_KEY_MAX)


def _assignee_ids(session: Session, project: Project, assignee: Any) -> tuple[int | None, uuid.UUID | None]:
    if assignee is None:
        return None, None
    return service.resolve_assignee(session, project.organization_id, (assignee.type, assignee.id))


def _create(session: Session, project: Project, kind: RuleKind, body: Any) -> Any:
    """What ``api/<kind>_rules.create`` does with the same validated body."""
    if kind.key == "suppression":
        fields: dict[str, Any] = {
            "filters": body.filters if body.filters is not None else dict(MATCH_ALL),
            "sampling_rate": body.sampling_rate,
        }
    else:
        assignee = body.assignee
        fields = {"filters": body.filters, "assignee": (assignee.type, assignee.id) if assignee is not None else None}
        if kind.key == "grouping":
            fields["description"] = body.description
    return service.create_rule(
        session, kind.model, project.id, project.organization_id, order_key=body.order_key, **fields
    )


def _update(session: Session, project: Project, kind: RuleKind, rule: Any, body: Any) -> None:
    """What ``api/<kind>_rules._update`` does, and clearing a grouping rule's assignee."""
    if kind.key == "suppression":
        if body.sampling_rate is not None:
            rule.sampling_rate = body.sampling_rate
    else:
        if body.assignee is not None:
            rule.user_id, rule.role_id = _assignee_ids(session, project, body.assignee)
        elif kind.assignee == "optional":
            # The API keeps the assignee when none is sent; the form always sends its choice,
            # and "nobody" is one.
            rule.user_id, rule.role_id = None, None
        if kind.description:
            rule.description = body.description
    service.touch_rule(rule, body.filters)
    session.commit()


def moved(ids: Sequence[uuid.UUID], rule_id: uuid.UUID, direction: str) -> dict[uuid.UUID, int] | None:
    """New order keys (0, 1, …) with ``rule_id`` one place up or down, or None if it cannot move.

    Every rule is renumbered: rules made through the API often share order key 0 (ordered by
    creation), and swapping two equal keys would change nothing.
    """
    if rule_id not in ids or direction not in ("up", "down"):
        return None
    index = list(ids).index(rule_id)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(ids):
        return None
    order = list(ids)
    order[index], order[other] = order[other], order[index]
    return {rid: position for position, rid in enumerate(order)}


def _rule_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("There is no such rule in this project.") from None


def _saved_notice(kind: RuleKind, rule: Any, verb: str) -> str:
    problem = cannot_run(kind, rule.filters)
    text = f"The {kind.noun} was {verb}."
    if problem:
        text += f" It cannot run as it is, and will be disabled when it is next evaluated: {problem}"
    return text


def _register(kind: RuleKind) -> None:
    base = f"/project/{{project_id}}/settings/{kind.slug}"

    @router.get(base, name=f"ui_{kind.key}_rules")
    def list_page(request: Request, project: UiProject, session: SessionDep) -> Response:
        return _list_page(request, session, project, kind, RuleInput())

    @router.post(base, name=f"ui_{kind.key}_rules_create")
    def create(
        request: Request, project: UiProject, _: CsrfChecked, session: SessionDep, posted: PostedRule
    ) -> Response:
        body, problems = _body(kind, posted)
        body["order_key"] = _next_order_key(session, kind, project.id)
        validated, invalid = _validated(kind.create, body, posted) if not problems else (None, [])
        problems += invalid
        if not problems:
            try:
                rule = _create(session, project, kind, validated)
            except InvalidInput as exc:
                session.rollback()
                problems.append(exc.detail)
            else:
                return redirect(f"{_base(project.id, kind)}#rule-{rule.id}", _saved_notice(kind, rule, "created"))
        return _list_page(request, session, project, kind, posted, problems, status=400)

    @router.get(base + "/{rule_id}", name=f"ui_{kind.key}_rule")
    def edit_page(request: Request, project: UiProject, session: SessionDep, rule_id: str) -> Response:
        rule = service.get_rule(session, kind.model, project.id, _rule_id(rule_id))
        return _edit_page(request, session, project, kind, rule, RuleInput.of(kind, rule))

    @router.post(base + "/{rule_id}", name=f"ui_{kind.key}_rule_update")
    def update(
        request: Request, project: UiProject, _: CsrfChecked, session: SessionDep, posted: PostedRule, rule_id: str
    ) -> Response:
        rule = service.get_rule(session, kind.model, project.id, _rule_id(rule_id))
        body, problems = _body(kind, posted)
        validated, invalid = _validated(kind.update, body, posted) if not problems else (None, [])
        problems += invalid
        if not problems:
            try:
                _update(session, project, kind, rule, validated)
            except InvalidInput as exc:
                session.rollback()
                problems.append(exc.detail)
            else:
                return redirect(f"{_base(project.id, kind)}#rule-{rule.id}", _saved_notice(kind, rule, "saved"))
        return _edit_page(request, session, project, kind, rule, posted, problems, status=400)

    @router.post(base + "/{rule_id}/delete", name=f"ui_{kind.key}_rule_delete")
    def delete(project: UiProject, _: CsrfChecked, session: SessionDep, rule_id: str) -> Response:
        service.delete_rule(session, kind.model, project.id, _rule_id(rule_id))
        return redirect(_base(project.id, kind), f"The {kind.noun} was deleted.")

    @router.post(base + "/{rule_id}/move", name=f"ui_{kind.key}_rule_move")
    def move(
        project: UiProject,
        _: CsrfChecked,
        session: SessionDep,
        rule_id: str,
        direction: Annotated[Literal["up", "down"], Form()],
    ) -> Response:
        target = _rule_id(rule_id)
        ids = list(session.scalars(service.ordered_rules(kind.model, project.id).with_only_columns(kind.model.id)))
        if target not in ids:
            raise NotFound("There is no such rule in this project.")
        orders = moved(ids, target, direction)
        if orders is None:
            return redirect(f"{_base(project.id, kind)}#rule-{target}", f"The rule is already {_ends[direction]}.")
        service.reorder_rules(session, kind.model, project.id, orders)
        return redirect(f"{_base(project.id, kind)}#rule-{target}", f"The rule was moved {direction}.")


_ends = {"up": "first", "down": "last"}

for _kind in KINDS:
    _register(_kind)
