"""Organizations, users, their memberships and roles, and personal API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trapline.db.base import Base, CreatedAt, UUIDPrimaryKey

__all__ = ["Membership", "Organization", "PersonalApiKey", "Role", "User", "UserSession"]


class Organization(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "organization"

    name: Mapped[str] = mapped_column(String(200))


class User(CreatedAt, Base):
    __tablename__ = "user"

    # Integer ids, as PostHog's: assignees are written {"type": "user", "id": 42}.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)


class Membership(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # member < admin < owner, as in PostHog.
    level: Mapped[str] = mapped_column(String(16), default="member")

    user: Mapped[User] = relationship(lazy="joined")


class Role(UUIDPrimaryKey, CreatedAt, Base):
    """A named group of people inside an organization; issues can be assigned to a role."""

    __tablename__ = "role"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class PersonalApiKey(UUIDPrimaryKey, CreatedAt, Base):
    """A ``phx_…`` key for the REST API. Only a SHA-256 of the key is stored."""

    __tablename__ = "personal_api_key"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # The key reaches projects of this organization only.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    secure_value: Mapped[str] = mapped_column(String(64), unique=True)
    # "phx_…abcd": enough for a person to recognise the key in a list.
    mask_value: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class UserSession(CreatedAt, Base):
    """A signed-in browser: the web UI's session cookie names one of these.

    Only a SHA-256 of the cookie's random value is stored (as for API keys), so a leaked
    database does not sign anyone in; logging out deletes the row, which ends the session
    wherever the cookie was copied to.
    """

    __tablename__ = "user_session"

    secure_value: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime] = mapped_column()

    user: Mapped[User] = relationship(lazy="joined")
