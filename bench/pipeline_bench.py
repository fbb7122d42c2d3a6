"""Processing rate of one worker on a prefilled queue: the pipeline alone, without HTTP.

    .venv/bin/python bench/pipeline_bench.py [--events 20000] [--per-request 1] [--batch-size 500] [--rate-limits]
                                             [--profile out.prof]

Fills a fresh SQLite database's queue with posthog-python-shaped ``$exception`` events (the
bodies of bench/events.py: twenty exception kinds, so twenty issues) and times one worker
draining it, in this process. Prints events/s overall, the drain's CPU time per event (this
machine's speed drifts; CPU time drifts less), and the time per stage from cProfile when
--profile is given. ``--rate-limits`` gives the project a project and a per-issue rate
limit too high to drop anything: the cost of counting every batch against both budgets.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import resource
import tempfile
import time

from events import BodyFactory, body_template

from trapline.accounts.bootstrap import bootstrap
from trapline.db import migrate
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import utcnow
from trapline.events.queue import NewRequest, enqueue
from trapline.limits.service import update_settings
from trapline.objects.memory import InMemoryStore
from trapline.symbols.resolver import SymbolResolver
from trapline.worker import Worker, WorkerOptions


def fill(db: Database, project_id: int, token: str, events: int, per_request: int) -> None:
    factory = BodyFactory(body_template(token, per_request), stream=1)
    requests: list[NewRequest] = []
    for _ in range(max(1, events // per_request)):
        body = json.loads(factory.next_body())
        batch = body["batch"]
        requests.append(
            NewRequest(
                project_id=project_id,
                received_at=utcnow(),
                sent_at=body["sent_at"],
                payload=json.dumps(batch).encode(),
                event_count=len(batch),
            )
        )
        if len(requests) >= 1000:
            enqueue(db, requests)
            requests = []
    enqueue(db, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-request", type=int, default=1)
    parser.add_argument("--rate-limits", action="store_true", help="count every batch against rate limits")
    parser.add_argument("--batch-size", type=int, default=WorkerOptions.batch_size, help="requests per claim")
    parser.add_argument("--profile", help="write a cProfile of the drain here and print its top entries")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/bench.db", reprocessable=True)  # as trapline worker
        migrate.upgrade(db.engine)
        with db.session(write=True) as session:
            created = bootstrap(
                session, email="b@example.com", password="bench-pw-1", organization="B", project="B", key_label="b"
            )
        if args.rate_limits:
            with db.session(write=True) as session:
                update_settings(
                    session,
                    created.project_id,
                    {"project_rate_limit_value": 10**9, "per_issue_rate_limit_value": 10**9},
                )
        fill(db, created.project_id, created.project_api_token, args.events, args.per_request)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)  # as trapline worker does
        # With a symbol resolver, as `trapline worker` runs (its store is empty: Python frames need none).
        worker = Worker(db, WorkerOptions(batch_size=args.batch_size), SymbolResolver(db, InMemoryStore()))
        profiler = cProfile.Profile() if args.profile else None
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        result = worker.drain()
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        db.dispose()

    print(f"pipeline: {result.stored:,} events stored in {elapsed:.2f} s = {result.stored / elapsed:,.0f} events/s")
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    per_event = 1e6 / max(1, result.stored)
    cpu = (user + system) * per_event
    print(f"  CPU {cpu:.0f} us/event (user {user * per_event:.0f}, system {system * per_event:.0f})")
    limits = ", rate limits counted" if args.rate_limits else ""
    print(
        f"  ({args.per_request} event(s) per queued request, {result.requests:,} requests, one worker, SQLite{limits})"
    )
    if profiler and args.profile:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
