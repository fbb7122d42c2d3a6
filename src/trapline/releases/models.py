"""Releases: a named version of one of the user's apps, which symbol sets and events point at."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base, CreatedAt, UUIDPrimaryKey

__all__ = ["Release"]


class Release(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "release"
    __table_args__ = (UniqueConstraint("project_id", "hash_id"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    # The CLI's sha512(project name + version) in hex; our own id when the client gave none.
    hash_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(Text)
    # PostHog's wire name: the *user's* project (app) name, not a Trapline project.
    project_name: Mapped[str] = mapped_column("project", Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", default=None)
