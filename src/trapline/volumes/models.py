"""The rollup tables. Keyed by fingerprint, not issue: merge and split move fingerprints, and
their volumes follow through ``issue_fingerprint`` without rewriting a row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["FingerprintDay", "FingerprintHour"]


class FingerprintHour(Base):
    """Events stored per fingerprint and hour of their timestamp: what charts and exact ranged
    counts read."""

    __tablename__ = "fingerprint_hour"
    # Sparklines and ranged counts read (hour, events) of a page's fingerprints, 170 rows each
    # for a week: on SQLite the primary key's index holds no events, and looking each row up
    # in the table cost ten times the index walk. PostgreSQL's rows are updated in place
    # (HOT) only while no index holds the count, so it goes without.
    __table_args__ = (
        Index("ix_fingerprint_hour_events", "project_id", "fingerprint", "hour", "events").ddl_if(dialect="sqlite"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class FingerprintDay(Base):
    """Events per fingerprint and day, with sketches of the day's distinct users and sessions:
    what lists ordering thousands of issues read."""

    __tablename__ = "fingerprint_day"
    # A list over a range reads (fingerprint, events) of every fingerprint with a day in it:
    # this index covers that without touching the rows and their sketches.
    # One fingerprint's days (a window's recount, a last seen's bucket) read this one: without
    # it SQLite, having no statistics, answers them from the range index's project prefix,
    # 80,000 entries at 10,000 issues, instead of the primary key's eight rows.
    __table_args__ = (
        Index("ix_fingerprint_day_range", "project_id", "day", "fingerprint", "events"),
        Index("ix_fingerprint_day_fingerprint", "project_id", "fingerprint", "day", "events"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    users: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    sessions: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
