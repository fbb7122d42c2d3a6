"""Retention passes: what ``policy`` decided, done by ``purge``'s statements a step at a time.

A pass is a generator that yields after every short transaction, so its caller decides when
the next step runs: a worker takes one step per turn of its loop (between its own batches),
and never more than ``busy_share`` of the time (``Retention.tick``), which leaves SQLite's
one write lock to ingestion most of the time however much there is to delete.

Several workers (processes, machines) run ``Retention`` at once; only one pass runs at a time
per database (a PostgreSQL advisory lock, a lock file beside an SQLite database), the others
skip theirs. That is for ingestion's sake, not correctness: the statements delete a row once
whoever runs them.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from trapline.db import vacuum
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.retention import purge
from trapline.retention.policy import (
    ProjectPlan,
    RetentionOptions,
    cap_boundary,
    issues_over_cap,
    pause_after,
    plan,
)

__all__ = ["BUSY_SHARE", "Purged", "Retention", "purge_pass"]

log = logging.getLogger("trapline.retention")

# The share of the time (and of SQLite's write lock) retention's steps may take: a worker's
# loop runs them, so its own processing loses this share, and other writers wait for the lock
# a little. bench/retention_bench.py measures ingestion keeping over 80% of its rate while a
# backlog goes (deleting about 1,000 events/s on SQLite; a day's worth of a busy project's
# events in minutes).
BUSY_SHARE = 0.1
# Free pages given back per statement, in bytes (files' pages differ in size): a few tens of
# milliseconds.
VACUUM_BYTES = 8 * 1024 * 1024
# Free pages left for the next inserts (the queue's rows come and go all the time).
_FREE_SLACK_BYTES = 4 * 1024 * 1024
# Any constant works; it only has to be the same in every Trapline process (migrate.py
# uses another).
_PG_LOCK_KEY = 0x7472_6170_7265_74  # "trapret"
# Fingerprints per statement when capping a merged issue: bound parameters stay few.
_FINGERPRINTS_PER_STATEMENT = 500
# Logged once per process: such a database keeps its size until `trapline vacuum`.
_hinted_vacuum = False


@dataclass
class Purged:
    """What one pass deleted, by kind."""

    events_expired: int = 0
    events_capped: int = 0
    parked_requests: int = 0
    deliveries: int = 0
    placeholders: int = 0
    stack_frames: int = 0
    rate_limit_counters: int = 0
    usage_days: int = 0
    # Bytes of SQLite pages given back to the file system.
    bytes_freed: int = 0

    @property
    def rows(self) -> int:
        return sum(value for key, value in asdict(self).items() if key != "bytes_freed")


Pass = Generator[None, None, Purged]
# Each issue's total when it was last capped, by (issue, cap): see policy.issues_over_cap.
Capped = dict[tuple[uuid.UUID, int], int]


def purge_pass(db: Database, options: RetentionOptions, now: datetime, capped: Capped) -> Pass:
    """One retention pass at ``now``, yielding after each transaction; returns what it deleted.

    ``capped`` is kept across passes; a pass adds to it.
    """
    purged = Purged()
    with _one_pass_at_a_time(db) as ours:
        if not ours:
            log.debug("retention skipped: another process runs it")
            return purged
        with db.session(write=False) as session:
            the_plan = plan(purge.project_settings(session), options, now)
        limit = options.batch_size
        for project in the_plan.projects:
            pid, before = project.project_id, project.events_before
            expired = functools.partial(purge.expired_events, project_id=pid, before=before)
            purged.events_expired += yield from _until_done(db, expired, limit)
            if project.max_events_per_issue is not None:
                purged.events_capped += yield from _cap(db, project, project.max_events_per_issue, limit, capped)
        purged.parked_requests += yield from _parked(db, the_plan.parked_before, limit)
        with db.session(write=False) as session:
            alerts = purge.alert_ids(session)
        for alert_id in alerts:
            before = the_plan.deliveries_before
            finished = functools.partial(purge.finished_deliveries, alert_id=alert_id, before=before)
            purged.deliveries += yield from _until_done(db, finished, limit)
        for project in the_plan.projects:
            while True:
                with db.session(write=True) as session:
                    sets, frames = purge.unused_placeholders(session, project.project_id, project.events_before, limit)
                    session.commit()
                purged.placeholders += sets
                purged.stack_frames += frames
                yield
                if sets == 0 and frames < limit:
                    break
        ended = functools.partial(purge.ended_counters, before=the_plan.counters_before)
        purged.rate_limit_counters += yield from _until_done(db, ended, limit)
        old = functools.partial(purge.old_usage, before=the_plan.usage_before)
        purged.usage_days += yield from _until_done(db, old, limit)
        if purged.rows:
            purged.bytes_freed += yield from _give_space_back(db.engine)
        if db.queue_apart:
            # The queue's own file: what a drained backlog took (capture's commits reuse it anyway).
            purged.bytes_freed += yield from _give_space_back(db.queue.engine)
    return purged


def _until_done(db: Database, action: Callable[..., int], limit: int) -> Generator[None, None, int]:
    """Run ``action(session, limit=limit)`` in one write transaction after another until it
    deletes fewer than ``limit``."""
    total = 0
    while True:
        with db.session(write=True) as session:
            deleted = action(session, limit=limit)
            session.commit()
        total += deleted
        yield
        if deleted < limit:
            return total


def _cap(db: Database, project: ProjectPlan, cap: int, limit: int, capped: Capped) -> Generator[None, None, int]:
    total = 0
    with db.session(write=False) as session:
        totals = purge.issues_over(session, project.project_id, cap)
    for issue_id in issues_over_cap(totals, cap, capped):
        with db.session(write=False) as session:
            fingerprints = purge.fingerprints_of(session, project.project_id, issue_id)
            newest = [purge.newest_events(session, project.project_id, fp, cap + 1) for fp in fingerprints]
        boundary = cap_boundary(newest, cap)
        yield
        if boundary is not None:
            for start in range(0, len(fingerprints), _FINGERPRINTS_PER_STATEMENT):
                over = functools.partial(
                    purge.capped_events,
                    project_id=project.project_id,
                    fingerprints=fingerprints[start : start + _FINGERPRINTS_PER_STATEMENT],
                    boundary=boundary,
                )
                total += yield from _until_done(db, over, limit)
        capped[(issue_id, cap)] = totals[issue_id]
    return total


def _parked(db: Database, before: datetime, limit: int) -> Generator[None, None, int]:
    total = 0
    while True:
        with db.queue.session(write=True) as session:
            parked = purge.parked_requests(session, before, limit)
            session.commit()
        if parked:
            # They were kept for `trapline requeue`; what they were stays in the log.
            log.warning(
                "parked requests deleted",
                extra={
                    "requests": [{**asdict(row), "last_error": (row.last_error or "")[:200]} for row in parked],
                    "parked_before": before,
                },
            )
        total += len(parked)
        yield
        if len(parked) < limit:
            return total


def _give_space_back(engine: Engine) -> Generator[None, None, int]:
    global _hinted_vacuum
    mode = vacuum.auto_vacuum_mode(engine)
    if mode == "none" and not _hinted_vacuum:
        _hinted_vacuum = True
        log.warning(
            "the SQLite database keeps the space of deleted rows for reuse but never shrinks: "
            "stop Trapline and run `trapline vacuum` once to make it give space back"
        )
    if mode != "incremental":
        return 0
    freed = 0
    free = vacuum.free_bytes(engine)
    # Bounded by what was free at the start: pages freed meanwhile wait for the next pass.
    for _ in range(max(0, free - _FREE_SLACK_BYTES) // VACUUM_BYTES + 1):
        if free <= _FREE_SLACK_BYTES:
            break
        left = vacuum.vacuum_step(engine, min(VACUUM_BYTES, free - _FREE_SLACK_BYTES))
        freed += max(0, free - left)
        free = left
        yield
    return freed


@contextmanager
def _one_pass_at_a_time(db: Database) -> Iterator[bool]:
    """Whether this pass may run (True) or another holds the database's retention lock."""
    if not db.is_sqlite:
        with db.engine.connect() as connection:
            ours = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}))
            connection.commit()
            try:
                yield ours
            finally:
                if ours:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                    connection.commit()
        return
    database = db.engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    with open(database + ".retention-lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Retention:
    """Retention for one worker: a pass every ``interval_seconds``, a step at a time."""

    def __init__(
        self,
        db: Database,
        options: RetentionOptions,
        *,
        clock: Callable[[], datetime] = utcnow,
        busy_share: float = BUSY_SHARE,
    ) -> None:
        self.db = db
        self.options = options
        self.clock = clock
        self.busy_share = busy_share
        self._pass: Pass | None = None
        self._started = 0.0
        self._next_pass = 0.0
        self._next_step = 0.0
        # Kept between passes, so that issues at their cap are not looked at again and again.
        self._capped: Capped = {}

    def tick(self) -> Purged | None:
        """Take the next step if one is due (starting a pass when its interval came round);
        returns what a pass deleted when this step ended it."""
        now = time.monotonic()
        if self._pass is None:
            if now < self._next_pass:
                return None
            self._next_pass = now + self.options.interval_seconds
            self._pass = purge_pass(self.db, self.options, self.clock(), self._capped)
            self._started = now
        if now < self._next_step:
            return None
        try:
            next(self._pass)
            # Within the step's time, so that the pacing counts it (see vacuum.checkpoint).
            vacuum.checkpoint(self.db.engine)
        except StopIteration as done:
            self._pass = None
            purged: Purged = done.value
            if purged.rows:
                log.info(
                    "retention pass done",
                    extra={**asdict(purged), "seconds": round(time.monotonic() - self._started, 3)},
                )
            return purged
        except BaseException:
            self._pass = None
            raise
        finally:
            ended = time.monotonic()
            self._next_step = ended + pause_after(ended - now, self.busy_share)
        return None

    def run(self, *, paced: bool = True) -> Purged:
        """Finish the pass in progress, or run one now (paced as in a worker, unless told not to)."""
        if self._pass is None:
            self._next_pass = 0.0
        while True:
            if paced:
                time.sleep(max(0.0, self._next_step - time.monotonic()))
            else:
                self._next_step = 0.0
            purged = self.tick()
            if purged is not None:
                return purged

    def close(self) -> None:
        """Stop a pass in progress (it releases its lock; what it deleted stays deleted)."""
        if self._pass is not None:
            self._pass.close()
            self._pass = None
