"""Daily usage counters."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["STORED", "UsageDay"]

# The outcome of events that were stored; every other outcome is a drop reason.
STORED = "stored"


class UsageDay(Base):
    """How many events of a project had one outcome on one day (UTC): ``stored``, or the
    reason they were dropped (``rate_limited_project``, ``suppressed``, …).

    Written in the same transactions as what they count (the pipeline's batch, capture's
    commit), so they are exact; ``dropped_events`` keeps the all-time totals.
    """

    __tablename__ = "usage_day"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
