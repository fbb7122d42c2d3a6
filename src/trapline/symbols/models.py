"""Symbol sets and the resolved stack frames cached per project."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trapline.db.base import Base, CreatedAt, UUIDPrimaryKey
from trapline.releases.models import Release

__all__ = ["StackFrame", "SymbolSet"]


class SymbolSet(UUIDPrimaryKey, CreatedAt, Base):
    """The symbols for one chunk of a build: a minified file and its source map, as one object.

    ``ref`` is the chunk id the build injected and the SDK reports on every frame. A row with
    no ``storage_ptr`` records that frames asked for this chunk and nothing was uploaded (or
    the upload was unusable): ``failure_reason`` says why, and resolution is not retried
    until a new upload for the same ref arrives.
    """

    __tablename__ = "symbol_set"
    __table_args__ = (UniqueConstraint("project_id", "ref"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(Text)
    # The object store key of the uploaded container; None until an upload is started.
    storage_ptr: Mapped[str | None] = mapped_column(Text, default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when the client confirms the upload (bulk_finish_upload): an opaque equality token.
    content_hash: Mapped[str | None] = mapped_column(Text, default=None)
    release_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("release.id", ondelete="CASCADE"), default=None, index=True
    )
    # Refreshed when resolution or an upload uses the set (at most every 12 hours).
    last_used: Mapped[datetime | None] = mapped_column(default=None)

    release: Mapped[Release | None] = relationship(lazy="joined")


class StackFrame(UUIDPrimaryKey, CreatedAt, Base):
    """A raw frame's resolution, cached: every event with the same raw frame reuses it.

    Keyed by the raw frame's hash (``raw_id``) and ``part`` (one raw frame may resolve into
    several frames). ``context`` holds the source lines around the frame, which never go on
    events.
    """

    __tablename__ = "stack_frame"
    __table_args__ = (
        UniqueConstraint("project_id", "raw_id", "part"),
        Index("ix_stack_frame_symbol_set_id", "symbol_set_id"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    raw_id: Mapped[str] = mapped_column(Text)
    part: Mapped[int] = mapped_column(default=0)
    symbol_set_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("symbol_set.id", ondelete="SET NULL"), default=None
    )
    contents: Mapped[dict[str, Any]] = mapped_column()
    resolved: Mapped[bool] = mapped_column(default=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(default=None)
