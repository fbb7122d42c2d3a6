"""Back-pressure at the door: when capture should refuse, and for how long.

Three reasons, checked on every capture request from state refreshed at most once a second
(in a thread, never on the event loop's time):

* the installation's disk is below its watermark (``diskspace``);
* the queue is backed up: more events wait than ``queue_max_events``, or the oldest has
  waited longer than ``queue_max_wait_seconds`` (workers are too slow, or not running);
* the project's own rate limit is spent for the current bucket (its counter in
  ``rate_limit_counter`` is at the limit): events would only be dropped by the pipeline.

The first two are temporary troubles of the whole installation: SDKs should keep what they
have and send it later (503 + Retry-After). The third is the project's choice: what arrives
before the bucket ends is dropped, and SDKs should stop sending until then. How each
protocol says so is the endpoint's business (``capture.py``, ``sentry/endpoint.py``).

The pipeline stays the authority on rate limits: the door only stops what it knows is over,
so a request that slips through in the second after a bucket fills is dropped and counted
there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import DISK_RETRY_SECONDS, DiskSpace
from trapline.errors import Unavailable
from trapline.events.models import QueuedRequest
from trapline.limits.models import ErrorTrackingSettings, RateLimitCounter
from trapline.limits.rates import PROJECT_SCOPE, Limit, ProjectLimits

__all__ = ["Backlog", "Pressure", "Refusal"]

log = logging.getLogger("trapline.ingest")

QUEUE_BACKLOG = "queue_backlog"
DISK_LOW = "disk_low"
RATE_LIMITED_PROJECT = "rate_limited_project"
_REFRESH_SECONDS = 1.0
# A project without a limit is looked at less often: only a new setting can change it.
_UNLIMITED_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Refusal:
    """Capture should not take this request: ``reason`` is one of the constants above."""

    reason: str
    retry_after: int  # seconds
    detail: str

    @property
    def installation(self) -> bool:
        """A trouble of the whole installation (retry later) rather than the project's limit."""
        return self.reason != RATE_LIMITED_PROJECT

    def error(self) -> Unavailable:
        """The refusal as the domain error the REST API and uploads answer with (503)."""
        return Unavailable(self.detail, code=self.reason, retry_after=self.retry_after)


@dataclass(frozen=True)
class Backlog:
    """The queue's state: events waiting (counted up to the bound) and the oldest's age."""

    events: int = 0
    oldest_wait_seconds: float = 0.0


@dataclass
class _ProjectState:
    read_at: float
    limited_until: datetime | None = None
    limit: Limit | None = None


class Pressure:
    """Decides refusals; one per server process, shared by capture, Sentry and uploads."""

    def __init__(
        self,
        db: Database,
        *,
        disk: DiskSpace | None = None,
        queue_max_events: int = 0,
        queue_max_wait_seconds: float = 0.0,
        queue_retry_after_seconds: int = 30,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self.disk = disk
        self.queue_max_events = queue_max_events
        self.queue_max_wait_seconds = queue_max_wait_seconds
        self.queue_retry_after_seconds = queue_retry_after_seconds
        self._monotonic = monotonic
        self._clock = clock
        self._configured = (disk, queue_max_events, queue_max_wait_seconds)
        self.backlog = Backlog()
        self._backlog_read_at = -_REFRESH_SECONDS
        self._projects: dict[int, _ProjectState] = {}
        self._reading: dict[object, asyncio.Task[None]] = {}

    def clear(self) -> None:
        """Forget what was read and restore the configured bounds (tests reuse one app)."""
        self.disk, self.queue_max_events, self.queue_max_wait_seconds = self._configured
        self.backlog = Backlog()
        self._backlog_read_at = -_REFRESH_SECONDS
        self._projects.clear()

    # --- the whole installation -------------------------------------------------------------

    def installation(self) -> Refusal | None:
        """Why nothing new should be taken in now (disk, queue), from the latest state."""
        disk = self.disk_refusal()
        if disk is not None:
            return disk
        backlog = self.backlog
        if self.queue_max_events and backlog.events > self.queue_max_events:
            return Refusal(
                QUEUE_BACKLOG,
                self.queue_retry_after_seconds,
                f"The server is behind: over {self.queue_max_events} events wait to be processed; retry later.",
            )
        if self.queue_max_wait_seconds and backlog.oldest_wait_seconds > self.queue_max_wait_seconds:
            return Refusal(
                QUEUE_BACKLOG,
                self.queue_retry_after_seconds,
                f"The server is behind: events have waited {backlog.oldest_wait_seconds:.0f} s to be processed; "
                "retry later.",
            )
        return None

    def disk_refusal(self) -> Refusal | None:
        """Why nothing should be written now because of the disk alone: uploads ask this, since
        a backed-up queue is no reason to refuse a source map."""
        low = self.disk.low() if self.disk is not None else None
        if low is None:
            return None
        return Refusal(DISK_LOW, DISK_RETRY_SECONDS, f"The server is low on disk space; retry later. ({low})")

    def read_backlog(self) -> Backlog:
        """Read the queue's state now (blocking: call it from a thread)."""
        with self._db.queue.session(write=False) as session:
            waiting = select(QueuedRequest.event_count).where(QueuedRequest.failed_at.is_(None))
            if self.queue_max_events:
                # Every row holds at least one event: counting stops past the bound.
                waiting = waiting.limit(self.queue_max_events + 1)
            events = session.scalar(select(func.coalesce(func.sum(waiting.subquery().c.event_count), 0)))
            oldest = session.scalar(
                select(QueuedRequest.received_at)
                .where(QueuedRequest.failed_at.is_(None))
                .order_by(QueuedRequest.id)
                .limit(1)
            )
        wait = (self._clock() - oldest).total_seconds() if oldest is not None else 0.0
        self.backlog = Backlog(int(events or 0), max(0.0, wait))
        self._backlog_read_at = self._monotonic()
        return self.backlog

    # --- one project -------------------------------------------------------------------------

    def project(self, project_id: int) -> Refusal | None:
        """Whether ``project_id``'s rate limit is spent for the current bucket (latest state)."""
        state = self._projects.get(project_id)
        if state is None or state.limited_until is None or state.limit is None:
            return None
        now = self._clock()
        if now >= state.limited_until:
            return None
        seconds = max(1, math.ceil((state.limited_until - now).total_seconds()))
        return Refusal(
            RATE_LIMITED_PROJECT,
            seconds,
            f"This project's error rate limit ({state.limit.value} events per {state.limit.minutes} minutes) "
            f"is spent; events are dropped for {seconds} s.",
        )

    def read_project(self, project_id: int) -> None:
        """Read the project's limit and its counter now (blocking: call it from a thread)."""
        limited_until: datetime | None = None
        limit: Limit | None = None
        with self._db.session(write=False) as session:
            row = session.get(ErrorTrackingSettings, project_id)
            if row is not None:
                limit = ProjectLimits.of(row).project
            if limit is not None:
                bucket = limit.bucket(self._clock())
                count = session.scalar(
                    select(RateLimitCounter.count).where(
                        RateLimitCounter.project_id == project_id,
                        RateLimitCounter.scope == PROJECT_SCOPE,
                        RateLimitCounter.bucket_start == bucket.start,
                    )
                )
                if count is not None and count >= limit.value:
                    limited_until = bucket.end
        self._projects[project_id] = _ProjectState(self._monotonic(), limited_until, limit)

    # --- the door ------------------------------------------------------------------------------

    async def refusal(self, project_id: int) -> Refusal | None:
        """What capture should answer for ``project_id`` instead of taking the request.

        State older than a second is read again in a thread. A request that would be let in
        does not wait for that (the pipeline catches what slips through); one that would be
        refused does, so that no client is turned away on old news: one that comes back after
        its Retry-After to a queue that drained meanwhile must get in.
        """
        now = self._monotonic()
        reads: list[asyncio.Task[None]] = []
        backlog_stale = bool(self.queue_max_events or self.queue_max_wait_seconds) and (
            now - self._backlog_read_at >= _REFRESH_SECONDS
        )
        if backlog_stale:
            reads.append(self._read("backlog", self.read_backlog))
        state = self._projects.get(project_id)
        every = _REFRESH_SECONDS if state is None or state.limit is not None else _UNLIMITED_REFRESH_SECONDS
        project_stale = state is None or now - state.read_at >= every
        if project_stale:
            reads.append(self._read(project_id, lambda: self.read_project(project_id)))
        refusal = self.installation() or self.project(project_id)
        if refusal is None or not reads:
            return refusal
        if (refusal.reason == QUEUE_BACKLOG and backlog_stale) or (
            refusal.reason == RATE_LIMITED_PROJECT and project_stale
        ):
            await asyncio.wait([asyncio.shield(read) for read in reads])
            refusal = self.installation() or self.project(project_id)
        return refusal

    def _read(self, key: object, read: Callable[[], object]) -> asyncio.Task[None]:
        """A read of ``key``'s state in a thread; one at a time per key, shared by whoever asks."""
        running = self._reading.get(key)
        if running is not None:
            return running

        async def run() -> None:
            try:
                await asyncio.to_thread(read)
            except Exception:
                log.exception("could not read the state capture decides refusals on", extra={"what": str(key)})
            finally:
                self._reading.pop(key, None)

        task = asyncio.get_running_loop().create_task(run())
        self._reading[key] = task  # also keeps it alive: the loop holds tasks weakly
        return task
