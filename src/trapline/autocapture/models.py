"""Autocapture controls: per-project, per-SDK-library settings for capturing exceptions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base, Timestamps, UUIDPrimaryKey
from trapline.db.types import TextDecimal

__all__ = ["AutocaptureControls"]


class AutocaptureControls(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "autocapture_controls"
    __table_args__ = (UniqueConstraint("project_id", "library"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    library: Mapped[str] = mapped_column(String(24), default="web")
    match_type: Mapped[str] = mapped_column(String(24), default="all")
    sample_rate: Mapped[Decimal] = mapped_column(TextDecimal(), default=Decimal("1.00"))
    linked_feature_flag: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    event_triggers: Mapped[list[Any]] = mapped_column(default=list)
    url_triggers: Mapped[list[Any]] = mapped_column(default=list)
    url_blocklist: Mapped[list[Any]] = mapped_column(default=list)
