"""``/error_tracking/query``: PostHog's compact issue queries, made for agents and MCP tools.

They are POSTs but only read, so they need ``error_tracking:read`` (``ReadProject`` checks
the scope it names, whatever the method). Bodies and answers are camelCase, as PostHog's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from trapline.api.deps import ReadProject, SessionDep
from trapline.api.issues import aggregations_out, assignee_out
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, QueryRoute, error_responses
from trapline.api.schemas.query import (
    DateRangeIn,
    EventGroup,
    IssueEventsQuery,
    IssueEventsQueryOut,
    IssueQuery,
    IssueQueryOut,
    IssuesQuery,
    IssuesQueryOut,
)
from trapline.db.types import storable_text
from trapline.events.models import ExceptionEvent
from trapline.issues import issue_events as one_issue
from trapline.issues import queries
from trapline.issues.queries import DateRange, IssueFilter, IssueSummary

__all__ = [
    "BREAKDOWN_DIMENSIONS",
    "DEFAULT_GROUPS",
    "MAX_FRAMES",
    "PROPERTY_GROUPS",
    "event_properties",
    "latest_release",
    "router",
    "top_in_app_frame",
]

# These bodies describe searches, which may look for any character.
router = ApiRouter(prefix="/error_tracking/query", tags=["error_tracking"], route_class=QueryRoute)
_ERRORS = error_responses(*STANDARD_ERRORS)

LIST_DESCRIPTION_CHARS = 300
BREAKDOWN_DAYS = 30
SPARKLINE_RESOLUTION = 12
MAX_FRAMES = 50
PROPERTY_GROUPS: Mapping[EventGroup, tuple[str, ...]] = {
    "exception": (
        "$exception_types", "$exception_values", "$exception_list",
        "$exception_fingerprint", "$exception_level", "$exception_handled",
    ),
    "stacktrace": ("$exception_list",),
    "code_variables": ("$exception_list",),
    "environment": (
        "$lib", "$lib_version", "$browser", "$browser_version", "$os", "$os_version",
        "$app_namespace", "$app_version", "$device_type",
    ),
    "release": ("$exception_releases",),
    "navigation": ("$current_url", "$screen_name", "$referrer"),
    "correlation": ("$session_id", "$trace_id", "$span_id", "$ai_trace_id", "$ai_span_id"),
    "diagnostics": ("$cymbal_errors",),
}  # fmt: skip
DEFAULT_GROUPS: tuple[EventGroup, ...] = ("exception", "environment", "navigation", "correlation")
BREAKDOWN_DIMENSIONS = {
    "path": "$pathname",
    "url": "$current_url",
    "screen": "$screen_name",
    "browser": "$browser",
    "os": "$os",
    "library": "$lib",
    "library_version": "$lib_version",
    "app_version": "$app_version",
}


def _date_range(given: DateRangeIn | None) -> DateRange:
    given = given or DateRangeIn()
    return queries.parse_date_range(given.date_from, given.date_to, attr_prefix="dateRange__")


def _compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """PostHog's compact_dict: empty values go, 0 and false stay."""
    return {
        key: value for key, value in record.items() if value is not None and value != [] and value != {} and value != ""
    }


# --- stacks and properties ------------------------------------------------------------------

_NOT_SHOWN = frozenset({"junk_drawer", "raw_id"})


def _frames(exception_list: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    for exception in exception_list if isinstance(exception_list, list) else []:
        stack = exception.get("stacktrace") if isinstance(exception, dict) else None
        found = stack.get("frames") if isinstance(stack, dict) else None
        frames += [frame for frame in found if isinstance(frame, dict)] if isinstance(found, list) else []
    return frames


def _first(frame: Mapping[str, Any], keys: Iterable[str]) -> Any:
    return next((frame[key] for key in keys if frame.get(key) not in (None, "")), None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def top_in_app_frame(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """The crash-site-most in-app frame of an event (SDKs send the crash site last)."""
    frame = next(
        (f for f in reversed(_frames((properties or {}).get("$exception_list"))) if f.get("in_app") is True), None
    )
    if frame is None:
        return {}
    function = _text(_first(frame, ("resolved_name", "function", "mangled_name", "name")))
    return _compact(
        {
            "function": function if function != "?" else None,
            "source": _text(_first(frame, ("source", "filename", "abs_path", "module"))),
            "line": _number(_first(frame, ("line", "lineno"))),
            "column": _number(_first(frame, ("column", "colno"))),
            "in_app": True,
        }
    )


def latest_release(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """The newest release in an event's ``$exception_releases`` (hash id → release)."""
    releases = (properties or {}).get("$exception_releases")
    values: list[Any] = list(releases.values()) if isinstance(releases, dict) else []
    values = releases if isinstance(releases, list) else values
    records = [record for record in values if isinstance(record, dict)]
    if not records:
        return {}
    release = max(records, key=lambda r: str(r.get("timestamp") or r.get("created_at") or ""))
    metadata = release.get("metadata")
    git = metadata.get("git") if isinstance(metadata, dict) else None
    git = git if isinstance(git, dict) else {}
    return _compact(
        {
            "version": _text(release.get("version")),
            "project": _text(release.get("project")),
            "timestamp": _text(release.get("timestamp") or release.get("created_at")),
            "commit_id": _text(git.get("commit_id")),
            "branch": _text(git.get("branch")),
            "repo_name": _text(git.get("repo_name")),
        }
    )


def _stack(stack: Any, *, variables: bool, only_app_frames: bool) -> dict[str, Any] | None:
    if not isinstance(stack, dict):
        return None
    hidden = _NOT_SHOWN if variables else _NOT_SHOWN | {"code_variables"}
    frames = stack.get("frames")
    frames = frames if isinstance(frames, list) else []
    kept = [
        {key: value for key, value in frame.items() if key not in hidden}
        for frame in frames
        if isinstance(frame, dict) and (frame.get("in_app") is True or not only_app_frames)
    ]
    # The crash site is last: a deep stack keeps its last frames.
    out = {key: value for key, value in stack.items() if key not in _NOT_SHOWN and key != "frames"}
    return {**out, "frames": kept[-MAX_FRAMES:]}


def _exception_list(value: Any, *, stacks: bool, variables: bool, only_app_frames: bool) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for exception in value:
        if not isinstance(exception, dict):
            continue
        summary = _compact({key: exception.get(key) for key in ("type", "value", "module", "mechanism")})
        stack = _stack(exception.get("stacktrace"), variables=variables, only_app_frames=only_app_frames)
        if stacks and stack is not None:
            summary["stacktrace"] = stack
        out.append(summary)
    return out


def event_properties(
    properties: Mapping[str, Any], include: Sequence[EventGroup] | None, *, only_app_frames: bool = True
) -> dict[str, Any]:
    """The properties of the requested groups, with ``$exception_list`` normalised.

    Without ``stacktrace`` or ``code_variables`` the exception list is a summary (type, value,
    module, mechanism); with them it has the stacks, without ``junk_drawer`` and ``raw_id``,
    only in-app frames unless ``only_app_frames`` is false, and at most the last 50 frames.
    Frame variables are kept only for ``code_variables``.
    """
    groups = include or DEFAULT_GROUPS
    stacks = "stacktrace" in groups or "code_variables" in groups
    keys = dict.fromkeys(key for group in groups for key in PROPERTY_GROUPS[group])
    out: dict[str, Any] = {}
    for key in keys:
        value = properties.get(key)
        if value is None:
            continue
        if key == "$exception_list":
            value = _exception_list(
                value, stacks=stacks, variables="code_variables" in groups, only_app_frames=only_app_frames
            )
        out[key] = value
    return out


# --- routes ---------------------------------------------------------------------------------


def _list_entry(summary: IssueSummary) -> dict[str, Any]:
    issue = summary.issue
    description = issue.description
    if description and len(description) > LIST_DESCRIPTION_CHARS:
        description = description[: LIST_DESCRIPTION_CHARS - 1] + "…"
    properties = summary.latest.properties if summary.latest else None
    return {
        "id": issue.id,
        "name": issue.name,
        "description": description,
        "status": issue.status,
        "severity": issue.severity,
        "first_seen": issue.first_seen,
        "last_seen": summary.aggregates.last_seen,
        "library": summary.library,
        "source": top_in_app_frame(properties).get("source"),
        "assignee": assignee_out(issue.assignee),
        "aggregations": aggregations_out(summary.aggregates),
    }


def _texts(value: str | list[str] | None) -> list[str]:
    values = [value] if isinstance(value, str) else value or []
    return [storable_text(text) for text in values]


def _page(results: list[dict[str, Any]], more: bool, limit: int, offset: int) -> dict[str, Any]:
    page: dict[str, Any] = {"results": results, "hasMore": more, "limit": limit, "offset": offset}
    if more:
        page["nextOffset"] = offset + limit
    return page


@router.post(
    "/issues",
    name="error_tracking_query_issues_list_create",
    response_model=IssuesQueryOut,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="List compact error tracking issues",
    description="Issues with events in the range and their counts over those events. hasMore/nextOffset page.",
)
def issues(project: ReadProject, session: SessionDep, body: IssuesQuery) -> dict[str, Any]:
    search = " ".join(text.strip() for text in (body.searchQuery, body.user, body.filePath) if text and text.strip())
    flt = IssueFilter.over(
        _date_range(body.dateRange),
        status=body.status,
        assignee=body.assignee.as_assignee() if body.assignee else None,
        search=queries.search_tokens(search, attr="searchQuery"),
        libraries=_texts(body.library),
        fingerprints=_texts(body.fingerprint),
        url=storable_text(body.url) if body.url else None,
    )
    stmt = queries.issue_order(project.id, flt, order_by=body.orderBy, direction=body.orderDirection, session=session)
    # One row more than asked for tells whether there is a next page, without a count.
    ids = list(session.scalars(stmt.limit(body.limit + 1).offset(body.offset)))
    summaries = queries.summarize(
        session, project.id, flt, ids[: body.limit], volume_resolution=body.volumeResolution, with_properties=True
    )
    return _page([_list_entry(s) for s in summaries], len(ids) > body.limit, body.limit, body.offset)


@router.post(
    "/issue",
    name="error_tracking_query_issue_create",
    response_model=IssueQueryOut,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="Get compact error tracking issue details",
    description="One issue with its impact over the range, its top in-app frame, latest release and optional "
    "sparkline and breakdown.",
)
def issue(project: ReadProject, session: SessionDep, body: IssueQuery) -> dict[str, Any]:
    found = queries.get_issue(session, project.id, body.issueId)
    date_range = _date_range(body.dateRange)
    resolution = body.volumeResolution or (SPARKLINE_RESOLUTION if body.includeSparkline else 0)
    flt = IssueFilter.over(date_range, issue_ids=[found.id])
    [summary] = queries.summarize(
        session, project.id, flt, [found.id], volume_resolution=resolution, with_properties=True
    )
    view, numbers = summary.issue, summary.aggregates
    if numbers.occurrences == 0:
        # PostHog's answer for an issue without events in the range.
        empty = _compact({"id": view.id, "name": view.name, "description": view.description, "status": view.status})
        return {**empty, "impact": {}, **({"sparkline": []} if body.includeSparkline else {})}
    properties = summary.latest.properties if summary.latest else None
    top = top_in_app_frame(properties)
    return _compact(
        {
            "id": view.id,
            "name": view.name,
            "description": view.description,
            "status": view.status,
            "severity": view.severity,
            "first_seen": view.first_seen,
            "last_seen": numbers.last_seen,
            "library": summary.library,
            "source": top.get("source"),
            "function": top.get("function"),
            "assignee": assignee_out(view.assignee),
            "top_in_app_frame": top,
            "latest_release": latest_release(properties),
            "impact": {"occurrences": numbers.occurrences, "users": numbers.users, "sessions": numbers.sessions},
            "sparkline": [b.value for b in numbers.volume or []] if body.includeSparkline else None,
            "breakdown": _breakdown(session, project.id, found.id, date_range) if body.includeBreakdown else None,
        }
    )


def _breakdown(session: Session, project_id: int, issue_id: uuid.UUID, date_range: DateRange) -> dict[str, Any]:
    earliest = date_range.end - timedelta(days=BREAKDOWN_DAYS)
    start = max(date_range.start, earliest)
    occurrences, session_ids, values = one_issue.breakdown(
        session, project_id, issue_id, IssueFilter(start=start, end=date_range.end), BREAKDOWN_DIMENSIONS
    )
    if values["path"]:
        values["url"] = []  # URLs only stand in for paths (backend SDKs send no $pathname)
    top_values = {name: [{"value": v, "count": c} for v, c in found] for name, found in values.items() if found}
    return {
        "date_from": start,
        "date_to": date_range.end,
        "range_limited": date_range.start < earliest,
        "occurrences": occurrences,
        "sample_session_ids": session_ids,
        "top_values": top_values,
    }


@router.post(
    "/issue_events",
    name="error_tracking_query_issue_events_create",
    response_model=IssueEventsQueryOut,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="List exception events of an error tracking issue",
    description="Events of the issue in the range (newest first by default), with the property groups asked for "
    "and normalised stacks.",
)
def issue_events(project: ReadProject, session: SessionDep, body: IssueEventsQuery) -> dict[str, Any]:
    found = queries.get_issue(session, project.id, body.issueId)
    flt = IssueFilter.over(
        _date_range(body.dateRange), search=queries.search_tokens(body.searchQuery, attr="searchQuery")
    )
    stmt = one_issue.issue_events(project.id, found.id, flt, direction=body.orderDirection)
    events: list[ExceptionEvent] = list(session.scalars(stmt.limit(body.limit + 1).offset(body.offset)))
    results = [
        {
            "uuid": event.uuid,
            "timestamp": event.timestamp,
            "distinct_id": event.distinct_id,
            "properties": event_properties(event.properties, body.include, only_app_frames=body.onlyAppFrames),
        }
        for event in events[: body.limit]
    ]
    return _page(results, len(events) > body.limit, body.limit, body.offset)
