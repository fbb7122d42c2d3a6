"""Grouping, assignment and suppression rules: filters over exception events, in order."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from trapline.db.base import Base, Timestamps, UUIDPrimaryKey

__all__ = ["AssignmentRule", "GroupingRule", "Rule", "SuppressionRule"]


class Rule(UUIDPrimaryKey, Timestamps):
    """Columns every rule kind has. Rules run in ascending ``order_key``; the first match wins."""

    @declared_attr
    def project_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)

    # A PostHog property-group filter: {"type": "AND"|"OR", "values": [...]}.
    filters: Mapped[dict[str, Any]] = mapped_column()
    order_key: Mapped[int] = mapped_column(default=0)
    # Set when evaluating the rule failed ({"message", "props"}); a disabled rule is skipped
    # until someone edits it.
    disabled_data: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class _Assignee:
    """A user or a role; at most one of the two is set."""

    @declared_attr
    def user_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)

    @declared_attr
    def role_id(cls) -> Mapped[uuid.UUID | None]:
        return mapped_column(ForeignKey("role.id", ondelete="SET NULL"), default=None)


class GroupingRule(_Assignee, Rule, Base):
    """Events matching the filters share the fingerprint ``custom-rule:<id>``."""

    __tablename__ = "grouping_rule"

    description: Mapped[str | None] = mapped_column(Text, default=None)


class AssignmentRule(_Assignee, Rule, Base):
    """New and reopened issues whose event matches the filters get the rule's assignee."""

    __tablename__ = "assignment_rule"


class SuppressionRule(Rule, Base):
    """Matching events are dropped, each with probability ``sampling_rate``."""

    __tablename__ = "suppression_rule"

    sampling_rate: Mapped[float] = mapped_column(default=1.0)
