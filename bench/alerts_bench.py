"""What alerts cost the pipeline: one worker draining a prefilled queue, with and without alerts.

    .venv/bin/python bench/alerts_bench.py [--events 20000] [--runs 3] [--database postgresql://…]

Each run fills a fresh database's queue with posthog-python-shaped ``$exception`` events
(bench/events.py: twenty kinds, so twenty issues) and times one worker draining it, in this
process. "without" has no alert and the spike detector off; "with" has five enabled alerts
(created, reopened, spiking, frequency, users; two with filters) and the detector on, so every
batch counts spike buckets, reads their hour, checks two thresholds per issue and writes the
notifications. Runs alternate; the medians and their ratio are printed. Nothing is sent.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import uuid

from pipeline_bench import fill
from sqlalchemy import create_engine, text

from trapline.accounts.bootstrap import bootstrap
from trapline.alerts.models import AlertDelivery
from trapline.alerts.service import AlertInput, create_alert, update_spike_settings
from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.settings import load_settings
from trapline.worker import Worker, WorkerOptions

WEB = {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["posthog-python"]}]}
FIVE = (
    {"type": "issue_created"},
    {"type": "issue_reopened"},
    {"type": "issue_spiking"},
    {"type": "issue_frequency", "threshold": 1000, "window_minutes": 60},
    {"type": "issue_users", "threshold": 50, "window_minutes": 60},
)


def run(url: str, events: int, with_alerts: bool, data_dir: str) -> tuple[float, float, int, int]:
    db = Database(make_engine(url, reprocessable=True))  # as trapline worker
    migrate.upgrade(db.engine)
    with db.session(write=True) as session:
        created = bootstrap(
            session, email="b@example.com", password="bench-pw-1", organization="B", project="B", key_label="b"
        )
        update_spike_settings(session, created.project_id, {"enabled": with_alerts, "threshold": 100})
        if with_alerts:
            settings = load_settings(data_dir=data_dir, database_url=url)
            for n, trigger in enumerate(FIVE):
                given = AlertInput(
                    name=f"alert {n}", trigger=trigger, filters=WEB if n % 2 else None,
                    destination={"type": "webhook", "url": "https://hooks.example.com/bench"},
                )  # fmt: skip
                create_alert(session, created.project_id, given, settings)
    fill(db, created.project_id, created.project_api_token, events, 1)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)  # as trapline worker does
    worker = Worker(db, WorkerOptions(base_url="http://bench.test"))
    started, cpu = time.perf_counter(), time.process_time()
    result = worker.drain()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.unfreeze()
    with db.session(write=False) as session:
        notifications = session.query(AlertDelivery).count()
    db.dispose()
    # CPU time too: on a shared machine it is steadier than the wall clock (SQLite works in
    # this process; PostgreSQL's own time is not in it).
    return result.stored / elapsed, result.stored / cpu, result.stored, notifications


def fresh_postgres(admin_url: str) -> tuple[str, str]:
    name = f"trapline_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_postgres(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind, alternating (default 3)")
    parser.add_argument("--database", help="a PostgreSQL URL to make fresh databases on (default: SQLite files)")
    args = parser.parse_args()

    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu_rates: dict[bool, list[float]] = {False: [], True: []}
    notified = 0
    for _ in range(args.runs):
        for with_alerts in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                if args.database:
                    url, name = fresh_postgres(args.database)
                else:
                    url, name = f"sqlite:///{tmp}/bench.db", ""
                try:
                    rate, cpu_rate, stored, notifications = run(url, args.events, with_alerts, tmp)
                finally:
                    if name:
                        drop_postgres(args.database, name)
            rates[with_alerts].append(rate)
            cpu_rates[with_alerts].append(cpu_rate)
            notified = max(notified, notifications) if with_alerts else notified
            label = "with 5 alerts" if with_alerts else "without     "
            print(f"  {label}: {stored:,} events, {rate:,.0f} events/s ({cpu_rate:,.0f} per CPU second)", flush=True)
    backend = "PostgreSQL" if args.database else "SQLite"
    print(f"pipeline, one worker, {backend}, {args.events:,} events, median of {args.runs}; {notified} notifications")
    for label, measured in (("wall clock", rates), ("CPU time", cpu_rates)):
        without, with_ = statistics.median(measured[False]), statistics.median(measured[True])
        print(f"  {label}: without alerts {without:,.0f} events/s; with five alerts {with_:,.0f} events/s "
              f"({(with_ / without - 1) * 100:+.1f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
