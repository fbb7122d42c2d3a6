"""Use cases of a project's error tracking settings (the REST API and the UI), and PostHog's
``setup_status``: is error tracking sending anything, and from which SDKs.

Settings are PostHog's four rate limit fields plus Trapline's retention, each an integer or
None (no row is all None). Values are checked here, once for every caller, with the words
Django REST framework uses, so a form and the API refuse the same things alike.

``setup_status`` reads only what Trapline stores: processed ``$exception`` events. PostHog
counts every event a project sends; Trapline drops the others at capture, so its
``recent_event_count`` and ``recent_exception_count`` are the same number, and PostHog's sign
that posthog-node's autocapture is off (node events, no exceptions) becomes: posthog-node
sends exceptions, but none of its recent ones was captured automatically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, exists, func, select, true
from sqlalchemy.orm import Session

from trapline.db.types import utcnow
from trapline.db.upsert import dialect_insert
from trapline.errors import InvalidInput
from trapline.events.models import ExceptionEvent
from trapline.issues.models import Issue
from trapline.limits.models import ErrorTrackingSettings
from trapline.projects.models import Project
from trapline.sdk.config import CaptureSettings, remote_config

__all__ = [
    "BOUNDS",
    "FIELDS",
    "NODE_AUTOCAPTURE_WARNING",
    "RECENT_PERIOD_DAYS",
    "ObservedSdk",
    "SettingsView",
    "SetupStatus",
    "SetupWarning",
    "get_settings",
    "sdk_configuration",
    "setup_status",
    "setup_warnings",
    "update_settings",
    "validate_changes",
]

AutocaptureConfiguration = Literal["project_setting", "local", "unknown"]

# PostHog looks back this far for events and SDKs.
RECENT_PERIOD_DAYS = 7
# The columns are 32-bit integers on PostgreSQL; anything larger must be a 400, not a 500.
_INT_MAX = 2**31 - 1
# Inclusive (lowest, highest) of each setting. Retention stops at a hundred years, as the
# installation's TRAPLINE_RETENTION_DAYS does.
BOUNDS: Mapping[str, tuple[int, int]] = {
    "project_rate_limit_value": (1, _INT_MAX),
    "project_rate_limit_bucket_size_minutes": (1, _INT_MAX),
    "per_issue_rate_limit_value": (1, _INT_MAX),
    "per_issue_rate_limit_bucket_size_minutes": (1, _INT_MAX),
    "retention_days": (1, 36_500),
    "max_events_per_issue": (1, _INT_MAX),
}
# At most this many SDKs are listed: $lib is whatever clients send.
_MAX_OBSERVED_SDKS = 50
# posthog-node's autocapture is judged on its newest exceptions only, so that the check costs
# the same for a project with millions of them.
_NODE_SAMPLE = 1000
NODE_AUTOCAPTURE_WARNING = "node_autocapture_requires_local_configuration"


@dataclass(frozen=True)
class SettingsView:
    """A project's error tracking settings; None means no limit (or, for ``retention_days``,
    the installation's default)."""

    project_rate_limit_value: int | None = None
    project_rate_limit_bucket_size_minutes: int | None = None
    per_issue_rate_limit_value: int | None = None
    per_issue_rate_limit_bucket_size_minutes: int | None = None
    retention_days: int | None = None
    max_events_per_issue: int | None = None


FIELDS: tuple[str, ...] = tuple(field.name for field in fields(SettingsView))


@dataclass(frozen=True)
class ObservedSdk:
    """An SDK ($lib) that sent exceptions in the recent period, and where its autocapture is
    turned on: by the project's setting, in the SDK's own initialisation, or unknown."""

    library: str
    event_count: int
    last_seen_at: datetime
    latest_version: str | None
    autocapture_configuration: AutocaptureConfiguration
    local_option: str | None


@dataclass(frozen=True)
class SetupWarning:
    code: str
    message: str


@dataclass(frozen=True)
class SetupStatus:
    """PostHog's ``setup_status`` answer."""

    project_autocapture_enabled: bool
    remote_config_autocapture_enabled: bool | None
    has_issues: bool
    recent_data_available: bool
    recent_period_days: int
    recent_event_count: int | None
    recent_exception_count: int | None
    last_event_at: datetime | None
    last_exception_at: datetime | None
    observed_sdks: list[ObservedSdk]
    warnings: list[SetupWarning]


# --- settings ------------------------------------------------------------------------------------

_TABLE = cast(Table, ErrorTrackingSettings.__table__)


def get_settings(session: Session, project_id: int) -> SettingsView:
    """The project's settings (all None when it never saved any)."""
    row = session.execute(select(*(_TABLE.c[name] for name in FIELDS)).where(_TABLE.c.project_id == project_id)).first()
    return SettingsView() if row is None else SettingsView(*row)


def validate_changes(changes: Mapping[str, Any]) -> dict[str, int | None]:
    """``changes`` checked: known settings only, each None or an integer within its bounds.

    Raises ``InvalidInput`` naming the first bad field, in DRF's words for an
    ``IntegerField(min_value=…, max_value=…, allow_null=True)``.
    """
    checked: dict[str, int | None] = {}
    for name, value in changes.items():
        if name not in BOUNDS:
            raise InvalidInput(f"Unknown setting '{name}'.", attr=name)
        if value is None:
            checked[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("A valid integer is required.", attr=name)
        lowest, highest = BOUNDS[name]
        if value < lowest:
            raise InvalidInput(f"Ensure this value is greater than or equal to {lowest}.", code="min_value", attr=name)
        if value > highest:
            raise InvalidInput(f"Ensure this value is less than or equal to {highest}.", code="max_value", attr=name)
        checked[name] = value
    return checked


def update_settings(session: Session, project_id: int, changes: Mapping[str, Any]) -> SettingsView:
    """Change the settings given (None clears one), leave the others, commit; the result."""
    checked = validate_changes(changes)
    if checked:
        # An upsert, so that two first saves at once (PostgreSQL) both land instead of one
        # failing on the primary key.
        insert = dialect_insert(session, _TABLE).values(project_id=project_id, **checked)
        session.execute(insert.on_conflict_do_update(index_elements=["project_id"], set_=checked))
        session.commit()
    return get_settings(session, project_id)


# --- setup status --------------------------------------------------------------------------------

# Where PostHog says each SDK turns exception autocapture on: posthog-js ($lib "web") takes it
# from the project's setting (through remote config), posthog-node from an option in its own
# initialisation. PostHog lists its other SDKs (posthog-python, -ruby, -go, …) as unknown,
# which is what every library not named here is.
_SDK_CONFIGURATIONS: Mapping[str, tuple[AutocaptureConfiguration, str | None]] = {
    "web": ("project_setting", None),
    "posthog-node": ("local", "enableExceptionAutocapture"),
}


def sdk_configuration(library: str) -> tuple[AutocaptureConfiguration, str | None]:
    """Where ``library`` turns exception autocapture on, and the option that does it.

    Libraries PostHog does not list (Sentry SDKs, which Trapline also takes) are ``unknown``.
    """
    return _SDK_CONFIGURATIONS.get(library, ("unknown", None))


def setup_warnings(observed: Sequence[ObservedSdk], *, node_autocaptured: bool) -> list[SetupWarning]:
    """What the observed SDKs suggest is misconfigured.

    posthog-node captures uncaught exceptions only when told to in code; the project's setting
    does not reach it. When none of its recent exceptions was captured that way, the option is
    probably off (or nothing crashed: this cannot be told from the events, hence a warning).
    """
    if any(sdk.library == "posthog-node" for sdk in observed) and not node_autocaptured:
        return [
            SetupWarning(
                NODE_AUTOCAPTURE_WARNING,
                "posthog-node captures uncaught exceptions only when it is initialised with "
                "`enableExceptionAutocapture: true`; the project's autocapture setting does not "
                "apply to it. None of its recent exceptions was captured automatically.",
            )
        ]
    return []


def published_autocapture(remote: CaptureSettings | None) -> bool | None:
    """The ``autocaptureExceptions`` remote config gives browsers, or None when there is none."""
    if remote is None:
        return None
    value = remote_config(remote).get("autocaptureExceptions")
    return value if isinstance(value, bool) else None


def setup_status(
    session: Session, project: Project, *, remote: CaptureSettings | None, now: datetime | None = None
) -> SetupStatus:
    """How error tracking is set up for ``project``, from its events of the recent period.

    ``remote`` is what remote config currently serves for the project's token (the SDK
    config cache's entry), so the answer shows what browsers get, not only what was saved.
    """
    since = (now or utcnow()) - timedelta(days=RECENT_PERIOD_DAYS)
    # One pass over the period through the (project_id, timestamp) index gives the totals
    # and the per-SDK numbers.
    groups = session.execute(
        select(ExceptionEvent.library, func.count(), func.max(ExceptionEvent.timestamp))
        .where(ExceptionEvent.project_id == project.id, ExceptionEvent.timestamp >= since)
        .group_by(ExceptionEvent.library)
    ).all()
    total = sum(count for _, count, _ in groups)
    last_event_at = max((last for _, _, last in groups), default=None)
    seen = sorted(
        ((library, count, last) for library, count, last in groups if library),
        key=lambda group: (-group[1], group[0]),
    )[:_MAX_OBSERVED_SDKS]
    versions = _latest_versions(session, project.id, {library: last for library, _, last in seen})
    observed = [
        ObservedSdk(library, count, last, versions.get(library), *sdk_configuration(library))
        for library, count, last in sorted(seen)
    ]
    node_autocaptured = any(sdk.library == "posthog-node" for sdk in observed) and _node_autocaptured(
        session, project.id, since
    )
    return SetupStatus(
        project_autocapture_enabled=project.autocapture_exceptions_opt_in,
        remote_config_autocapture_enabled=published_autocapture(remote),
        has_issues=bool(session.scalar(select(exists().where(Issue.project_id == project.id)))),
        # PostHog says False when its query failed; Trapline's counts come from its own
        # database, which answers or fails the whole request.
        recent_data_available=True,
        recent_period_days=RECENT_PERIOD_DAYS,
        recent_event_count=total,
        recent_exception_count=total,
        last_event_at=last_event_at,
        last_exception_at=last_event_at,
        observed_sdks=observed,
        warnings=setup_warnings(observed, node_autocaptured=node_autocaptured),
    )


def _latest_versions(session: Session, project_id: int, last_seen: Mapping[str, datetime]) -> dict[str, str]:
    """Each library's $lib_version on its newest event: rows found by their exact timestamps
    in the (project_id, timestamp) index, so this reads a handful of rows."""
    if not last_seen:
        return {}
    rows = session.execute(
        select(
            ExceptionEvent.library,
            ExceptionEvent.timestamp,
            ExceptionEvent.properties["$lib_version"].as_string(),
        )
        .where(
            ExceptionEvent.project_id == project_id,
            ExceptionEvent.timestamp.in_(sorted(set(last_seen.values()))),
            ExceptionEvent.library.in_(sorted(last_seen)),
        )
        .order_by(ExceptionEvent.id)
    ).all()
    versions: dict[str, str] = {}
    for library, timestamp, version in rows:
        # Another library's newest moment may hold an older event of this one: only the row
        # at the library's own newest moment counts (the last stored, if several).
        if library is not None and version is not None and timestamp == last_seen.get(library):
            versions[library] = str(version)
    return versions


def _node_autocaptured(session: Session, project_id: int, since: datetime) -> bool:
    """Whether any of posthog-node's newest exceptions of the period was captured by its
    uncaught-exception handlers (unhandled: captureException by hand marks them handled)."""
    newest = (
        select(ExceptionEvent.properties["$exception_handled"].as_boolean().label("handled"))
        .where(
            ExceptionEvent.project_id == project_id,
            ExceptionEvent.timestamp >= since,
            ExceptionEvent.library == "posthog-node",
        )
        .order_by(ExceptionEvent.timestamp.desc())
        .limit(_NODE_SAMPLE)
        .subquery()
    )
    found = session.scalar(select(true()).select_from(newest).where(newest.c.handled.is_(False)).limit(1))
    return bool(found)
