"""Imports every model so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from trapline.accounts.models import Membership, Organization, PersonalApiKey, Role, User, UserSession
from trapline.accounts.signin_throttle import SigninFailureWindow
from trapline.alerts.models import (
    Alert,
    AlertDelivery,
    AlertIssueState,
    FingerprintMinute,
    FingerprintUser,
    IssueBucket,
    IssueSpikeCooldown,
    SpikeDetectionConfig,
    SpikeEvent,
)
from trapline.autocapture.models import AutocaptureControls
from trapline.db.base import Base
from trapline.events.models import (
    DroppedEvents,
    ExceptionEvent,
    QueueDone,
    QueuedPayload,
    QueuedRequest,
    SessionSignal,
)
from trapline.issues.models import Issue, IssueAssignment, IssueFingerprint, MergedIssue
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.projects.models import Project
from trapline.releases.models import Release
from trapline.rules.models import AssignmentRule, GroupingRule, SuppressionRule
from trapline.search.models import FingerprintText
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.usage.models import UsageDay
from trapline.volumes.models import FingerprintDay, FingerprintHour

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertIssueState",
    "AssignmentRule",
    "AutocaptureControls",
    "Base",
    "DroppedEvents",
    "ErrorTrackingSettings",
    "ExceptionEvent",
    "FingerprintDay",
    "FingerprintHour",
    "FingerprintMinute",
    "FingerprintText",
    "FingerprintUser",
    "GroupingRule",
    "Issue",
    "IssueAssignment",
    "IssueBucket",
    "IssueFingerprint",
    "IssueSpikeCooldown",
    "Membership",
    "MergedIssue",
    "Organization",
    "PersonalApiKey",
    "Project",
    "QueueDone",
    "QueuedPayload",
    "QueuedRequest",
    "RateLimitCounter",
    "Release",
    "Role",
    "SessionSignal",
    "SigninFailureWindow",
    "SpikeDetectionConfig",
    "SpikeEvent",
    "StackFrame",
    "SuppressionRule",
    "SymbolSet",
    "UsageDay",
    "User",
    "UserSession",
]
