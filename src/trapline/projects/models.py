"""Projects: the unit SDKs send to (by token) and the API addresses (by integer id)."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base, CreatedAt

__all__ = ["Project", "new_sentry_key"]


def new_sentry_key() -> str:
    """A Sentry DSN's public key: 32 hex characters, as Sentry makes them."""
    return secrets.token_hex(16)


class Project(CreatedAt, Base):
    __tablename__ = "project"

    # PostHog's project (team) ids are integers, and SDK docs and scripts put them in URLs.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The public "project API key" (phc_…) that SDKs embed; it only allows sending events.
    api_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Remote config's "autocaptureExceptions": whether browsers capture unhandled errors.
    autocapture_exceptions_opt_in: Mapped[bool] = mapped_column(default=True)
    # The public key of the project's Sentry DSN (http://<key>@host/<id>); rotating it
    # cuts off SDKs that still use the old DSN.
    sentry_public_key: Mapped[str] = mapped_column(String(64), unique=True, default=new_sentry_key)
