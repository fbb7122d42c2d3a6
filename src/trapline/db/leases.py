"""Leases on rows (``claimed_by``, ``claimed_until``) that a crashed holder left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, select, update

from trapline.db.engine import Database

__all__ = ["release_dead_holders"]


def release_dead_holders(db: Database, model: Any, is_dead: Callable[[str], bool], *where: ColumnElement[bool]) -> int:
    """Free the rows of ``model`` (matching ``where``) that holders known to be dead lease,
    rather than wait for their leases to run out; returns how many were freed.

    A wrong verdict costs only work, never correctness: a live holder whose rows were freed
    finds its lease gone when it records its result, and the rows are done once, by someone else.
    """
    with db.session(write=False) as session:
        # Looked at before the write lock is taken: usually nobody died.
        holders = set(session.scalars(select(model.claimed_by).where(model.claimed_by.is_not(None), *where)))
    dead = sorted(holder for holder in holders if holder is not None and is_dead(holder))
    if not dead:
        return 0
    with db.session(write=True) as session:
        freed = session.execute(
            update(model).where(model.claimed_by.in_(dead), *where).values(claimed_by=None, claimed_until=None)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(freed or 0)
