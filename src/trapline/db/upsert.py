"""INSERT statements that take ON CONFLICT on either backend (SQLAlchemy's generic insert
has no upsert; each dialect's has, with the same interface)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["dialect_insert", "dialect_insert_for"]


def dialect_insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on the session's backend."""
    return dialect_insert_for(session.get_bind(), table)


def dialect_insert_for(bind: Engine | Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
