"""The search summary of each fingerprint."""

from __future__ import annotations

from sqlalchemy import ForeignKey, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from trapline.db.base import Base

__all__ = ["FingerprintText"]


class FingerprintText(Base):
    """``trigrams``: a Bloom filter (4,096 bits) of the trigrams of all the fingerprint's
    events' search texts, so a search token with a trigram missing from it matches none of
    them. ``common``: the text parts (type, message, source, function, email) that all of its
    events had, so a token inside one of them matches every event, and the rollups count
    them. Both only ever grow more permissive (bits are added, parts removed)."""

    __tablename__ = "fingerprint_text"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, primary_key=True)
    trigrams: Mapped[bytes] = mapped_column(LargeBinary)
    # The common parts joined by the search text's own separator (which no part holds), so a
    # token is in one of them exactly when it is in this text; None before the first event.
    common: Mapped[str | None] = mapped_column(Text, default=None)
