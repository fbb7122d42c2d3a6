"""The ingest queue on PostgreSQL with 1, 2 and 4 worker processes: claims/s, events/s, and
where it saturates.

    .venv/bin/python bench/queue_bench.py [URL] [--events 20000] [--per-request 5] [--workers 1,2,4]

URL names a PostgreSQL server (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
each run gets a fresh database created on it (trapline_queue_bench_<hex>) and dropped after.
For each worker count it runs twice on a queue filled through the real enqueue path
(``events.queue.enqueue``, what the capture spool calls) with posthog-python-shaped
``$exception`` bodies (bench/events.py, twenty kinds, so twenty issues):

* the queue alone: N processes that only claim (FOR UPDATE SKIP LOCKED) and ack small batches,
  no pipeline: the queue table's own ceiling, in claims/s;
* ``trapline worker`` processes (the real command, default batch sizes): events/s from when
  every worker is running until the queue is empty. Meanwhile the CPU time of the workers and
  of their PostgreSQL backends is read from /proc, and pg_stat_activity is sampled: backends
  running or waiting on locks (Lock, LWLock) or IO mean PostgreSQL is the limit; backends
  idle in a transaction or waiting for the client mean the workers are.

PostgreSQL must run on this machine (its backends' CPU is read from /proc). Nothing is
asserted; figures are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from events import BodyFactory, body_template
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from trapline.accounts.bootstrap import bootstrap
from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.types import utcnow
from trapline.events.queue import NewRequest, ack, claim, enqueue

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TRAPLINE = str(Path(sys.executable).with_name("trapline"))
TICKS = os.sysconf("SC_CLK_TCK")
CLAIM_BATCH = 10  # requests per claim in the queue-alone runs: many claims, so contention shows


# --- a fresh database per run --------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"trapline_queue_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, events: int, per_request: int) -> int:
    """Migrate, make a project, fill the queue; returns the number of queued requests."""
    db = Database(make_engine(url))
    migrate.upgrade(db.engine)
    with db.session(write=True) as session:
        created = bootstrap(
            session, email="q@example.com", password="bench-pw-1", organization="Q", project="Q", key_label="q"
        )
    factory = BodyFactory(body_template(created.project_api_token, per_request), stream=1)
    requests: list[NewRequest] = []
    total = 0
    for _ in range(max(1, events // per_request)):
        body = json.loads(factory.next_body())
        batch = body["batch"]
        requests.append(
            NewRequest(created.project_id, utcnow(), body["sent_at"], json.dumps(batch).encode(), len(batch))
        )
        if len(requests) >= 500:
            enqueue(db, requests)
            total += len(requests)
            requests = []
    enqueue(db, requests)
    total += len(requests)
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    db.dispose()
    return total


# --- the queue alone ---------------------------------------------------------------------------


def _claimer(
    url: str, start: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue[tuple[int, float, float]]
) -> None:
    db = Database(make_engine(url, pool_size=1, reprocessable=True))  # as trapline worker
    worker_id = f"bench:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with db.engine.connect() as connection:  # the pool's one connection: the backend every claim uses
        backend = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
    start.wait()
    own_before, backend_before = time.process_time(), _cpu_seconds(backend) or 0.0
    claims = 0
    while rows := claim(db, worker_id, CLAIM_BATCH, timedelta(minutes=5)):
        claims += 1
        with db.session(write=True) as session:
            ack(db, session, worker_id, [row.id for row in rows])
            session.commit()
    results.put((claims, time.process_time() - own_before, (_cpu_seconds(backend) or 0.0) - backend_before))
    db.dispose()


@dataclass
class QueueRun:
    claims_per_second: float
    client_cpu_per_claim: float
    backend_cpu_per_claim: float


def queue_alone(url: str, processes: int) -> QueueRun:
    """``processes`` claimers draining the queue: claims/s, and CPU per claim on each side."""
    start = multiprocessing.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, float, float]] = multiprocessing.Queue()
    children = [multiprocessing.Process(target=_claimer, args=(url, start, results)) for _ in range(processes)]
    for child in children:
        child.start()
    start.wait()
    began = time.perf_counter()
    done = [results.get() for _ in children]
    elapsed = time.perf_counter() - began
    for child in children:
        child.join()
    claims = sum(count for count, _, _ in done) or 1
    return QueueRun(
        claims / elapsed,
        sum(own for _, own, _ in done) / claims,
        sum(backend for _, _, backend in done) / claims,
    )


# --- trapline worker processes -----------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Sampler:
    """Samples pg_stat_activity of one database, and CPU of its backends and of the workers."""

    url: str
    database: str
    worker_pids: list[int]
    states: Counter[str] = field(default_factory=Counter)
    backend_cpu: dict[int, tuple[float, float]] = field(default_factory=dict)  # pid -> (first, last)
    worker_cpu: dict[int, tuple[float, float]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        engine = create_engine(self.url, poolclass=NullPool)
        with engine.connect() as connection:
            own = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            while not self.stop.is_set():
                rows = connection.execute(
                    text(
                        "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> :own AND backend_type = 'client backend'"
                    ),
                    {"db": self.database, "own": own},
                ).all()
                connection.rollback()
                for pid, state, wait_type, wait_event in rows:
                    self.states[_state(state, wait_type, wait_event)] += 1
                    self._cpu(self.backend_cpu, pid)
                for pid in self.worker_pids:
                    self._cpu(self.worker_cpu, pid)
                time.sleep(0.1)
        engine.dispose()

    @staticmethod
    def _cpu(seen: dict[int, tuple[float, float]], pid: int) -> None:
        now = _cpu_seconds(pid)
        if now is not None:
            first = seen.get(pid, (now, now))[0]
            seen[pid] = (first, now)

    @staticmethod
    def used(seen: dict[int, tuple[float, float]]) -> float:
        return sum(last - first for first, last in seen.values())


def _state(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    if state == "active":
        if wait_type is None:
            return "running"
        return f"waiting on {wait_type}" + (f" ({wait_event})" if wait_type in ("Lock", "LWLock") else "")
    if state == "idle in transaction":
        return "idle in transaction (worker busy)"
    return "idle (worker busy or between batches)"


@dataclass
class WorkerRun:
    events_per_second: float
    requests_per_second: float
    seconds: float
    worker_cpu: float
    backend_cpu: float
    machine_busy: float
    states: Counter[str]


def workers(url: str, processes: int, requests: int, tmp: Path) -> WorkerRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAPLINE_")}
    env.update({"TRAPLINE_DATABASE_URL": url, "TRAPLINE_DATA_DIR": str(tmp / "data")})
    logs = [tmp / f"worker-{n}.log" for n in range(processes)]
    children = []
    for log_path in logs:
        with log_path.open("w") as log:
            children.append(
                subprocess.Popen([TRAPLINE, "worker", "--threads", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
            )
    engine = create_engine(url, poolclass=NullPool)
    try:
        while not all('"worker started"' in path.read_text() for path in logs):
            time.sleep(0.05)
        sampler = Sampler(url, str(make_url(url).database), [child.pid for child in children])
        thread = threading.Thread(target=sampler.run, daemon=True)
        with engine.connect() as connection:
            left_at_start = connection.execute(text("SELECT count(*) FROM ingest_queue")).scalar_one()
            stored_at_start = connection.execute(text("SELECT count(*) FROM exception_event")).scalar_one()
            connection.rollback()
            busy0, total0 = _machine_busy()
            began = time.perf_counter()
            thread.start()
            while connection.execute(text("SELECT count(*) FROM ingest_queue")).scalar_one():
                connection.rollback()
                time.sleep(0.05)
            elapsed = time.perf_counter() - began
            busy1, total1 = _machine_busy()
            sampler.stop.set()
            thread.join()
            stored = connection.execute(text("SELECT count(*) FROM exception_event")).scalar_one()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=60)
        engine.dispose()
    return WorkerRun(
        events_per_second=(stored - stored_at_start) / elapsed,
        requests_per_second=left_at_start / elapsed,
        seconds=elapsed,
        worker_cpu=Sampler.used(sampler.worker_cpu),
        backend_cpu=Sampler.used(sampler.backend_cpu),
        machine_busy=(busy1 - busy0) / max(1, total1 - total0),
        states=sampler.states,
    )


# --- the report --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", nargs="?", default=DEFAULT_URL, help="a PostgreSQL server to create databases on")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-request", type=int, default=5, help="events per queued request (an SDK batch)")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to run, comma-separated")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1

    print(f"queue_bench: {args.events:,} events, {args.per_request} per request; PostgreSQL at {args.url}")
    print(
        f"This machine has {cores} core(s), shared by the workers, PostgreSQL and this script (and whatever "
        "else runs): past that many busy processes, more workers only take turns. Figures are noisy."
    )
    print()
    header = (
        f"{'workers':>7} | {'claims/s':>9} | {'ms/claim':>14} | {'events/s':>9} | {'requests/s':>10} | "
        f"{'worker CPU':>10} | {'PG CPU':>7} | {'machine':>7} | {'µs/event':>15} | where the backends were"
    )
    print(header)
    print("-" * len(header))
    for processes in counts:
        with fresh_database(args.url) as url:
            prepare(url, args.events, args.per_request)
            queue = queue_alone(url, processes)
        with fresh_database(args.url) as url, tempfile.TemporaryDirectory() as tmp:
            requests = prepare(url, args.events, args.per_request)
            run = workers(url, processes, requests, Path(tmp))
        seconds = run.seconds
        states = run.states
        total = sum(states.values()) or 1
        where = ", ".join(f"{name} {count / total:.0%}" for name, count in states.most_common(4))
        events = run.events_per_second * seconds or 1
        per_claim = f"{queue.client_cpu_per_claim * 1e3:.1f} + {queue.backend_cpu_per_claim * 1e3:.1f} PG"
        per_event = f"{run.worker_cpu / events * 1e6:.0f} + {run.backend_cpu / events * 1e6:.0f} PG"
        print(
            f"{processes:>7} | {queue.claims_per_second:>9,.0f} | {per_claim:>14} | {run.events_per_second:>9,.0f} | "
            f"{run.requests_per_second:>10,.0f} | {run.worker_cpu / seconds:>9.0%}  | "
            f"{run.backend_cpu / seconds:>6.0%} | {run.machine_busy:>6.0%}  | {per_event:>15} | {where}"
        )
    print()
    print(
        f"claims/s: the queue alone ({CLAIM_BATCH} requests per claim, claim + ack, no pipeline); ms/claim: CPU "
        "time per claim of the claiming processes + their PostgreSQL backends. events/s, "
        "requests/s: `trapline worker` processes (default batches) from all running to the queue empty. "
        "worker CPU, PG CPU: CPU seconds per second (100% = one core busy) of the workers and of their "
        f"PostgreSQL backends; machine: all {cores} cores together. µs/event: CPU time per stored event, "
        "workers + their PostgreSQL backends: what a machine of your own would need per event/s."
    )


if __name__ == "__main__":
    main()
