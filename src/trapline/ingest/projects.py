"""What ingestion looks up in the project table on every request, cached for a few seconds:
the project of a capture token (``ProjectTokens``) and the DSN key of a project (``SentryKeys``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.db.types import storable_text
from trapline.projects.models import Project

__all__ = ["ProjectTokens", "SentryKeys"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _CachedLookup(Generic[K, V]):
    """A small TTL cache in front of a blocking lookup, which runs in a thread.

    Found values are kept for ``ttl`` seconds, misses for ``negative_ttl``; past
    ``max_entries`` the cache starts over (crude, but bounded; real deployments have few keys).
    """

    def __init__(self, lookup: Callable[[K], V | None], *, ttl: float, negative_ttl: float, max_entries: int) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._cache: dict[K, tuple[V | None, float]] = {}

    async def get(self, key: K) -> V | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        value = await asyncio.to_thread(self._lookup, key)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key] = (value, now + (self._ttl if value is not None else self._negative_ttl))
        return value

    def clear(self) -> None:
        self._cache.clear()


class ProjectTokens(_CachedLookup[str, int]):
    """Project API token → project id.

    Unknown tokens are kept for a shorter while, so that a misconfigured SDK hammering the
    server costs one query per interval, not per request, and a newly created project starts
    receiving events within seconds.
    """

    def __init__(self, db: Database, *, ttl: float = 60.0, negative_ttl: float = 5.0, max_entries: int = 10_000):
        def lookup(token: str) -> int | None:
            with db.session(write=False) as session:
                return session.scalar(select(Project.id).where(Project.api_token == storable_text(token)))

        super().__init__(lookup, ttl=ttl, negative_ttl=negative_ttl, max_entries=max_entries)

    async def project_id(self, token: str) -> int | None:
        return await self.get(token)


class SentryKeys(_CachedLookup[int, str]):
    """Project id → its DSN's public key: a rotated key must stop working soon after."""

    def __init__(self, db: Database, *, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        def lookup(project_id: int) -> str | None:
            with db.session(write=False) as session:
                return session.scalar(select(Project.sentry_public_key).where(Project.id == project_id))

        super().__init__(lookup, ttl=ttl, negative_ttl=ttl, max_entries=max_entries)

    async def key_of(self, project_id: int) -> str | None:
        return await self.get(project_id)
