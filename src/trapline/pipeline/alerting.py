"""The alerting stage: what a batch's stored events set off, written to the alerts outbox.

It runs in the batch's write transaction, after the events are stored, and looks only at
events that were stored now: suppressed, dropped and retried events never fire anything, and
reprocessing (which does not run this stage) never does either. What fires:

* ``issue_created`` / ``issue_reopened``: the linking stage's changes, as cymbal emits
  ``$error_tracking_issue_created`` / ``…_reopened``;
* ``issue_spiking``: cymbal's detector (``alerts/spikes.py``) over 5-minute buckets of
  processing time, kept per issue in ``issue_bucket``; a spike is recorded as a spike event
  and snoozed per issue, whether or not an alert listens (PostHog lists spike events too);
* ``issue_frequency`` / ``issue_users``: more than N events (distinct users) of an issue in
  the last T minutes, decided by ``alerts/thresholds.py`` against each alert's state per issue.
  Events are counted per minute of event time (``fingerprint_minute``) and users per minute
  they were seen in (``fingerprint_user``), kept while the project has such an alert: a window
  is whole minutes, and counts start when the first such alert is made.

Each fired change goes to every enabled alert of its project with that trigger whose filters
match the triggering event (its processed properties, and the issue: status, name,
description, assignee). The notifications are written as outbox rows (``alerts/outbox.py``);
workers send them after the commit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trapline.accounts.models import Role, User
from trapline.alerts.counters import (
    SeenUsers,
    add_and_read_buckets,
    count_in,
    fingerprints_of,
    lock_states,
    minute_counts,
    minute_of,
    snooze,
    user_counts,
)
from trapline.alerts.messages import AlertRef, IssueFacts, ProjectRef, build_payload, issue_url
from trapline.alerts.models import (
    Alert,
    AlertIssueState,
    SpikeDetectionConfig,
    SpikeEvent,
)
from trapline.alerts.outbox import NewNotification, Throttle, enqueue
from trapline.alerts.spikes import SpikeSettings, find_spikes
from trapline.alerts.thresholds import decide
from trapline.ids import uuid7
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint
from trapline.pipeline.batch import Item
from trapline.pipeline.linking import IssueChange
from trapline.projects.models import Project
from trapline.rules.evaluate import EvaluationError, Predicate, Subject, compile_filters
from trapline.rules.filters import has_filter_values

__all__ = ["LoadedAlert", "ProjectAlerts", "load_alerts", "raise_alerts"]

log = logging.getLogger("trapline.alerts")

_CHANGE_TRIGGERS = {"created": "issue_created", "reopened": "issue_reopened"}
_THRESHOLD_TRIGGERS = ("issue_frequency", "issue_users")


@dataclass(frozen=True)
class LoadedAlert:
    id: uuid.UUID
    name: str
    trigger: str
    matcher: Predicate
    threshold: int = 0
    window: timedelta = timedelta(minutes=60)
    interval: timedelta | None = None
    throttle: Throttle | None = None
    # Whether its filters look at the issue (status, assignee…), which then has to be read.
    reads_issue: bool = False


@dataclass
class ProjectAlerts:
    """A project's enabled alerts and spike detector, read once per batch."""

    project: ProjectRef
    base_url: str
    spikes: SpikeSettings
    alerts: list[LoadedAlert] = field(default_factory=list)

    def listening(self, trigger: str) -> list[LoadedAlert]:
        return [alert for alert in self.alerts if alert.trigger == trigger]


def load_alerts(session: Session, project_ids: Iterable[int], base_url: str) -> dict[int, ProjectAlerts]:
    """Each project's enabled alerts (filters compiled) and spike detector settings."""
    ids = sorted(set(project_ids))
    if not ids:
        return {}
    projects = session.execute(
        select(Project.id, Project.name, SpikeDetectionConfig)
        .outerjoin(SpikeDetectionConfig, SpikeDetectionConfig.project_id == Project.id)
        .where(Project.id.in_(ids))
    ).all()
    loaded: dict[int, ProjectAlerts] = {}
    for project_id, name, config in projects:
        spikes = (
            SpikeSettings(config.enabled, config.multiplier, config.threshold, config.snooze_duration_minutes)
            if config is not None
            else SpikeSettings()
        )
        ref = ProjectRef(project_id, name, f"{base_url}/project/{project_id}/error_tracking")
        loaded[project_id] = ProjectAlerts(ref, base_url, spikes)
    rows = session.scalars(
        select(Alert).where(Alert.project_id.in_(ids), Alert.enabled.is_(True)).order_by(Alert.created_at, Alert.id)
    )
    for alert in rows:
        matcher = _matcher(alert)
        if matcher is None or alert.project_id not in loaded:
            continue
        throttle = (
            Throttle(alert.throttle_max, alert.throttle_minutes)
            if alert.throttle_max is not None and alert.throttle_minutes is not None
            else None
        )
        loaded[alert.project_id].alerts.append(
            LoadedAlert(
                id=alert.id,
                name=alert.name,
                trigger=alert.trigger,
                matcher=matcher,
                threshold=alert.threshold or 0,
                window=timedelta(minutes=alert.window_minutes or 60),
                interval=timedelta(minutes=alert.interval_minutes) if alert.interval_minutes else None,
                throttle=throttle,
                reads_issue=_reads_issue(alert.filters),
            )
        )
    return loaded


def _reads_issue(group: Any, depth: int = 0) -> bool:
    if not isinstance(group, dict) or depth > 20:
        return False
    return any(
        entry.get("type") == "error_tracking_issue" or _reads_issue(entry, depth + 1)
        for entry in group.get("values") or []
        if isinstance(entry, dict)
    )


def _matcher(alert: Alert) -> Predicate | None:
    if not has_filter_values(alert.filters):
        return _always
    try:
        return compile_filters(alert.filters)
    except EvaluationError as exc:
        # Filters are checked when an alert is saved; this only happens to filters that
        # stopped compiling (a newer Trapline is stricter). Skipped, not fatal for the batch.
        log.warning("alert skipped: its filters cannot be evaluated", extra={"alert": str(alert.id), "error": str(exc)})
        return None


def _always(_subject: Subject) -> bool:
    return True


# --- what fired ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fired:
    trigger: str
    project_id: int
    issue_id: uuid.UUID
    item: Item
    extra: dict[str, Any] = field(default_factory=dict)
    only_alert: uuid.UUID | None = None  # threshold triggers fire for one alert


def raise_alerts(
    session: Session,
    items: Sequence[Item],
    changes: Sequence[IssueChange],
    alerts: dict[int, ProjectAlerts],
    now: datetime,
    seen: SeenUsers | None = None,
) -> list[uuid.UUID]:
    """Detect what the batch's stored events set off and write the notifications; returns the
    ids of the notifications due now (the caller wakes a sender after committing, and tells
    ``seen`` the batch was committed)."""
    seen = seen if seen is not None else SeenUsers()
    by_issue: dict[uuid.UUID, list[Item]] = defaultdict(list)
    for item in items:
        if item.stored and item.issue_id is not None:
            by_issue[item.issue_id].append(item)
    if not by_issue:
        return []
    projects: dict[int, set[uuid.UUID]] = defaultdict(set)
    for issue_id, stored in by_issue.items():
        projects[stored[0].project_id].add(issue_id)

    facts = _Facts(session)
    fired: list[_Fired] = []
    for change in changes:
        trigger = _CHANGE_TRIGGERS[change.kind]
        first = by_issue.get(change.issue_id)
        config = alerts.get(change.project_id)
        if first and config is not None and config.listening(trigger):
            fired.append(_Fired(trigger, change.project_id, change.issue_id, first[0]))
    for project_id in sorted(projects):
        config = alerts.get(project_id)
        if config is None:
            continue
        issues = {issue_id: by_issue[issue_id] for issue_id in sorted(projects[project_id])}
        if config.spikes.enabled:
            fired.extend(_spikes(session, project_id, issues, config, now))
        thresholds = [alert for alert in config.alerts if alert.trigger in _THRESHOLD_TRIGGERS]
        if thresholds:
            fired.extend(_thresholds(session, project_id, issues, thresholds, facts, now, seen))
    if not fired:
        return []
    notifications, throttles = _notifications(fired, alerts, facts.of(f.issue_id for f in fired), now)
    return enqueue(session, notifications, throttles, now) if notifications else []


def _notifications(
    fired: Sequence[_Fired],
    alerts: dict[int, ProjectAlerts],
    known: dict[uuid.UUID, tuple[IssueFacts, dict[str, Any]]],
    now: datetime,
) -> tuple[list[NewNotification], dict[uuid.UUID, Throttle]]:
    """One notification per fired change and matching alert (decided here, written by the caller)."""
    notifications: list[NewNotification] = []
    throttles: dict[uuid.UUID, Throttle] = {}
    for change in fired:
        if change.issue_id not in known:
            continue  # deleted in the meantime
        config = alerts[change.project_id]
        issue, issue_properties = known[change.issue_id]
        subject = Subject(properties=change.item.output, issue=issue_properties)
        event_uuid = uuid7()  # one internal event per change, whichever alerts hear of it
        for alert in config.listening(change.trigger):
            if change.only_alert not in (None, alert.id) or not alert.matcher(subject):
                continue
            payload = build_payload(
                change.trigger,
                event_uuid=event_uuid,
                now=now,
                project=config.project,
                issue=dataclasses.replace(issue, fingerprint=change.item.fingerprint),
                alert=AlertRef(alert.id, alert.name, alert.trigger),
                issue_link=issue_url(config.base_url, change.project_id, change.issue_id),
                exception_timestamp=change.item.timestamp,
                exception_props=change.item.output,
                extra=change.extra,
            )
            notifications.append(
                NewNotification(change.project_id, alert.id, change.issue_id, change.trigger, event_uuid, payload)
            )
            if alert.throttle is not None:
                throttles[alert.id] = alert.throttle
    return notifications, throttles


# --- spikes ----------------------------------------------------------------------------------


def _spikes(
    session: Session, project_id: int, issues: dict[uuid.UUID, list[Item]], config: ProjectAlerts, now: datetime
) -> list[_Fired]:
    """Count the batch into the current bucket, then find, snooze and record spikes."""
    history, totals, distinct = add_and_read_buckets(
        session, project_id, {issue_id: len(stored) for issue_id, stored in issues.items()}, now
    )
    fired: list[_Fired] = []
    for spike in sorted(find_spikes(history, totals, distinct, config.spikes), key=lambda s: s.issue_id):
        if not snooze(session, spike.issue_id, now, now + config.spikes.snooze):
            continue
        session.add(
            SpikeEvent(
                id=uuid7(),
                project_id=project_id,
                issue_id=spike.issue_id,
                detected_at=now,
                computed_baseline=spike.computed_baseline,
                current_bucket_value=spike.current_bucket_value,
            )
        )
        if config.listening("issue_spiking"):
            latest = max(issues[spike.issue_id], key=lambda item: item.timestamp)
            extra = {"computed_baseline": spike.computed_baseline, "current_bucket_value": spike.current_bucket_value}
            fired.append(_Fired("issue_spiking", project_id, spike.issue_id, latest, extra))
    return fired


# --- frequency and users ---------------------------------------------------------------------


def _thresholds(
    session: Session,
    project_id: int,
    issues: dict[uuid.UUID, list[Item]],
    alerts: list[LoadedAlert],
    facts: _Facts,
    now: datetime,
    seen: SeenUsers,
) -> list[_Fired]:
    """The project's frequency and users alerts: for each issue whose newest event matches an
    alert, count the window without and with the batch, and decide whether it crossed.

    Counts come from per-minute event counters and per-user last-seen times, which this
    batch's events are added to here (only while the project has such alerts): reading a
    few rows per issue, where counting events (or their distinct users) would read them all.
    """
    latest = {issue_id: max(stored, key=lambda item: item.timestamp) for issue_id, stored in issues.items()}
    known = facts.of(latest) if any(alert.reads_issue for alert in alerts) else {}

    def matches(alert: LoadedAlert, issue_id: uuid.UUID) -> bool:
        if not alert.reads_issue:
            return alert.matcher(Subject(properties=latest[issue_id].output))
        return issue_id in known and alert.matcher(Subject(latest[issue_id].output, issue=known[issue_id][1]))

    watched = {
        alert.id: [issue_id for issue_id in sorted(latest) if matches(alert, issue_id)]
        for alert in sorted(alerts, key=lambda alert: alert.id)
    }
    # Lock what this batch may change first, in one order: on PostgreSQL a second worker
    # deciding the same issue waits here, then counts (at read committed) the first one's events.
    states = lock_states(session, watched)
    by_kind = {kind: [a for a in alerts if a.trigger == kind and watched[a.id]] for kind in _THRESHOLD_TRIGGERS}
    owned = fingerprints_of(session, project_id, (i for ids in watched.values() for i in ids))

    def of(alert: LoadedAlert) -> dict[uuid.UUID, list[str]]:
        return {issue_id: owned[issue_id] for issue_id in watched[alert.id] if owned.get(issue_id)}

    before: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    for alert in by_kind["issue_frequency"]:
        before[alert.id] = minute_counts(session, project_id, of(alert), minute_of(now - alert.window))
    for alert in by_kind["issue_users"]:
        before[alert.id] = user_counts(
            session, project_id, of(alert), minute_of(now - alert.window), alert.threshold + 1
        )
    stored = [(str(item.fingerprint), item.timestamp, item.distinct_id) for items in issues.values() for item in items]
    user_cap = max((alert.threshold + 1 for alert in by_kind["issue_users"]), default=0)
    count_in(session, project_id, stored, minutes=bool(by_kind["issue_frequency"]), user_cap=user_cap, seen=seen)

    fired: list[_Fired] = []
    for alert in [*by_kind["issue_frequency"], *by_kind["issue_users"]]:
        if alert.trigger == "issue_frequency":
            since = minute_of(now - alert.window)
            after = {
                issue_id: before[alert.id].get(issue_id, 0)
                + sum(1 for item in issues[issue_id] if minute_of(item.timestamp) >= since)
                for issue_id in watched[alert.id]
            }
        else:
            after = user_counts(session, project_id, of(alert), minute_of(now - alert.window), alert.threshold + 1)
        for issue_id in watched[alert.id]:
            current = states[alert.id][issue_id]
            fire, state = decide(
                before[alert.id].get(issue_id, 0), after.get(issue_id, 0), alert.threshold, current, now, alert.interval
            )
            if state != current:
                session.execute(
                    update(AlertIssueState)
                    .where(AlertIssueState.alert_id == alert.id, AlertIssueState.issue_id == issue_id)
                    .values(over=state.over, last_fired_at=state.last_fired_at)
                )
            if fire:
                extra = {
                    "count" if alert.trigger == "issue_frequency" else "users": after.get(issue_id, 0),
                    "threshold": alert.threshold,
                    "window_minutes": int(alert.window.total_seconds() // 60),
                }
                fired.append(_Fired(alert.trigger, project_id, issue_id, latest[issue_id], extra, alert.id))
    return fired


class _Facts:
    """The issues' facts, read once per batch for the issues that need them."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[uuid.UUID, tuple[IssueFacts, dict[str, Any]]] = {}

    def of(self, issue_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[IssueFacts, dict[str, Any]]]:
        wanted = set(issue_ids)
        missing = wanted - set(self._known)
        if missing:
            self._known.update(_issue_facts(self._session, missing))
        return {issue_id: self._known[issue_id] for issue_id in wanted if issue_id in self._known}


def _issue_facts(session: Session, issue_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[IssueFacts, dict[str, Any]]]:
    """Each issue's facts for the payload, and its properties for issue filters."""
    ids = sorted(issue_ids)
    totals = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                IssueFingerprint.issue_id,
                func.sum(IssueFingerprint.occurrences),
                func.min(IssueFingerprint.first_seen),
                func.max(IssueFingerprint.last_seen),
            )
            .where(IssueFingerprint.issue_id.in_(ids))
            .group_by(IssueFingerprint.issue_id)
        )
    }
    rows = session.execute(
        select(
            Issue.id,
            Issue.name,
            Issue.description,
            Issue.status,
            IssueAssignment.user_id,
            IssueAssignment.role_id,
            User.email,
            Role.name,
        )
        .outerjoin(IssueAssignment, IssueAssignment.issue_id == Issue.id)
        .outerjoin(User, User.id == IssueAssignment.user_id)
        .outerjoin(Role, Role.id == IssueAssignment.role_id)
        .where(Issue.id.in_(ids))
    ).all()
    facts: dict[uuid.UUID, tuple[IssueFacts, dict[str, Any]]] = {}
    for issue_id, name, description, status, user_id, role_id, email, role_name in rows:
        occurrences, first_seen, last_seen = totals.get(issue_id, (0, None, None))
        assignee: str | None = None
        labels: list[str] | None = None
        if user_id is not None:
            assignee = json.dumps({"type": "user", "id": user_id}, separators=(",", ":"))
            labels = [f"user:{user_id}", *([email] if email else [])]
        elif role_id is not None:
            assignee = json.dumps({"type": "role", "id": str(role_id)}, separators=(",", ":"))
            labels = [f"role:{role_id}", *([role_name] if role_name else [])]
        facts[issue_id] = (
            IssueFacts(
                id=issue_id,
                name=name,
                description=description,
                status=status,
                fingerprint=None,
                occurrences=int(occurrences or 0),
                first_seen=first_seen,
                last_seen=last_seen,
                assignee=assignee,
            ),
            # An assignee is matched by "user:42", "role:<uuid>", the person's email or the role's name.
            {"status": status, "name": name, "description": description, "assignee": labels},
        )
    return facts
