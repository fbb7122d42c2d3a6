"""One issue: its numbers and volume, one of its events with the stack traces, its fingerprints,
the alerts sent about it.

``GET /project/{id}/error_tracking/{issue_id}`` (PostHog's own path) shows the latest event
unless ``?event=<uuid>`` names another; newer/older links step through the issue's events
one index seek at a time. The forms change the issue through the same services the REST API
uses: status (``update_issue``), assignee (``assign_issue``) and "split out" a fingerprint
(``split_issue``), each answered with a redirect and a notice.

What is counted over what: occurrences, first and last seen are all-time, summed from the
fingerprints' running totals (no scan of events); users, sessions and the chart are over the
chosen range (``date_from``: the last 24 hours, 7 days (PostHog's default), 30 or 90 days),
because distinct counts have to read every event in the range. Stepping through events is
over all of the issue's events, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.alerts import service as alerts
from trapline.alerts.models import Alert, AlertDelivery
from trapline.api.deps import SessionDep
from trapline.db.types import utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.events.models import ExceptionEvent
from trapline.issues import issue_events, queries, service
from trapline.issues.issue_events import EventRef
from trapline.issues.models import Issue, IssueFingerprint
from trapline.issues.queries import DateRange, IssueFilter, VolumeBucket
from trapline.symbols.models import StackFrame
from trapline.ui.alert_words import LogRow, log_row
from trapline.ui.assignees import assignable, form_value, parse_form_value
from trapline.ui.deps import CsrfChecked, UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.render import redirect, render
from trapline.ui.stacktrace import (
    RecordLine,
    chain_summary,
    exception_views,
    fingerprint_origin,
    frame_keys,
    record_lines,
    show_value,
)
from trapline.volumes import counts

__all__ = [
    "ALERTS_SHOWN",
    "DEFAULT_RANGE",
    "RANGES",
    "chart_range",
    "event_facts",
    "property_rows",
    "router",
    "split_refusal",
    "volume_chart",
]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@dataclass(frozen=True)
class RangeChoice:
    label: str
    hours_per_bucket: int
    buckets: int

    @property
    def bucket_unit(self) -> str:
        return {1: "hour", 24: "day", 24 * 7: "week"}[self.hours_per_bucket]


# Fixed choices, so that a page's cost is bounded: distinct users and sessions read every
# event of the range.
RANGES: dict[str, RangeChoice] = {
    "-24h": RangeChoice("24 hours", 1, 24),
    "-7d": RangeChoice("7 days", 24, 7),
    "-30d": RangeChoice("30 days", 24, 30),
    "-90d": RangeChoice("90 days", 24, 90),
    "-52w": RangeChoice("1 year", 24 * 7, 52),
}
DEFAULT_RANGE = "-7d"
# Fingerprints whose "why grouped here" record is read (one event's properties each); an
# issue that merged hundreds of others lists the rest with their numbers only.
RECORDS_SHOWN = 20
# The newest notifications about the issue; the alert's page has its whole log.
ALERTS_SHOWN = 20
_STATUS_WORDS = {"active": "reopened", "resolved": "resolved", "suppressed": "suppressed"}
_CONTEXT_CHUNK = 500


# --- decisions (pure) -------------------------------------------------------------------------


def chart_range(choice: str, now: datetime) -> tuple[DateRange, list[datetime]]:
    """The range a choice covers and its bucket bounds, aligned to whole UTC hours or days.

    The last bucket is the current hour or day, so the range ends at its end, a little after
    now: bars then read as calendar days, not as "24-hour windows ending at this minute".
    """
    if choice not in RANGES:
        raise InvalidInput(f"Unknown range {choice!r}: choose one of {', '.join(RANGES)}.", attr="date_from")
    spec = RANGES[choice]
    step = timedelta(hours=spec.hours_per_bucket)
    if spec.hours_per_bucket == 1:
        current = now.replace(minute=0, second=0, microsecond=0)
    else:
        current = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = current - step * (spec.buckets - 1)
    bounds = [start + step * i for i in range(spec.buckets + 1)]
    return DateRange(start, bounds[-1]), bounds


_CHART_W, _CHART_H, _AXIS_W, _AXIS_H = 720, 132, 44, 18


def volume_chart(buckets: Sequence[VolumeBucket], *, hourly: bool, unit: str = "") -> Markup:
    """The range's events as an SVG bar chart with its scale and a few dates (no script)."""
    peak = max((bucket.value for bucket in buckets), default=0)
    total = sum(bucket.value for bucket in buckets)
    count = max(len(buckets), 1)
    plot_w, plot_h = _CHART_W - _AXIS_W, _CHART_H - _AXIS_H - 6
    slot = plot_w / count
    gap = 2 if slot > 6 else 0

    def when(moment: datetime) -> str:
        return moment.strftime("%H:00") if hourly else moment.strftime("%b %d")

    parts = []
    for i, bucket in enumerate(buckets):
        height = (bucket.value / peak) * plot_h if peak and bucket.value else 0.0
        height = max(height, 2.0) if bucket.value else 1.0
        x = _AXIS_W + i * slot
        kind = "bar" if bucket.value else "bar empty"
        title = f"{bucket.label:%Y-%m-%d %H:00} UTC: {bucket.value} event{'' if bucket.value == 1 else 's'}"
        parts.append(
            f'<rect class="{kind}" x="{x:.1f}" y="{6 + plot_h - height:.1f}" width="{max(slot - gap, 0.5):.1f}" '
            f'height="{height:.1f}"><title>{Markup.escape(title)}</title></rect>'
        )
    ticks = sorted({0, (len(buckets) - 1) // 2, len(buckets) - 1}) if buckets else []
    for i in ticks:
        x = _AXIS_W + i * slot + slot / 2
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{_CHART_H - 4}" text-anchor="middle">{when(buckets[i].label)}</text>'
        )
    parts.append(f'<text class="axis" x="{_AXIS_W - 6}" y="14" text-anchor="end">{peak}</text>')
    parts.append(f'<text class="axis" x="{_AXIS_W - 6}" y="{6 + plot_h}" text-anchor="end">0</text>')
    parts.append(
        f'<line class="baseline" x1="{_AXIS_W}" x2="{_CHART_W}" y1="{6 + plot_h + 0.5}" y2="{6 + plot_h + 0.5}"/>'
    )
    label = f"{total} events; at most {peak} in one {unit or ('hour' if hourly else 'day')}"
    return Markup(
        f'<svg class="volume" viewBox="0 0 {_CHART_W} {_CHART_H}" width="100%" preserveAspectRatio="xMinYMid meet" '
        f'role="img" '
        f'aria-label="{Markup.escape(label)}">{"".join(parts)}</svg>'
    )


def parse_issue_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("There is no such issue in this project.") from None


def _parse_event_id(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{value[:60]!r} is not an event id: event ids are UUIDs.", attr="event") from None


def split_refusal(fingerprints: Sequence[str], fingerprint: str) -> str | None:
    """Why splitting ``fingerprint`` out of an issue with these fingerprints is refused, if it is."""
    if fingerprint not in fingerprints:
        return (
            "That fingerprint is not part of this issue (any more): it may have been split out or merged "
            "elsewhere already. Nothing was changed."
        )
    if len(fingerprints) == 1:
        return (
            "This is the issue's only fingerprint: splitting it out would leave this issue with no events. "
            "Nothing was changed."
        )
    return None


def _joined(*parts: object) -> str | None:
    words = [str(part) for part in parts if part not in (None, "")]
    return " ".join(words) or None


def _releases(properties: Mapping[str, Any]) -> str | None:
    releases = properties.get("$exception_releases")
    if isinstance(releases, Mapping) and releases:
        names = []
        for entry in releases.values():
            if isinstance(entry, Mapping):
                names.append(_joined(entry.get("project"), entry.get("version")) or "?")
        return ", ".join(sorted(names))
    for key in ("$app_version", "release"):
        if isinstance(properties.get(key), str | int) and properties[key] != "":
            return str(properties[key])
    return None


def event_facts(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The properties an engineer looks at first, in words, those the event has."""
    facts = [
        ("URL", _joined(properties.get("$current_url"))),
        ("Screen", _joined(properties.get("$screen_name"))),
        ("Browser", _joined(properties.get("$browser"), properties.get("$browser_version"))),
        ("OS", _joined(properties.get("$os"), properties.get("$os_version"))),
        ("Device", _joined(properties.get("$device_type"))),
        ("Library", _joined(properties.get("$lib"), properties.get("$lib_version"))),
        ("Release", _releases(properties)),
        ("Level", _joined(properties.get("$exception_level"))),
    ]
    return [(label, value) for label, value in facts if value]


def property_rows(properties: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """Every property as (key, text, is nested JSON), sorted by key."""
    return [
        (str(key), show_value(value), isinstance(value, Mapping | list))
        for key, value in sorted(properties.items(), key=lambda item: str(item[0]))
    ]


def _split_name(issue: Issue, latest: ExceptionEvent | None) -> tuple[str | None, str | None]:
    """The new issue's name: the exception its latest event shows, else this issue's name."""
    if latest is not None:
        exceptions = latest.properties.get("$exception_list")
        if isinstance(exceptions, list) and exceptions and isinstance(exceptions[0], Mapping):
            first = exceptions[0]
            name, value = first.get("type"), first.get("value")
            if isinstance(name, str) and name:
                return name, value if isinstance(value, str) else None
    return issue.name, issue.description


# --- reads ------------------------------------------------------------------------------------


def _contexts(session: Session, project_id: int, exception_list: object) -> dict[str, Any]:
    keys = frame_keys(exception_list)
    digests = sorted({digest for digest, _ in keys})
    wanted = set(keys)
    found: dict[str, Any] = {}
    for i in range(0, len(digests), _CONTEXT_CHUNK):
        rows = session.execute(
            select(StackFrame.raw_id, StackFrame.part, StackFrame.context).where(
                StackFrame.project_id == project_id,
                StackFrame.raw_id.in_(digests[i : i + _CONTEXT_CHUNK]),
                StackFrame.context.is_not(None),
            )
        )
        for raw_id, part, context in rows:
            if (raw_id, part) in wanted and context is not None:
                found[f"{raw_id}/{part}"] = context
    return found


@dataclass(frozen=True)
class FingerprintRow:
    fingerprint: str
    occurrences: int
    first_seen: datetime | None
    last_seen: datetime | None
    origin: str
    record: list[RecordLine] | None  # None: not read (beyond RECORDS_SHOWN, or no events)
    latest_event: uuid.UUID | None
    current: bool  # the event shown has this fingerprint


def _fingerprint_rows(
    session: Session,
    project_id: int,
    issue_id: uuid.UUID,
    fingerprints: Sequence[IssueFingerprint],
    shown: ExceptionEvent | None,
) -> list[FingerprintRow]:
    latest: dict[str, EventRef] = {}
    for row in fingerprints[:RECORDS_SHOWN]:
        ref = issue_events.step_event(session, project_id, issue_id, "newest", fingerprint=row.fingerprint)
        if ref is not None:
            latest[row.fingerprint] = ref
    ids = [ref.id for ref in latest.values()]
    properties = (
        {
            row.id: row.properties
            for row in session.execute(
                select(ExceptionEvent.id, ExceptionEvent.properties).where(ExceptionEvent.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    rows = []
    for row in fingerprints:
        ref = latest.get(row.fingerprint)
        props = properties.get(ref.id) if ref is not None else None
        record = props.get("$exception_fingerprint_record") if isinstance(props, Mapping) else None
        rows.append(
            FingerprintRow(
                fingerprint=row.fingerprint,
                occurrences=row.occurrences,
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                origin=fingerprint_origin(row.fingerprint, record),
                record=record_lines(record, props.get("$exception_list")) if isinstance(props, Mapping) else None,
                latest_event=ref.uuid if ref is not None else None,
                current=shown is not None and shown.fingerprint == row.fingerprint,
            )
        )
    return rows


@dataclass(frozen=True)
class Steps:
    newer: uuid.UUID | None
    older: uuid.UUID | None
    newest: uuid.UUID | None
    oldest: uuid.UUID | None
    position: int  # 1 = the newest
    total: int


def _steps(session: Session, project_id: int, issue_id: uuid.UUID, event: ExceptionEvent, total: int) -> Steps:
    here = EventRef(event.id, event.uuid, event.timestamp)
    newer = issue_events.step_event(session, project_id, issue_id, "newer", here)
    older = issue_events.step_event(session, project_id, issue_id, "older", here)
    newest = issue_events.step_event(session, project_id, issue_id, "newest") if newer is not None else None
    oldest = issue_events.step_event(session, project_id, issue_id, "oldest") if older is not None else None
    position = 1 if newer is None else issue_events.newer_event_count(session, project_id, issue_id, here) + 1
    # The running totals count what the pipeline stored; never show "event 5 of 4".
    return Steps(
        newer=newer.uuid if newer else None,
        older=older.uuid if older else None,
        newest=newest.uuid if newest else None,
        oldest=oldest.uuid if oldest else None,
        position=position,
        total=max(total, position + (older is not None)),
    )


@dataclass(frozen=True)
class SentAlert:
    entry: LogRow
    alert_id: uuid.UUID
    alert_name: str


def _alerts_sent(session: Session, project_id: int, issue_id: uuid.UUID) -> list[SentAlert]:
    """One query on the delivery log's (issue_id, created_at) index, with each alert's name."""
    query = (
        alerts.alert_deliveries(project_id, issue_id=issue_id)
        .join(Alert, Alert.id == AlertDelivery.alert_id)
        .add_columns(Alert.name)
        .limit(ALERTS_SHOWN)
    )
    return [SentAlert(log_row(delivery), delivery.alert_id, name) for delivery, name in session.execute(query)]


def _find_issue(session: Session, project_id: int, issue_id: uuid.UUID) -> Issue | None:
    return session.scalar(select(Issue).where(Issue.project_id == project_id, Issue.id == issue_id))


def _issue(session: Session, project_id: int, issue_id: str) -> Issue:
    issue = _find_issue(session, project_id, parse_issue_id(issue_id))
    if issue is None:
        raise NotFound("There is no such issue in this project. It may have been merged into another issue.")
    return issue


def _issue_url(project_id: int, issue_id: uuid.UUID) -> str:
    return f"/project/{project_id}/error_tracking/{issue_id}"


# --- the page ---------------------------------------------------------------------------------


@router.get("/project/{project_id}/error_tracking/{issue_id}")
def issue_page(
    request: Request,
    project: UiProject,
    session: SessionDep,
    issue_id: str,
    event: Annotated[str | None, Query(max_length=100)] = None,
    date_from: Annotated[str, Query(max_length=20)] = DEFAULT_RANGE,
    frames: Annotated[str, Query(max_length=10)] = "app",
    order: Annotated[str, Query(max_length=10)] = "oldest",
) -> Response:
    ident = parse_issue_id(issue_id)
    issue = _find_issue(session, project.id, ident)
    if issue is None:
        target = queries.merged_into(session, project.id, ident)
        if target is None:
            raise NotFound("There is no such issue in this project.")
        return redirect(_issue_url(project.id, target), "That issue was merged into this one.")
    wanted = _parse_event_id(event)
    date_range, bounds = chart_range(date_from, utcnow())
    [summary] = queries.summarize(session, project.id, IssueFilter.over(date_range), [issue.id])
    fingerprints = issue_events.issue_fingerprints(session, project.id, issue.id)
    occurrences = sum(row.occurrences for row in fingerprints)
    first_seen = min((row.first_seen for row in fingerprints if row.first_seen), default=None)
    last_seen = max((row.last_seen for row in fingerprints if row.last_seen), default=None)
    volume = issue_events.issue_volume(session, project.id, issue.id, bounds)

    shown: ExceptionEvent | None
    if wanted is not None:
        shown = issue_events.issue_event(session, project.id, issue.id, wanted)
        if shown is None:
            raise NotFound("That event is not one of this issue's events: it may belong to another issue now.")
    else:
        newest = issue_events.step_event(session, project.id, issue.id, "newest")
        shown = session.get(ExceptionEvent, newest.id) if newest is not None else None

    context: dict[str, Any] = {}
    if shown is not None:
        properties = shown.properties if isinstance(shown.properties, Mapping) else {}
        exception_list = properties.get("$exception_list")
        exceptions = exception_views(
            exception_list,
            contexts=_contexts(session, project.id, exception_list),
            unresolved=shown.unresolved_frames or {},
            record=properties.get("$exception_fingerprint_record"),
            all_frames=frames == "all",
            newest_first=order == "newest",
        )
        errors = properties.get("$cymbal_errors")
        context = {
            "steps": _steps(session, project.id, issue.id, shown, occurrences),
            "exceptions": exceptions,
            "chain": chain_summary(exceptions),
            "facts": event_facts(properties),
            "property_rows": property_rows(properties),
            "handled": properties.get("$exception_handled"),
            "cymbal_errors": [str(e) for e in errors] if isinstance(errors, list) else [],
            "unresolved_count": len(shown.unresolved_frames or {}),
            "any_hidden": any(view.hidden_frames for view in exceptions),
        }
    members = assignable(session, project.organization_id)
    assignee = form_value(summary.issue.assignee)
    return render(
        request,
        "issue.html",
        {
            "section": "issues",
            "issue": issue,
            "view": summary.issue,
            "range_numbers": summary.aggregates,
            "exact_distinct_limit": counts.EXACT_DISTINCT_LIMIT,
            "occurrences": occurrences,
            "first_seen": first_seen,
            "last_seen": last_seen,
            "volume": volume,
            "chart": volume_chart(
                volume, hourly=RANGES[date_from].hours_per_bucket == 1, unit=RANGES[date_from].bucket_unit
            ),
            "range_key": date_from,
            "range_label": RANGES[date_from].label,
            "range_start": date_range.start,
            "ranges": RANGES,
            "event": shown,
            "all_frames": frames == "all",
            "newest_first": order == "newest",
            "fingerprints": _fingerprint_rows(session, project.id, issue.id, fingerprints, shown),
            "records_shown": RECORDS_SHOWN,
            "members": members,
            "assignee": assignee,
            "assignee_label": members.name(summary.issue.assignee) or assignee,
            "issue_url": _issue_url(project.id, issue.id),
            "alerts_sent": _alerts_sent(session, project.id, issue.id),
            "alerts_shown": ALERTS_SHOWN,
            **context,
        },
    )


# --- changes ----------------------------------------------------------------------------------


@router.post("/project/{project_id}/error_tracking/{issue_id}/status")
def change_status(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    issue_id: str,
    status: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    issue = _issue(session, project.id, issue_id)
    if status not in _STATUS_WORDS:
        raise InvalidInput("Choose resolve, suppress or reopen.", attr="status")
    before = issue.status
    service.update_issue(session, project.id, issue.id, {"status": status})
    if before == status:
        return redirect(_issue_url(project.id, issue.id), f"The issue was already {_STATUS_WORDS[status]}.")
    notice = f"The issue was {_STATUS_WORDS[status]}."
    if status == "suppressed":
        notice += " New events with its fingerprints are dropped until it is reopened."
    return redirect(_issue_url(project.id, issue.id), notice)


@router.post("/project/{project_id}/error_tracking/{issue_id}/assign")
def change_assignee(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    issue_id: str,
    assignee: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    issue = _issue(session, project.id, issue_id)
    chosen = parse_form_value(assignee)
    changed = service.assign_issue(session, project.id, project.organization_id, issue.id, chosen)
    if not changed:
        return redirect(_issue_url(project.id, issue.id), "Nothing changed: the issue was already assigned so.")
    if chosen is None:
        return redirect(_issue_url(project.id, issue.id), "The issue is now unassigned.")
    label = assignable(session, project.organization_id).name(chosen) or assignee
    return redirect(_issue_url(project.id, issue.id), f"The issue is now assigned to {label}.")


@router.post("/project/{project_id}/error_tracking/{issue_id}/split")
def split_fingerprint(
    project: UiProject,
    _: CsrfChecked,
    session: SessionDep,
    issue_id: str,
    fingerprint: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    issue = _issue(session, project.id, issue_id)
    owned = [row.fingerprint for row in issue_events.issue_fingerprints(session, project.id, issue.id)]
    refusal = split_refusal(owned, fingerprint)
    if refusal:
        raise InvalidInput(refusal, attr="fingerprint")
    newest = issue_events.step_event(session, project.id, issue.id, "newest", fingerprint=fingerprint)
    name, description = _split_name(issue, session.get(ExceptionEvent, newest.id) if newest else None)
    entry = service.SplitEntry(fingerprint, name, description)
    new_ids = service.split_issue(session, project.id, issue.id, [entry])
    if not new_ids:  # moved by someone else between the check and the split
        raise InvalidInput(split_refusal([], fingerprint) or "Nothing was changed.", attr="fingerprint")
    return redirect(
        _issue_url(project.id, new_ids[0]),
        "The fingerprint was split out into this new issue, with its past events.",
    )
