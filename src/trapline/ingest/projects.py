"""Project API token → project id, cached: every capture request needs this lookup."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.db.types import storable_text
from trapline.projects.models import Project

__all__ = ["ProjectTokens"]


class ProjectTokens:
    """A small TTL cache in front of the project table.

    Known tokens are kept for ``ttl`` seconds; unknown ones for a shorter while, so that a
    misconfigured SDK hammering the server costs one query per interval, not per request,
    and a newly created project starts receiving events within seconds.
    """

    def __init__(self, db: Database, *, ttl: float = 60.0, negative_ttl: float = 5.0, max_entries: int = 10_000):
        self._db = db
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[int | None, float]] = {}

    async def project_id(self, token: str) -> int | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        project_id = await asyncio.to_thread(self._lookup, token)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()  # crude, but bounded; real deployments have few tokens
        self._cache[token] = (project_id, now + (self._ttl if project_id is not None else self._negative_ttl))
        return project_id

    def _lookup(self, token: str) -> int | None:
        with self._db.session(write=False) as session:
            return session.scalar(select(Project.id).where(Project.api_token == storable_text(token)))
