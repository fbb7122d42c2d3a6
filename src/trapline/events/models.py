"""The ingest queue (accepted, not yet processed) and stored exception events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["DroppedEvents", "ExceptionEvent", "QueueDone", "QueuedPayload", "QueuedRequest", "SessionSignal"]

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid); PostgreSQL gets a bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class QueuedRequest(Base):
    """One accepted capture request's events for one project, waiting for a worker.

    A row is written (and fsynced) before the SDK gets its 200, and deleted in the same
    transaction that stores the processed events: that is what makes processing
    exactly-once across crashes. A worker leases rows with ``claimed_by``/``claimed_until``;
    a lease that runs out (the worker died) makes the row claimable again.

    The events themselves are in ``QueuedPayload``: leasing updates this row, and a narrow
    row is cheap to rewrite where a payload of kilobytes is not.
    """

    __tablename__ = "ingest_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    # The client's sent_at, kept raw: timestamps are corrected for clock skew with it.
    sent_at: Mapped[str | None] = mapped_column(String(64), default=None)
    # How many events the payload holds: a claim is bounded by events, not requests.
    event_count: Mapped[int] = mapped_column(default=1)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    # Set when processing failed too often: the row is kept (nothing accepted is lost) but
    # no longer claimed; `trapline requeue` puts it back.
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class QueuedPayload(Base):
    """The events of one queued request: an orjson-encoded list, as the SDK sent them."""

    __tablename__ = "ingest_payload"

    id: Mapped[int] = mapped_column(BigId, ForeignKey("ingest_queue.id", ondelete="CASCADE"), primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class QueueDone(Base):
    """Queue rows whose batch is stored, when the queue is in a file of its own (SQLite; see
    ``trapline.events.queue_file``): written in the batch's transaction, so that the request
    is never processed twice, whichever of the two commits a crash comes between. Marks of
    rows gone from the queue are deleted as batches go by."""

    __tablename__ = "ingest_done"

    queue_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)


_FINGERPRINT_INDEX = (
    "ix_exception_event_fingerprint_time",
    "project_id",
    "fingerprint",
    "timestamp",
    "distinct_id",
    "session_id",
)


class ExceptionEvent(Base):
    """A processed ``$exception`` event, with PostHog's output properties.

    The issue an event belongs to is found through its fingerprint (``issue_fingerprint``),
    not through ``issue_id``: merges and splits move fingerprints, and old events follow.
    ``issue_id`` records where the event went when it was processed (PostHog's
    ``$exception_issue_id``).
    """

    __tablename__ = "exception_event"
    __table_args__ = (
        UniqueConstraint("project_id", "uuid"),
        # distinct_id and session_id ride along so that the issue list's counts (and the
        # distinct users and sessions of an issue) read this index alone, not the wide rows.
        Index(*_FINGERPRINT_INDEX).ddl_if(dialect="postgresql"),
        # On SQLite the search text rides along too: a search otherwise reads every row of the
        # range (a few kB each, their properties inline). PostgreSQL keeps those out of line
        # (TOAST), so its rows are narrow already, and it caps index entries at ~2.7 kB,
        # which a long exception message would exceed.
        Index(*_FINGERPRINT_INDEX, "search_text").ddl_if(dialect="sqlite"),
        Index("ix_exception_event_time", "project_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    uuid: Mapped[UUID] = mapped_column()
    timestamp: Mapped[datetime] = mapped_column()
    distinct_id: Mapped[str] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(Text, default=None)
    fingerprint: Mapped[str] = mapped_column(Text)
    issue_id: Mapped[UUID] = mapped_column()
    library: Mapped[str | None] = mapped_column(String(64), default=None)
    # Lower-cased exception types, values, sources, functions and email, separated by \x1f:
    # what the issue search matches tokens against.
    search_text: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[dict[str, Any]] = mapped_column()
    # The raw form of frames whose symbols were missing or unusable, by frame raw_id: what
    # `trapline reprocess` resolves again once the symbols are uploaded. None when there are none.
    unresolved_frames: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class DroppedEvents(Base):
    """How many accepted events of a project were not stored, per reason.

    Accepted events that the pipeline drops (suppressed by a rule, of a suppressed issue, with
    an exception list PostHog would refuse) leave a count here, so that "where did my error
    go?" has an answer.
    """

    __tablename__ = "dropped_events"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_dropped_at: Mapped[datetime] = mapped_column()
    # The details of the latest drop (the rule, or the error cymbal would report).
    last_detail: Mapped[str | None] = mapped_column(Text, default=None)


class SessionSignal(Base):
    """When a browser session first did something an autocapture trigger waits for.

    ``signal`` is ``url`` (it was on a URL matching a URL trigger) or ``event:<name>`` (it sent
    that event). Written by capture, read by the worker to decide whether the session's
    autocaptured exceptions are kept; sessions end, so rows expire. On SQLite the rows are in
    the queue's file (``trapline.events.queue_file``), beside the requests that carry them.
    """

    __tablename__ = "session_signal"
    __table_args__ = (Index("ix_session_signal_expires_at", "expires_at"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    signal: Mapped[str] = mapped_column(String(300), primary_key=True)
    first_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
