"""The sign-in throttle's counts, in the database so that every server process shares them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["SigninFailureWindow"]


class SigninFailureWindow(Base):
    """Failed sign-ins counted since ``window_start``: per (email, address) with ``scope``
    'account', per address with ``scope`` 'address' (and email '').

    A row whose window has ended counts as none; the next failure restarts it in place
    (one upsert), and expired rows are pruned by later failures.
    """

    __tablename__ = "signin_throttle"
    __table_args__ = (Index("ix_signin_throttle_window_start", "window_start"),)

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    failures: Mapped[int] = mapped_column(default=0)
