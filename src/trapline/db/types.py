"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "INTEGER_RANGE",
    "SQLITE_DATETIME",
    "JSONType",
    "TextDecimal",
    "UTCDateTime",
    "sqlite_datetime",
    "storable_text",
    "utcnow",
]

# How SQLAlchemy's DATETIME writes on SQLite (naive UTC, always with microseconds): the hot
# paths that talk to the driver write and compare datetimes in this form.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
# What an INTEGER column holds on PostgreSQL (ids of users, limits): a bound parameter outside it
# fails the whole statement ("integer out of range"), where SQLite would only find no row.
INTEGER_RANGE = range(-(2**31), 2**31)

# JSONB on PostgreSQL (indexable, compact); SQLite stores the JSON text. Python None is SQL
# NULL, not the JSON value null: "disabled_data IS NULL" must be true after `= None`.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def storable_text(value: str) -> str:
    """``value`` as Trapline stores text: PostgreSQL text and JSONB cannot hold NUL, so the
    pipeline stores U+FFFD in its place (on SQLite too, so that both group and search alike),
    and a value compared with stored text (a search, a lookup) goes through this as well."""
    return value.replace("\x00", "\ufffd")


def sqlite_datetime(moment: datetime) -> str:
    """An aware datetime as SQLite holds it (``SQLITE_DATETIME``)."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime leaves such years unpadded; stored text keeps that form
        return utc.strftime(SQLITE_DATETIME)
    # The same text as strftime, in a third of its time: capture formats one per request.
    return utc.replace(tzinfo=None).isoformat(" ", "microseconds")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    SQLite has no time zones and hands back naive values; PostgreSQL's ``timestamptz`` hands
    back the session's zone. Normalising here means the rest of the code only ever sees
    aware UTC datetimes, and ``isoformat()`` always ends in ``+00:00``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TextDecimal(TypeDecorator[Decimal]):
    """An exact decimal stored as canonical text.

    SQLite has no decimal type (SQLAlchemy warns and goes through float), and the values we
    keep (sample rates with two places) are compared, never summed in SQL.
    """

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)
