"""The exception pipeline: queued capture requests in, issues and stored events out.

``process_batch`` is the whole pipeline, its stages in order. Each stage takes the batch and
keeps its length: an event a stage rejects stays in place, marked, and later stages pass
over it (it is counted in ``dropped_events``). Errors of the infrastructure (the database,
the symbol store) raise out of here; the worker then retries the batch, and nothing of it
has been written, because everything the batch writes, including the removal of its
requests from the queue, is one transaction. (With SQLite's queue in a file of its own, the
transaction marks the requests done and ``queue.acked`` removes them after it commits.)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trapline.alerts.counters import SeenUsers
from trapline.autocapture.controls import load_controls, load_signals
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events import queue
from trapline.pipeline.alerting import load_alerts, raise_alerts
from trapline.pipeline.autocapture import enforce_controls, sessions_to_read
from trapline.pipeline.batch import Item, door_drops_from_queue, items_from_queue
from trapline.pipeline.grouping import group
from trapline.pipeline.linking import link_issues
from trapline.pipeline.normalization import normalize
from trapline.pipeline.orphans import existing_projects, of_projects
from trapline.pipeline.properties import grouped_output
from trapline.pipeline.rate_limits import limit_issues, limit_projects, load_limits
from trapline.pipeline.resolution import FrameResolver, resolve
from trapline.pipeline.rules import load_rules, save_failures
from trapline.pipeline.storage import count_drops, prepare_rows, store_events
from trapline.pipeline.suppression import suppress
from trapline.usage.counting import add_usage, door_outcomes, outcomes

__all__ = ["BatchResult", "FrameResolver", "process_batch"]

log = logging.getLogger("trapline.pipeline")


@dataclass(frozen=True)
class BatchResult:
    """What processing one or more batches did."""

    requests: int = 0
    events: int = 0
    stored: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    issues_created: int = 0
    issues_reopened: int = 0
    failed_requests: int = 0
    # Alert notifications written, due to be sent now.
    notifications: int = 0

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            requests=self.requests + other.requests,
            events=self.events + other.events,
            stored=self.stored + other.stored,
            dropped=self.dropped + other.dropped,
            issues_created=self.issues_created + other.issues_created,
            issues_reopened=self.issues_reopened + other.issues_reopened,
            failed_requests=self.failed_requests + other.failed_requests,
            notifications=self.notifications + other.notifications,
        )


def process_batch(
    db: Database,
    worker_id: str,
    claimed: Sequence[queue.Claimed],
    resolver: FrameResolver | None = None,
    *,
    base_url: str = "",
    clock: Callable[[], datetime] = utcnow,
    seen_users: SeenUsers | None = None,
) -> BatchResult:
    """Run the pipeline over requests ``worker_id`` has claimed, and remove them from the queue.

    ``base_url`` is Trapline's public URL, for the links in alerts; ``clock`` is the time of
    processing (spike buckets and alert windows are in processing time); ``seen_users`` is the
    worker's memory of the users it recorded for users alerts.
    Raises ``queue.LeaseLost`` (and writes nothing) if another worker took a request over.
    """
    items = items_from_queue(claimed)
    door = door_drops_from_queue(claimed)  # counted at the door, see events.door_drops
    with db.session(write=False) as session:
        projects = existing_projects(session, (row.project_id for row in claimed))
        items, door = of_projects(items, door, projects)  # a deleted project's are discarded
        rules = load_rules(session, projects)
        controls = load_controls(session, projects)
        alerts = load_alerts(session, projects, base_url)
        limits = load_limits(session, projects)
    signals = {}
    if controls:
        with db.queue.session(write=False) as session:  # where capture keeps them, see queue_file
            signals = load_signals(session, sessions_to_read(items, controls))

    # Stages outside any write transaction (SQLite has one writer, and the API's writes wait
    # for it); resolution only reads.
    normalize(items)  # read $exception_list (or the legacy properties), or reject
    enforce_controls(items, controls, signals)  # autocapture controls: blocklist, triggers, sampling
    symbols = resolver.for_batch(items) if resolver is not None else None
    resolve(items, symbols)  # raw frames -> resolved frames; computed $exception_* properties
    suppress(items, rules)  # suppression rules, sampled by event uuid
    group(items, rules)  # grouping rule, else the automatic fingerprint; client fingerprint last
    _grouped(items)  # grouping's $exception_* properties
    prepared = prepare_rows(items, sqlite=db.is_sqlite)  # the stored rows, all but their issue

    seen_users = seen_users if seen_users is not None else SeenUsers()
    seen_users.rolled_back()  # whatever an earlier attempt counted was not committed
    now = clock()
    with db.session(write=True) as session:
        if symbols is not None:
            symbols.save(session)  # new stack frames, missing chunks, unusable symbol sets
        limit_projects(session, items, limits, now)  # the project's budget for this bucket
        changes = link_issues(session, items, rules)  # find or create issues; reopen; assign
        limit_issues(session, items, limits, now)  # each issue's budget for this bucket
        _linked(items)  # $exception_issue_id
        stored = store_events(session, items, prepared)
        due = raise_alerts(session, items, changes, alerts, now, seen_users)  # lifecycle, spikes, thresholds
        dropped = count_drops(session, items, door)
        add_usage(session, outcomes(items), now.date())  # stored and dropped per project and day
        for day, counts in door_outcomes(door).items():
            add_usage(session, counts, day)
        save_failures(session, (failure for project in rules.values() for failure in project.failures))
        queue.ack(db, session, worker_id, [row.id for row in claimed])
        session.commit()
    seen_users.committed()
    try:
        queue.acked(db, [row.id for row in claimed])
    except Exception:
        # Stored and marked done: when their lease runs out, a claim finds them done and
        # removes them then.
        log.warning("processed requests stay queued until their lease ends", exc_info=True)

    return BatchResult(
        requests=len(claimed),
        events=len(items),
        stored=stored,
        dropped=dropped,
        issues_created=sum(change.kind == "created" for change in changes),
        issues_reopened=sum(change.kind == "reopened" for change in changes),
        notifications=len(due),
    )


def _grouped(items: list[Item]) -> None:
    for item in items:
        if item.live and item.fingerprint is not None:
            grouped_output(
                item.output,
                fingerprint=item.fingerprint,
                proposed_fingerprint=item.proposed_fingerprint or item.fingerprint,
                record=item.fingerprint_record,
                errors=item.errors,
            )


def _linked(items: list[Item]) -> None:
    for item in items:
        if item.live and item.issue_id is not None:
            item.output["$exception_issue_id"] = str(item.issue_id)
