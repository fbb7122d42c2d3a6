"""The declarative base shared by every model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, Uuid, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trapline.db.types import JSONType, UTCDateTime, utcnow
from trapline.ids import uuid7

__all__ = ["Base", "CreatedAt", "Timestamps", "UUIDPrimaryKey"]

# Deterministic constraint names: Alembic can then drop or alter constraints by name on both
# backends (SQLite's batch mode needs names to recreate tables).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Timestamps(CreatedAt):
    """created_at and updated_at; a new row gets the same instant in both."""

    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@event.listens_for(Timestamps, "before_insert", propagate=True)
def _stamp_new_row(_mapper: object, _connection: object, target: Timestamps) -> None:
    now = utcnow()
    if target.created_at is None:
        target.created_at = now
    if target.updated_at is None:
        target.updated_at = target.created_at
