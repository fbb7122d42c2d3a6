"""What retention's deletes cost as the events table grows: one unpaced pass over a database
ui_bench.py filled (1,000,000 or 10,000,000 events), keeping ``--days`` days.

    .venv/bin/python bench/retention_scale.py --database-url postgresql+psycopg://…/uibench10m --days 14
    .venv/bin/python bench/retention_scale.py --data /tmp/ui-1m.db --days 14

Destructive: the database loses the events older than that (run it after ui_bench's pages).
Prints the events before and the expired ones, then per transaction of the pass (up to
``--batch-size`` events each, as a worker runs them) its time, and the pass's events deleted
per second: if that rate stays the same between 1,000,000 and 10,000,000 events, deleting rows
is not what a bigger table makes slow, and time partitions (dropping a month instead of
deleting its rows) are not needed yet. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from sqlalchemy import func, select

from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.types import utcnow
from trapline.events.models import ExceptionEvent
from trapline.retention.policy import RetentionOptions
from trapline.retention.runner import Capped, purge_pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a database ui_bench.py filled")
    parser.add_argument("--data", help="an SQLite file ui_bench.py filled")
    parser.add_argument("--days", type=int, default=14, help="the retention to apply")
    parser.add_argument("--batch-size", type=int, default=2000, help="TRAPLINE_RETENTION_BATCH_SIZE")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.data}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    db = Database(engine)
    now = utcnow()
    cutoff = now - timedelta(days=args.days)
    with db.session(write=False) as session:
        total = session.scalar(select(func.count()).select_from(ExceptionEvent)) or 0
        expired = (
            session.scalar(select(func.count()).select_from(ExceptionEvent).where(ExceptionEvent.timestamp < cutoff))
            or 0
        )
    print(f"{total:,} events, {expired:,} older than {args.days} days")
    capped: Capped = {}
    steps: list[float] = []
    started = time.perf_counter()
    the_pass = purge_pass(db, RetentionOptions(days=args.days, batch_size=args.batch_size), now, capped)
    while True:
        step = time.perf_counter()
        try:
            next(the_pass)
        except StopIteration as stop:
            purged = stop.value
            break
        steps.append((time.perf_counter() - step) * 1000)
    took = time.perf_counter() - started
    deleted = purged.events_expired
    steps.sort()
    p95 = steps[int(len(steps) * 0.95)] if steps else 0.0
    print(
        f"deleted {deleted:,} events in {took:.1f} s: {deleted / took:,.0f} events/s; "
        f"{len(steps)} transactions of up to {args.batch_size:,}: median {statistics.median(steps or [0]):.0f} ms, "
        f"p95 {p95:.0f} ms, max {max(steps or [0]):.0f} ms"
    )


if __name__ == "__main__":
    main()
