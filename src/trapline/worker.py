"""The worker: claims queued requests, runs the pipeline over them, repeats.

``trapline worker`` runs workers (``trapline serve`` starts such processes itself, see
``supervisor.py``), and any number of them may share one database (on PostgreSQL, from
many machines): claims never overlap.

A batch that fails with an unexpected error is retried one request at a time, so that one
poisonous request cannot hold back the others; a request that keeps failing is parked in
the queue (never deleted) and logged. A full disk is no fault of the requests: their rows go
back untouched (the attempt does not count towards parking) and the worker waits for room.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from trapline.alerts.counters import SeenUsers
from trapline.alerts.dispatch import prune_alert_state
from trapline.autocapture.controls import prune_signals
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import disk_full_cause, is_disk_full
from trapline.events import queue
from trapline.ids import uuid7
from trapline.pipeline import BatchResult, FrameResolver, process_batch
from trapline.retention import Retention, RetentionOptions, retention_options
from trapline.settings import Settings
from trapline.volumes import recent
from trapline.volumes.buckets import day_of

__all__ = ["Worker", "WorkerOptions", "WorkerThreads", "is_dead_local", "local_id", "worker_options"]

log = logging.getLogger("trapline.worker")

_HOST = socket.gethostname()[:30]
# Expired session signals are deleted this often (they are only read by session id anyway).
_PRUNE_EVERY_SECONDS = 600.0
# A roll of the fingerprints' recent events that failed is tried again after this long.
_ROLL_RETRY_SECONDS = 60.0
# How long a worker waits before it tries again when the disk is full: someone has to free
# space, which takes longer than polling for work, and every try is a write that fails.
DISK_FULL_WAIT_SECONDS = 5.0
# The workers of this process: rows held under this pid by any other id belong to a previous
# process that had the same pid (a container's pid 1 after a restart).
_OWN_IDS: set[str] = set()


def local_id() -> str:
    """An id for a worker or sender of this process that holds leases.

    host:pid:random: lets a restarted process on this machine see that its predecessor is dead
    (``is_dead_local``) and take its leases over at once.
    """
    ident = f"{_HOST}:{os.getpid()}:{uuid7().hex[-8:]}"
    _OWN_IDS.add(ident)
    return ident


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 1000
    batch_events: int = 1000
    # Long enough for a slow batch; a worker that dies holds its rows at most this long.
    lease: timedelta = timedelta(seconds=120)
    max_attempts: int = 5
    idle_wait_seconds: float = 0.1
    # The public URL, for the links alerts carry.
    base_url: str = ""
    # The time of processing (spike buckets and alert windows count in it); tests move it.
    clock: Callable[[], datetime] = utcnow
    # What run_forever deletes between batches; None: nothing (tests, unless they say).
    retention: RetentionOptions | None = None


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        batch_size=settings.worker_batch_size,
        batch_events=settings.worker_batch_events,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        max_attempts=settings.worker_max_attempts,
        idle_wait_seconds=settings.worker_poll_seconds,
        base_url=settings.base_url,
        retention=retention_options(settings),
    )


class Worker:
    def __init__(
        self,
        db: Database,
        options: WorkerOptions | None = None,
        resolver: FrameResolver | None = None,
        on_notifications: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.options = options or WorkerOptions()
        self.resolver = resolver
        # Called after a batch committed alert notifications (wakes this process's sender).
        self.on_notifications = on_notifications
        self.seen_users = SeenUsers()
        self.id = local_id()
        # Rows of a batch that failed on a full disk, not given back yet (that write failed too).
        self._unreleased: list[int] = []
        self._disk_full = False

    def run_once(self) -> BatchResult:
        """Claim one batch and process it; an empty result means the queue was empty.

        On a full disk the claimed rows go back as they were and the error is raised: the
        caller waits for room (``run_forever``) and the rows are processed then.
        """
        if self._unreleased:
            queue.release(self.db, self.id, self._unreleased)
            self._unreleased = []
        claimed = queue.claim(
            self.db, self.id, self.options.batch_size, self.options.lease, max_events=self.options.batch_events
        )
        if not claimed:
            return BatchResult()
        try:
            return self._notified(self._process(claimed))
        except queue.LeaseLost as exc:
            log.warning("batch taken over by another worker; dropped", extra={"error": str(exc)})
            return BatchResult()
        except Exception as exc:
            if is_disk_full(exc):
                self._give_back(claimed)
                raise
            if len(claimed) == 1:
                self._park(claimed, exc)
                return BatchResult(failed_requests=1)
            log.warning("batch failed; retrying its requests one by one", extra={"error": repr(exc)})
            result = BatchResult()
            for n, row in enumerate(claimed):
                try:
                    result = result + self._notified(self._process([row]))
                except queue.LeaseLost:
                    continue
                except Exception as row_exc:
                    if is_disk_full(row_exc):
                        self._give_back(claimed[n:])
                        raise
                    self._park([row], row_exc)
                    result = result + BatchResult(failed_requests=1)
            return result

    def _give_back(self, rows: list[queue.Claimed]) -> None:
        self._unreleased = [row.id for row in rows]
        try:
            queue.release(self.db, self.id, self._unreleased)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            return  # run_once gives them back before it claims anything else
        self._unreleased = []

    def _process(self, claimed: list[queue.Claimed]) -> BatchResult:
        return process_batch(
            self.db,
            self.id,
            claimed,
            self.resolver,
            base_url=self.options.base_url,
            clock=self.options.clock,
            seen_users=self.seen_users,
        )

    def _notified(self, result: BatchResult) -> BatchResult:
        if result.notifications and self.on_notifications is not None:
            self.on_notifications()
        return result

    def release_dead_workers(self) -> None:
        """Free what crashed processes of this machine held, rather than wait out their leases."""
        released = queue.release_dead(self.db, is_dead_local)
        if released:
            log.warning("took over requests of a worker that died", extra={"requests": released})

    def drain(self) -> BatchResult:
        """Process until the queue is empty (tests, `trapline worker --once`)."""
        self.release_dead_workers()
        total = BatchResult()
        while True:
            result = self.run_once()
            total = total + result
            if not result.requests and not result.failed_requests:
                return total

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker started", extra={"worker": self.id})
        try:
            self.release_dead_workers()
        except Exception:
            log.exception("could not check for dead workers")
        next_prune = 0.0
        rolled_day: datetime | None = None  # the day the fingerprints' windows were last rolled to
        next_roll = 0.0
        total = BatchResult()
        retention = (
            Retention(self.db, self.options.retention, clock=self.options.clock) if self.options.retention else None
        )
        while not stop.is_set():
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                try:
                    prune_signals(self.db.queue, utcnow())
                    prune_alert_state(self.db, utcnow())
                except Exception:
                    log.exception("could not forget expired session signals")
            today = day_of(utcnow())
            if today != rolled_day and time.monotonic() >= next_roll:
                # At start and after each midnight: lists by occurrences read the windows.
                next_roll = time.monotonic() + _ROLL_RETRY_SECONDS
                try:
                    recent.roll(self.db, today)
                    rolled_day = today
                except Exception as exc:
                    if not is_disk_full(exc):
                        log.exception("could not roll the fingerprints' recent events to today")
            if retention is not None:
                try:
                    retention.tick()  # at most one short transaction, when one is due
                except Exception as exc:
                    if is_disk_full(exc):  # what processing says about it is enough
                        log.warning("retention waits for room on the disk", extra={"error": str(disk_full_cause(exc))})
                    else:
                        log.exception("retention failed; it runs again at its next interval")
            total = total + self.step(stop)
        if retention is not None:
            retention.close()
        # What this worker did over its life: operators read it, and tests count on it.
        log.info(
            "worker stopped",
            extra={"worker": self.id, "requests": total.requests, "events": total.events, "stored": total.stored},
        )

    def step(self, stop: threading.Event) -> BatchResult:
        """One batch (``run_once``), then the wait its outcome asks for: a poll interval after
        an empty queue or a failure (logged), room on the disk after a full disk. Returns what
        the batch did (nothing, if it failed). The step of every worker loop."""
        try:
            result = self.run_once()
        except Exception as exc:
            if is_disk_full(exc):
                self._wait_for_room(exc, stop)
            else:
                log.exception("worker could not claim a batch")
                stop.wait(self.options.idle_wait_seconds)
            return BatchResult()
        if self._disk_full:
            self._disk_full = False
            log.warning("the disk has room again; processing resumes", extra={"worker": self.id})
        if not result.requests and not result.failed_requests:
            stop.wait(self.options.idle_wait_seconds)
        return result

    def _wait_for_room(self, exc: BaseException, stop: threading.Event) -> None:
        if not self._disk_full:
            # Once per episode: a traceback every few seconds would only fill the log (and the disk).
            self._disk_full = True
            log.error(
                "the disk is full: processing waits for room; queued requests stay queued",
                extra={"worker": self.id, "error": str(disk_full_cause(exc))},
            )
        stop.wait(DISK_FULL_WAIT_SECONDS)

    def _park(self, rows: list[queue.Claimed], exc: BaseException) -> None:
        log.error(
            "processing failed",
            exc_info=exc,
            extra={"queue_ids": [r.id for r in rows], "attempts": [r.attempts for r in rows]},
        )
        parked = queue.record_failure(
            self.db, self.id, [r.id for r in rows], repr(exc), max_attempts=self.options.max_attempts
        )
        if parked:
            log.error(
                "requests parked after repeated failures; `trapline requeue` retries them", extra={"count": parked}
            )


def is_dead_local(worker_id: str) -> bool:
    """Whether ``worker_id`` names a process of this machine that no longer runs."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit() or worker_id in _OWN_IDS:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:  # a killed child that nobody reaped yet is a zombie: dead, though kill(0) works
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class WorkerThreads:
    """Several workers in one process (``trapline worker --threads N``)."""

    def __init__(self, make_worker: Callable[[], Worker], count: int) -> None:
        self._make_worker = make_worker
        self._count = count
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for n in range(self._count):
            thread = threading.Thread(
                target=self._make_worker().run_forever, args=(self._stop,), name=f"trapline-worker-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
