"""Issues, the fingerprints that map events onto them, and who is assigned."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trapline.db.base import Base, CreatedAt, UUIDPrimaryKey

__all__ = ["ISSUE_STATUSES", "SEVERITIES", "Issue", "IssueAssignment", "IssueFingerprint", "MergedIssue"]

# archived and pending_release are PostHog's legacy states: stored rows may carry them, the API
# never writes them, and they read as resolved.
ISSUE_STATUSES = ("active", "resolved", "suppressed", "archived", "pending_release")
SEVERITIES = ("low", "medium", "high", "critical")


class Issue(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "issue"
    # The inbox's status tabs count a project's issues per status from this index alone.
    __table_args__ = (Index("ix_issue_project_status", "project_id", "status"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(24), default="active")
    severity: Mapped[str | None] = mapped_column(String(16), default=None)
    name: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Stamped on every change a user makes (status, assignee, merge), for "recently changed".
    state_updated_at: Mapped[datetime | None] = mapped_column(default=None)

    assignment: Mapped[IssueAssignment | None] = relationship(
        back_populates="issue", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )


class IssueFingerprint(UUIDPrimaryKey, CreatedAt, Base):
    """Which issue a fingerprint belongs to. The single source of truth for event → issue."""

    __tablename__ = "issue_fingerprint"
    # Issue lists ordered by last seen, latest first, read the recent index from the top. It
    # starts with last_seen: led by project_id, SQLite (which has no statistics unless ANALYZE
    # ran) would take it for every other query on a project's fingerprints, and scan them all.
    __table_args__ = (
        UniqueConstraint("project_id", "fingerprint"),
        Index("ix_issue_fingerprint_recent", "last_seen", "project_id"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    issue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(Text)
    # Bumped each time the fingerprint moves to another issue (merge, split).
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # Timestamp of the first event seen with this fingerprint.
    first_seen: Mapped[datetime | None] = mapped_column(default=None)
    # Running totals kept by the pipeline, so that an issue's all-time numbers are a sum over
    # its fingerprints (they follow a fingerprint through merges and splits).
    last_seen: Mapped[datetime | None] = mapped_column(default=None)
    occurrences: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Events on the eight days ending on recent_day (trapline.volumes.recent keeps them): what
    # lists ordered by occurrences over the last 7 days read.
    recent_day: Mapped[datetime | None] = mapped_column(default=None)
    recent_events: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class IssueAssignment(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "issue_assignment"

    issue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), default=None)
    role_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), default=None)

    issue: Mapped[Issue] = relationship(back_populates="assignment")


class MergedIssue(Base):
    """Where a merged-away issue went, so that links to it (in chats, tickets) still lead
    somewhere. Kept one hop deep: merging the target again repoints these rows too."""

    __tablename__ = "merged_issue"

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    # No foreign key: the target may itself be merged (then this row is repointed) or deleted.
    merged_into: Mapped[uuid.UUID] = mapped_column(index=True)
    merged_at: Mapped[datetime] = mapped_column()
