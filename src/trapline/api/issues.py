"""``/error_tracking/issues``: the issue list with its numbers, one issue, and changing issues.

Reads need ``error_tracking:read``; update, merge, split, assign and bulk need
``error_tracking:write``. An issue id that is not a UUID, or names no issue of the project,
is PostHog's 404 "Issue not found".
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from trapline.api.deps import ReadProject, SessionDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, add_update_routes, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.issues import (
    ExistsOut,
    IssueAssign,
    IssueBulk,
    IssueEventOut,
    IssueListItem,
    IssueMerge,
    IssueOut,
    IssueRedirect,
    IssueSplit,
    IssueUpdate,
    SplitOut,
    SuccessOut,
    ValuesOut,
    parse_assignee_id,
)
from trapline.errors import InvalidInput, NotFound
from trapline.events.models import ExceptionEvent
from trapline.issues import issue_events, queries, service
from trapline.issues.queries import (
    MAX_VOLUME_RESOLUTION,
    Aggregates,
    IssueFilter,
    IssueSummary,
    IssueView,
    OrderKey,
    StatusFilter,
)
from trapline.rules.service import Assignee
from trapline.settings import Settings

__all__ = ["aggregations_out", "assignee_out", "issue_id_param", "issue_out", "list_item", "router"]

router = ApiRouter(prefix="/error_tracking/issues", tags=["error_tracking"])
RESOURCE = "issues"
_ERRORS = error_responses(*STANDARD_ERRORS)


# --- serialisation (shared with the query endpoints) ----------------------------------------


def assignee_out(assignee: Assignee | None) -> dict[str, Any] | None:
    return None if assignee is None else {"type": assignee[0], "id": assignee[1]}


def issue_out(view: IssueView) -> dict[str, Any]:
    return {
        "id": view.id,
        "status": view.status,
        "severity": view.severity,
        "name": view.name,
        "description": view.description,
        "first_seen": view.first_seen,
        "assignee": assignee_out(view.assignee),
        "external_issues": [],
        "cohort": None,
    }


def aggregations_out(numbers: Aggregates) -> dict[str, Any]:
    out: dict[str, Any] = {"occurrences": numbers.occurrences, "users": numbers.users, "sessions": numbers.sessions}
    if numbers.volume is not None:
        out["volumeRange"] = [bucket.value for bucket in numbers.volume]
        out["volume_buckets"] = [{"label": bucket.label, "value": bucket.value} for bucket in numbers.volume]
    return out


def list_item(summary: IssueSummary) -> dict[str, Any]:
    return {
        **issue_out(summary.issue),
        "last_seen": summary.aggregates.last_seen,
        "library": summary.library,
        "aggregations": aggregations_out(summary.aggregates),
    }


def issue_id_param(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("Issue not found") from None


def _one_issue(session: Session, project_id: int, issue_id: uuid.UUID) -> dict[str, Any]:
    issue = queries.get_issue(session, project_id, issue_id)
    return issue_out(queries.issue_views(session, [issue.id])[issue.id])


# --- query parameters -----------------------------------------------------------------------

_NOT_AN_ASSIGNEE = 'Expected a JSON object such as {"type": "user", "id": 1}.'


def _decoded_assignee(encoded: str) -> dict[str, Any] | None:
    try:
        decoded = orjson.loads(encoded)
    except orjson.JSONDecodeError:
        raise InvalidInput(_NOT_AN_ASSIGNEE, attr="assignee") from None
    if decoded is not None and not isinstance(decoded, dict):
        raise InvalidInput(_NOT_AN_ASSIGNEE, attr="assignee")
    return decoded


def _assignee_param(kind: Any, ident: Any, encoded: str | None) -> Assignee | None:
    """The assignee filter, from assignee_type + assignee_id or from assignee as JSON."""
    prefix = "assignee_"
    if encoded:
        decoded = _decoded_assignee(encoded)
        if decoded is None:
            return None
        kind, ident, prefix = decoded.get("type"), decoded.get("id"), "assignee__"
    if kind is None and ident is None:
        return None
    if kind is None or ident is None:
        missing = "type" if kind is None else "id"
        raise InvalidInput("This field is required.", code="required", attr=f"{prefix}{missing}")
    if kind not in ("user", "role"):
        raise InvalidInput(f'"{kind}" is not a valid choice.', code="invalid_choice", attr=f"{prefix}type")
    try:
        return (kind, parse_assignee_id(kind, ident))
    except ValueError as exc:
        raise InvalidInput(str(exc), attr=f"{prefix}id") from None


_DIRECTIONS: dict[str, queries.Direction] = {"ASC": "ASC", "asc": "ASC", "DESC": "DESC", "desc": "DESC"}


class _ListParams:
    def __init__(
        self,
        status: Annotated[StatusFilter, Query(description="active (default), resolved, suppressed or all.")] = "active",
        assignee_type: Annotated[Literal["user", "role"] | None, Query(description="With assignee_id.")] = None,
        assignee_id: Annotated[str | None, Query(description="A user id or a role UUID.")] = None,
        assignee: Annotated[str | None, Query(description='Or both at once, as JSON: {"type": …, "id": …}.')] = None,
        search: Annotated[
            str | None,
            Query(
                description="Words (or quoted phrases) that must all appear in the exception types, values, "
                "sources, functions or email of an event."
            ),
        ] = None,
        date_from: Annotated[
            str | None, Query(description='ISO date or datetime, relative ("-7d", "-24h", "-1m") or "all".')
        ] = None,
        date_to: Annotated[str | None, Query(description="Defaults to now.")] = None,
        order_by: Annotated[OrderKey, Query()] = "last_seen",
        order_direction: Annotated[
            Literal["ASC", "DESC", "asc", "desc"] | None, Query(description="Default DESC, ASC for first_seen.")
        ] = None,
        volume_resolution: Annotated[
            int, Query(ge=0, le=MAX_VOLUME_RESOLUTION, description="Number of volume buckets; 0 for none.")
        ] = 0,
    ) -> None:
        date_range = queries.parse_date_range(date_from, date_to)
        self.filter = IssueFilter.over(
            date_range,
            status=status,
            assignee=_assignee_param(assignee_type, assignee_id, assignee),
            search=queries.search_tokens(search, attr="search"),
        )
        self.order_by: OrderKey = order_by
        self.direction: queries.Direction | None = _DIRECTIONS.get(order_direction or "")
        self.volume_resolution = volume_resolution


# --- routes ---------------------------------------------------------------------------------


@router.get(
    "",
    name=f"error_tracking_{RESOURCE}_list",
    response_model=Page[IssueListItem],
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="List issues with their numbers over a date range",
    description="Issues with events in the range (default: the last 7 days), with occurrences, users, sessions "
    "and optional volume buckets over those events. Default: active issues, latest seen first.",
)
def list_(
    project: ReadProject, session: SessionDep, page: PageParamsDep, params: Annotated[_ListParams, Depends()]
) -> dict[str, Any]:
    stmt = queries.issue_order(
        project.id, params.filter, order_by=params.order_by, direction=params.direction, session=session
    )
    result = paginate(session, stmt, page, lambda issue_id: issue_id)
    summaries = queries.summarize(
        session, project.id, params.filter, result["results"], volume_resolution=params.volume_resolution
    )
    result["results"] = [list_item(summary) for summary in summaries]
    return result


@router.get(
    "/exists",
    name=f"error_tracking_{RESOURCE}_exists_retrieve",
    response_model=ExistsOut,
    responses=_ERRORS,
    summary="Whether the project has any issue",
)
def exists(project: ReadProject, session: SessionDep) -> dict[str, Any]:
    return {"exists": queries.issues_exist(session, project.id)}


@router.get(
    "/values",
    name=f"error_tracking_{RESOURCE}_values_retrieve",
    response_model=ValuesOut,
    responses=_ERRORS,
    summary="Issue names or descriptions containing a value",
)
def values(
    project: ReadProject,
    session: SessionDep,
    key: Annotated[str | None, Query(description="name or issue_description; anything else finds nothing.")] = None,
    value: Annotated[str | None, Query(description="Matched case-insensitively anywhere in the text.")] = None,
) -> dict[str, Any]:
    found = queries.issue_values(session, project.id, key, value)
    return {"results": [{"name": text} for text in found], "refreshing": False}


@router.post(
    "/bulk",
    name=f"error_tracking_{RESOURCE}_bulk_create",
    response_model=SuccessOut,
    responses=_ERRORS,
    summary="Set the status of, or assign, several issues",
)
def bulk(project: WriteProject, session: SessionDep, body: IssueBulk) -> dict[str, Any]:
    service.bulk_update(
        session,
        project.id,
        project.organization_id,
        action=body.action,
        ids=body.ids,
        status=body.status,
        assignee=body.assignee.as_assignee() if body.assignee else None,
    )
    return {"success": True}


@router.get(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_retrieve",
    response_model=IssueListItem,
    response_model_exclude_unset=True,
    responses={
        308: {
            "model": IssueRedirect,
            "description": "The fingerprint now belongs to another issue (merged or split): go there.",
            "headers": {"Location": {"description": "That issue's URL.", "schema": {"type": "string"}}},
        },
        **_ERRORS,
    },
    summary="Retrieve an issue, with its all-time numbers",
)
def retrieve(
    # Described as a UUID, as PostHog's schema has it: GET /issues/values and /issues/exists
    # would otherwise also match this path in the schema. (A str, so that a malformed id gets
    # PostHog's error body rather than FastAPI's.)
    id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
    project: ReadProject,
    session: SessionDep,
    request: Request,
    fingerprint: Annotated[
        str | None, Query(description="A fingerprint the caller saw on this issue; answers 308 if it moved.")
    ] = None,
) -> Any:
    issue_id = issue_id_param(id)
    if fingerprint:
        owner = queries.fingerprint_owner(session, project.id, fingerprint)
        if owner is not None and owner != issue_id:
            return JSONResponse(
                {"issue_id": str(owner)}, status_code=308, headers={"Location": _moved_url(request, owner)}
            )
    issue = queries.get_issue(session, project.id, issue_id)
    [summary] = queries.summarize(session, project.id, IssueFilter(), [issue.id])
    return list_item(summary)


def _moved_url(request: Request, issue_id: uuid.UUID) -> str:
    settings: Settings = request.app.state.settings
    url = request.url
    base = settings.base_url if settings.public_url else f"{url.scheme}://{url.netloc}"
    collection, _, rest = url.path.rpartition("/issues/")
    path = f"{collection}/issues/{issue_id}" + ("/" if rest.endswith("/") else "")
    return base + path + (f"?{url.query}" if url.query else "")


def _update(id: str, project: WriteProject, session: SessionDep, body: IssueUpdate) -> dict[str, Any]:
    issue = service.update_issue(session, project.id, issue_id_param(id), body.changes())
    return _one_issue(session, project.id, issue.id)


add_update_routes(
    router,
    resource=RESOURCE,
    endpoint=_update,
    response_model=IssueOut,
    summary="Change an issue's status, severity, name or description",
)


@router.delete(
    "/{id}",
    name=f"error_tracking_{RESOURCE}_destroy",
    status_code=405,
    response_class=Response,
    responses={405: {"description": "Issues cannot be deleted (merge them instead)."}, **_ERRORS},
    summary="Delete an issue (not allowed)",
)
def destroy(id: str, project: WriteProject) -> Response:
    return Response(status_code=405)


@router.post(
    "/{id}/merge",
    name=f"error_tracking_{RESOURCE}_merge_create",
    response_model=SuccessOut,
    responses=_ERRORS,
    summary="Merge other issues into this one",
    description="Every fingerprint of the named issues moves to this issue, with their past events; the named "
    "issues are deleted. success is false when only this issue itself was named. 404 if any named issue is gone.",
)
def merge(id: str, project: WriteProject, session: SessionDep, body: IssueMerge) -> dict[str, Any]:
    result = service.merge_issues(session, project.id, issue_id_param(id), body.ids)
    return {"success": result == service.MergeResult.MERGED}


@router.post(
    "/{id}/split",
    name=f"error_tracking_{RESOURCE}_split_create",
    response_model=SplitOut,
    responses=_ERRORS,
    summary="Move fingerprints of this issue to new issues",
)
def split(id: str, project: WriteProject, session: SessionDep, body: IssueSplit) -> dict[str, Any]:
    entries = [service.SplitEntry(entry.fingerprint, entry.name, entry.description) for entry in body.fingerprints]
    new_ids = service.split_issue(session, project.id, issue_id_param(id), entries, exclusive=body.exclusive)
    return {"success": True, "new_issue_ids": new_ids}


@router.patch(
    "/{id}/assign",
    name=f"error_tracking_{RESOURCE}_assign_partial_update",
    response_model=SuccessOut,
    responses=_ERRORS,
    summary="Assign an issue to a user or a role, or unassign it",
)
def assign(id: str, project: WriteProject, session: SessionDep, body: IssueAssign) -> dict[str, Any]:
    assignee = body.assignee.as_assignee() if body.assignee else None
    service.assign_issue(session, project.id, project.organization_id, issue_id_param(id), assignee)
    return {"success": True}


@router.get(
    "/{id}/events",
    name=f"error_tracking_{RESOURCE}_events_list",
    response_model=Page[IssueEventOut],
    responses=_ERRORS,
    summary="The events of an issue, newest first",
    description="Trapline addition: the stored $exception events whose fingerprint belongs to the issue now, "
    "with their processed properties (resolved stacks in $exception_list). All time unless a range is given.",
)
def events(
    id: str,
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    date_from: Annotated[str | None, Query(description='ISO or relative ("-7d"); default: no lower bound.')] = None,
    date_to: Annotated[str | None, Query(description="Default: no upper bound.")] = None,
) -> dict[str, Any]:
    issue = queries.get_issue(session, project.id, issue_id_param(id))
    start, end = queries.parse_bounds(date_from, date_to)
    return paginate(
        session, issue_events.issue_events(project.id, issue.id, IssueFilter(start=start, end=end)), page, _event_out
    )


def _event_out(event: ExceptionEvent) -> dict[str, Any]:
    return {
        "uuid": event.uuid,
        "timestamp": event.timestamp,
        "distinct_id": event.distinct_id,
        "properties": event.properties,
    }
