"""The issue inbox of a project: the list an engineer triages from.

GET lists the issues of one view (status tab, search, assignee, date range, sort, page), all
of it in the query string of a plain GET form, so every view is a URL to share and works
without JavaScript. POST applies one bulk action to the ticked rows of that view and sends
the browser back to it. Issues are chosen and ordered by ``queries.issue_order`` and only
the page's issues are summarised, so a page costs one ordering plus work for 50 issues,
however many the project has.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy.orm import Session

from trapline.api.deps import SessionDep
from trapline.errors import InvalidInput, NotFound
from trapline.issues import queries, service
from trapline.issues.queries import (
    ORDER_KEYS,
    DateRange,
    Direction,
    IssueFilter,
    IssueSummary,
    OrderKey,
    StatusFilter,
)
from trapline.projects.models import Project
from trapline.rules.service import Assignee
from trapline.ui.assignees import Assignable, assignable, parse_form_value
from trapline.ui.deps import CsrfChecked, UiProject, UiUser
from trapline.ui.errors import UiRoute
from trapline.ui.render import redirect, render
from trapline.volumes import counts

__all__ = [
    "RANGE_PRESETS",
    "STATUS_TABS",
    "Assign",
    "InboxView",
    "Merge",
    "SetStatus",
    "parse_assignee_choice",
    "parse_view",
    "plan_bulk",
    "router",
    "volume_resolution",
]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

STATUS_TABS: tuple[StatusFilter, ...] = ("active", "resolved", "suppressed", "all")
SORT_LABELS: dict[OrderKey, str] = {
    "last_seen": "Last seen",
    "first_seen": "First seen",
    "occurrences": "Occurrences",
    "users": "Users",
    "sessions": "Sessions",
}
PAGE_SIZES = (25, 50, 100)
DEFAULT_LIMIT = 50
MAX_LIMIT = PAGE_SIZES[-1]
# Deep offsets are a scan of everything before them; nobody pages that far by hand.
MAX_OFFSET = 100_000
MAX_SEARCH_CHARS = 1_000
# More than any page holds: a bulk action names the ticked rows of one page.
MAX_SELECTED = 500
DESCRIPTION_CHARS = 240


@dataclass(frozen=True)
class RangePreset:
    value: str  # date_from as the REST API reads it
    label: str
    words: str  # completes "No active issues …"
    bars: int  # sparkline buckets: whole hours or days where the range allows


RANGE_PRESETS = (
    RangePreset("-24h", "24 hours", "in the last 24 hours", 24),
    RangePreset("-7d", "7 days", "in the last 7 days", 28),
    RangePreset("-30d", "30 days", "in the last 30 days", 30),
    RangePreset("-90d", "90 days", "in the last 90 days", 45),
    # PostHog's "all" is four years back: one bar a month.
    RangePreset("all", "All time", "", 48),
)
DEFAULT_RANGE = "-7d"
_PRESETS = {preset.value: preset for preset in RANGE_PRESETS}
_DIRECTIONS: dict[str, Direction] = {"asc": "ASC", "desc": "DESC"}


# --- the view: what the query string asks for -----------------------------------------------


@dataclass(frozen=True)
class InboxView:
    status: StatusFilter
    q: str
    search: list[str]
    assignee: str  # "", "me", "unassigned", "user:<id>" or "role:<uuid>"
    date_from: str  # as given; "" is the default range
    date_to: str
    date_range: DateRange
    order_by: OrderKey
    direction: Direction
    limit: int
    offset: int

    @property
    def preset(self) -> RangePreset | None:
        return None if self.date_to else _PRESETS.get(self.date_from or DEFAULT_RANGE)

    @property
    def narrowed(self) -> bool:
        """A search or an assignee hides issues beyond the tab and the range."""
        return bool(self.search or self.assignee)

    def range_words(self) -> str:
        if self.preset is not None:
            return self.preset.words
        start = self.date_range.start.strftime("%Y-%m-%d %H:%M")
        if not self.date_to:
            return f"since {start} UTC"
        return f"between {start} and {self.date_range.end.strftime('%Y-%m-%d %H:%M')} UTC"


def _choice(params: Mapping[str, str], name: str, choices: Sequence[str], default: str, what: str) -> str:
    value = params.get(name, "").strip() or default
    if value not in choices:
        raise InvalidInput(f"“{value[:80]}” is not a {what}: use {', '.join(choices[:-1])} or {choices[-1]}.")
    return value


def _integer(params: Mapping[str, str], name: str, default: int, low: int, high: int | None, what: str) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"The {what} must be a whole number, not “{raw[:40]}”.") from None
    if value < low or (high is not None and value > high):
        limit = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise InvalidInput(f"The {what} must be {limit}; {value} is not.")
    return value


def parse_view(params: Mapping[str, str], *, now: datetime | None = None) -> InboxView:
    """The inbox view a query string asks for; ``InvalidInput`` says in words what is wrong."""
    status: Any = _choice(params, "status", STATUS_TABS, "active", "status")
    order_by: Any = _choice(params, "order_by", ORDER_KEYS, "last_seen", "sort order")
    raw_direction = params.get("order_direction", "").strip().lower()
    if raw_direction and raw_direction not in _DIRECTIONS:
        raise InvalidInput(f"“{raw_direction[:20]}” is not a sort direction: use asc or desc.")
    q = params.get("q", "")
    if len(q) > MAX_SEARCH_CHARS:
        raise InvalidInput(f"The search is too long: at most {MAX_SEARCH_CHARS} characters.")
    assignee = params.get("assignee", "").strip()
    if assignee:
        parse_assignee_choice(assignee, me=0)  # only the form here; the route checks who exists
    date_from, date_to = params.get("date_from", "").strip(), params.get("date_to", "").strip()
    try:
        date_range = queries.parse_date_range(date_from or None, date_to or None, now=now, default_from=DEFAULT_RANGE)
    except InvalidInput as exc:
        field = "start" if exc.attr == "date_from" else "end"
        given = date_from if field == "start" else date_to
        raise InvalidInput(f"The {field} of the date range (“{given[:40]}”) is not usable. {exc.detail}") from None
    # An over-large page is cut to the largest one rather than refused: it is a URL typed by hand.
    limit = min(_integer(params, "limit", DEFAULT_LIMIT, 1, None, "page size (limit)"), MAX_LIMIT)
    return InboxView(
        status=status,
        q=q,
        search=queries.search_tokens(q),
        assignee=assignee,
        date_from=date_from,
        date_to=date_to,
        date_range=date_range,
        order_by=order_by,
        direction=_DIRECTIONS.get(raw_direction) or queries.default_direction(order_by),
        limit=limit,
        offset=_integer(params, "offset", 0, 0, MAX_OFFSET, "offset"),
    )


def _view(request: Request) -> InboxView:
    return parse_view(request.query_params)


ViewDep = Annotated[InboxView, Depends(_view)]

AssigneeChoice = Assignee | Literal["unassigned"]


def parse_assignee_choice(choice: str, *, me: int) -> AssigneeChoice:
    """``me``, ``unassigned``, ``user:<id>`` or ``role:<uuid>`` as an assignee."""
    if choice == "me":
        return ("user", me)
    if choice == "unassigned":
        return "unassigned"
    found = parse_form_value(choice) if choice.strip() else None
    if found is None:
        raise InvalidInput("Choose a person or a role from the list.")
    return found


def volume_resolution(view: InboxView) -> int:
    """Bars in each row's sparkline: the preset's, or one an hour or a day for a custom range."""
    if view.preset is not None:
        return view.preset.bars
    span = view.date_range.end - view.date_range.start
    hours = span.total_seconds() / 3600
    if hours <= 48:
        return min(max(math.ceil(hours), 12), 48)
    return min(max(math.ceil(hours / 24), 12), 60)


def sparkline_bounds(date_range: DateRange, bars: int) -> list[datetime]:
    """The bounds of a row's sparkline: ``bars`` equal bars of whole hours ending with the
    current hour, covering the range. On whole hours the rollups answer them alone; the
    numbers beside them still count the range exactly."""
    span = date_range.end - date_range.start
    step = max(timedelta(hours=1), timedelta(hours=math.ceil(span / bars / timedelta(hours=1))))
    end = date_range.end.replace(minute=0, second=0, microsecond=0)
    if end < date_range.end:
        end += timedelta(hours=1)
    return [end - step * (bars - i) for i in range(bars + 1)]


# --- who issues can be assigned to ----------------------------------------------------------


@dataclass(frozen=True)
class Assignees:
    """The people and roles of the project's organization, for filters, bulk assign and rows."""

    me: int
    members: Assignable

    @property
    def users(self) -> list[tuple[int, str]]:
        return self.members.users

    @property
    def roles(self) -> list[tuple[uuid.UUID, str]]:
        return self.members.roles

    def label(self, assignee: Assignee | None) -> str:
        if assignee is None:
            return ""
        return self.members.name(assignee) or f"{assignee[0]} {assignee[1]}"

    def choice_label(self, choice: str) -> str:
        found = parse_assignee_choice(choice, me=self.me)
        return "nobody" if found == "unassigned" else self.label(found)

    def filter(self, choice: str) -> tuple[Assignee | None, bool]:
        """(assignee, unassigned) for the list's assignee filter."""
        if not choice:
            return None, False
        found = parse_assignee_choice(choice, me=self.me)
        if found == "unassigned":
            return None, True
        if not self.members.knows(found):
            raise InvalidInput(f"There is no such {found[0]} in this organization to filter by.")
        return found, False


def _assignees(session: Session, organization_id: uuid.UUID, me: int) -> Assignees:
    return Assignees(me=me, members=assignable(session, organization_id))


# --- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    url: str
    status: str
    name: str
    description: str
    library: str
    assignee: str
    volume: list[int]
    occurrences: int
    users: int
    sessions: int
    first_seen: datetime | None
    last_seen: datetime | None
    # Users and sessions estimated from sketches (an issue with many events in the range).
    estimated: bool = False


def _row(project_id: int, summary: IssueSummary, assignees: Assignees) -> Row:
    issue, numbers = summary.issue, summary.aggregates
    description = issue.description or ""
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1] + "…"
    return Row(
        id=issue.id,
        url=f"/project/{project_id}/error_tracking/{issue.id}",
        status=issue.status,
        name=issue.name or service.UNTITLED_ISSUE,
        description=description,
        library=summary.library or "",
        assignee=assignees.label(issue.assignee),
        volume=[bucket.value for bucket in numbers.volume or ()],
        occurrences=numbers.occurrences,
        users=numbers.users,
        sessions=numbers.sessions,
        estimated=numbers.estimated,
        # The issue's own first sighting (all time), as PostHog shows it; the range's otherwise.
        first_seen=issue.first_seen or numbers.first_seen,
        last_seen=numbers.last_seen,
    )


def _inbox(
    request: Request,
    session: Session,
    project: Project,
    user_id: int,
    view: InboxView,
    *,
    error: str = "",
    selected: Sequence[str] = (),
    status_code: int = 200,
) -> Response:
    assignees = _assignees(session, project.organization_id, user_id)
    assignee, unassigned = assignees.filter(view.assignee)
    flt = IssueFilter.over(
        view.date_range, status=view.status, assignee=assignee, unassigned=unassigned, search=view.search
    )
    # One more than a page tells whether there is a next one, without counting the range.
    ordered = queries.issue_order(project.id, flt, order_by=view.order_by, direction=view.direction, session=session)
    ids = list(session.scalars(ordered.limit(view.limit + 1).offset(view.offset)))
    has_next = len(ids) > view.limit
    summaries = queries.summarize(
        session,
        project.id,
        flt,
        ids[: view.limit],
        volume_bounds=sparkline_bounds(view.date_range, volume_resolution(view)),
    )
    rows = [_row(project.id, summary, assignees) for summary in summaries]
    return render(
        request,
        "inbox.html",
        {
            "section": "issues",
            "view": view,
            "rows": rows,
            "has_next": has_next,
            # The tabs count the issue table (all time, whatever the filters): cheap and stable,
            # where counting the range would aggregate every event in it once more.
            "counts": queries.issue_status_counts(session, project.id),
            "tabs": STATUS_TABS,
            "presets": RANGE_PRESETS,
            "sorts": SORT_LABELS,
            "page_sizes": PAGE_SIZES,
            "exact_distinct_limit": counts.EXACT_DISTINCT_LIMIT,
            "assignees": assignees,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "error": error,
            "selected": set(selected),
        },
        status_code=status_code,
    )


@router.get("/project/{project_id}/error_tracking")
def inbox(request: Request, project: UiProject, user: UiUser, session: SessionDep, view: ViewDep) -> Response:
    return _inbox(request, session, project, user.user_id, view)


# --- bulk actions ---------------------------------------------------------------------------

BULK_STATUS = {"resolve": "resolved", "suppress": "suppressed", "activate": "active"}
_STATUS_DONE = {"resolved": "resolved", "suppressed": "suppressed", "active": "reopened"}


@dataclass(frozen=True)
class SetStatus:
    status: str
    ids: list[uuid.UUID]


@dataclass(frozen=True)
class Assign:
    assignee: Assignee | None
    ids: list[uuid.UUID]


@dataclass(frozen=True)
class Merge:
    target: uuid.UUID
    sources: list[uuid.UUID]


BulkPlan = SetStatus | Assign | Merge


def _issue_ids(values: Sequence[str]) -> list[uuid.UUID]:
    try:
        return list(dict.fromkeys(uuid.UUID(value) for value in values))
    except ValueError:
        raise InvalidInput("The selection could not be read. Reload the page and try again.") from None


def plan_bulk(action: str, ids: Sequence[str], *, primary: str, assign_to: str, me: int) -> BulkPlan:
    """What a bulk form asks for, or ``InvalidInput`` saying what is missing.

    A merge keeps one issue, the "merge into" one if chosen, else the first ticked row, and
    folds the others into it (PostHog's merge keeps its target, with every fingerprint).
    """
    if len(ids) > MAX_SELECTED:
        raise InvalidInput(f"Too many issues selected: at most {MAX_SELECTED} at once.")
    chosen = _issue_ids(ids)
    into = _issue_ids([primary])[0] if primary else None
    if action == "merge" and into is not None and into not in chosen:
        chosen.insert(0, into)
    if not chosen:
        raise InvalidInput("No issues were selected: tick the issues to change first.")
    if action in BULK_STATUS:
        return SetStatus(BULK_STATUS[action], chosen)
    if action == "assign":
        if not assign_to:
            raise InvalidInput("Choose who to assign the selected issues to.")
        found = parse_assignee_choice(assign_to, me=me)
        return Assign(None if found == "unassigned" else found, chosen)
    if action == "merge":
        if len(chosen) < 2:
            raise InvalidInput("Select at least two issues to merge.")
        target = into or chosen[0]
        return Merge(target, [issue_id for issue_id in chosen if issue_id != target])
    raise InvalidInput("Choose what to do with the selected issues: resolve, suppress, reopen, assign or merge.")


def _issues(count: int) -> str:
    return f"{count} issue{'' if count == 1 else 's'}"


def _done(count: int, asked: int, verb: str) -> str:
    notice = f"{_issues(count)} {verb}."
    if count < asked:
        notice += f" {_issues(asked - count)} already {'was' if asked - count == 1 else 'were'}."
    return notice


def _apply(session: Session, project: Project, plan: BulkPlan, assignees: Assignees) -> str:
    """Carry out the plan through the issue services; returns the notice for the next page."""
    if isinstance(plan, SetStatus):
        changed = service.bulk_update(
            session, project.id, project.organization_id, action="set_status", ids=plan.ids, status=plan.status
        )
        return _done(len(changed), len(plan.ids), _STATUS_DONE[plan.status])
    if isinstance(plan, Assign):
        changed = service.bulk_update(
            session, project.id, project.organization_id, action="assign", ids=plan.ids, assignee=plan.assignee
        )
        verb = f"assigned to {assignees.label(plan.assignee)}" if plan.assignee else "unassigned"
        return _done(len(changed), len(plan.ids), verb)
    target = queries.get_issue(session, project.id, plan.target)
    name = target.name or service.UNTITLED_ISSUE
    service.merge_issues(session, project.id, plan.target, plan.sources)
    return f"{_issues(len(plan.sources))} merged into “{name}”."


@router.post("/project/{project_id}/error_tracking")
def bulk(
    request: Request,
    project: UiProject,
    user: UiUser,
    _: CsrfChecked,
    session: SessionDep,
    view: ViewDep,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[str] | None, Form()] = None,
    primary: Annotated[str, Form()] = "",
    assign_to: Annotated[str, Form()] = "",
) -> Response:
    selected = ids or []
    try:
        plan = plan_bulk(action, selected, primary=primary, assign_to=assign_to, me=user.user_id)
        notice = _apply(session, project, plan, _assignees(session, project.organization_id, user.user_id))
    except (InvalidInput, NotFound) as exc:
        session.rollback()
        detail = exc.detail
        if isinstance(exc, NotFound):
            detail = "Some of the selected issues no longer exist (merged by someone else?). Reload and try again."
        return _inbox(request, session, project, user.user_id, view, error=detail, selected=selected, status_code=400)
    # Back to the same view (path and query string of this form's action), with what happened.
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(target, notice=notice)
