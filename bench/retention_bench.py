"""Retention under load: a million stored events, a quarter of them expired, deleted while a
worker keeps processing.

    .venv/bin/python bench/retention_bench.py --events 1000000 [--separate] [--database postgresql+psycopg://…]

1. Fills a fresh database (SQLite by default) with ``--events`` stored events spread over
   ``--days`` days (120: with the default 90-day retention a quarter are expired) and
   ``--issues`` issues (a long tail: a few issues have most events), with matching issue and
   fingerprint totals. The rows are copies of events the real pipeline stored (bench/events.py's
   posthog-python exceptions, ~3 kB of properties each), written straight to the table.
2. Runs a worker over queued posthog-python ``$exception`` events (as pipeline_bench fills them,
   topped up between windows, untimed) in windows of ``--window`` seconds, alternately alone and with
   one retention pass running, until the pass ends: as in a worker's loop (a step before each
   batch, when one is due; the default deployment, one worker), or with ``--separate`` in
   another process (a second worker running it). Alternating windows cancel the drift of a
   shared machine; ``--pairs`` stops measuring earlier and lets the pass finish alone.
3. Prints events/s alone and with retention and their ratio (the target is at least 0.80), how
   long the pass took and what it deleted, the issue totals before and after (they must be
   equal), and the database's size before and after (SQLite: retention's incremental vacuum,
   then a WAL checkpoint; the events the worker stored meanwhile are in it too). Then, on
   SQLite, with the worker stopped, a second pass keeping ``--space-days`` days shows the file
   shrinking (while a worker stores events, they take the freed pages first).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import multiprocessing
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from alerts_bench import drop_postgres, fresh_postgres
from events import BodyFactory, body_template
from sqlalchemy import insert, text

from trapline.accounts.bootstrap import bootstrap
from trapline.db import migrate, vacuum
from trapline.db.engine import Database, make_engine
from trapline.db.types import sqlite_datetime, utcnow
from trapline.events.queue import NewRequest, enqueue
from trapline.issues.models import Issue, IssueFingerprint
from trapline.limits.models import ErrorTrackingSettings
from trapline.retention import Purged, Retention, RetentionOptions
from trapline.retention.runner import BUSY_SHARE
from trapline.worker import Worker, WorkerOptions

TARGET_RATIO = 0.80
# Rows per transaction while filling: big transactions are what makes the fill fast.
FILL_CHUNK = 50_000
# Events processed by the real pipeline whose stored rows the fill copies.
TEMPLATE_EVENTS = 200
BULK_PREFIX = "bench-retention-"


@dataclass(frozen=True)
class Phase:
    label: str
    stored: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


# --- filling --------------------------------------------------------------------------------


def template_rows(db: Database, project_id: int, token: str) -> list[dict[str, Any]]:
    """Rows the real pipeline stored, to copy: properties, search text, distinct ids."""
    Feeder(db, project_id, token, stream=0).top_up(TEMPLATE_EVENTS)
    Worker(db, WorkerOptions()).drain()
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT fingerprint, issue_id, distinct_id, library, search_text, properties "
                "FROM exception_event WHERE project_id = :p"
            ),
            {"p": project_id},
        ).mappings()
        found = []
        for row in rows:
            properties = row["properties"]
            if not isinstance(properties, str):  # JSONB comes back parsed
                properties = orjson.dumps(properties).decode()
            # As the properties spell it ($exception_issue_id), whatever the column's form.
            issue_id = str(uuid.UUID(str(row["issue_id"])))
            found.append({**row, "properties": properties, "issue_id": issue_id})
    return found


@dataclass
class Totals:
    occurrences: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None


def bulk_fill(db: Database, project_id: int, templates: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Issues, fingerprints with exact totals, and ``args.events`` events, in time order."""
    rnd = random.Random(7)
    now = utcnow()
    start = now - timedelta(days=args.days)
    issues = [uuid.uuid4() for _ in range(args.issues)]
    fingerprints = [hashlib.sha512(f"{BULK_PREFIX}{n}".encode()).hexdigest() for n in range(args.issues)]
    # A long tail, as real projects have: issue n gets a share proportional to 1 / (n + 1)^0.8.
    weights = [1 / (n + 1) ** 0.8 for n in range(args.issues)]
    totals = [Totals() for _ in range(args.issues)]
    step = (now - timedelta(minutes=5) - start) / args.events
    started = time.perf_counter()
    inserter = _sqlite_inserter if db.is_sqlite else _postgres_inserter
    with inserter(db) as write:
        done = 0
        while done < args.events:
            n = min(FILL_CHUNK, args.events - done)
            picks = rnd.choices(range(args.issues), weights=weights, k=n)
            rows = []
            for i, issue in enumerate(picks):
                moment = start + step * (done + i)
                total = totals[issue]
                total.occurrences += 1
                total.first_seen = total.first_seen or moment
                total.last_seen = moment
                template = templates[issue % len(templates)]
                properties = (
                    template["properties"]
                    .replace(template["fingerprint"], fingerprints[issue])
                    .replace(template["issue_id"], str(issues[issue]))
                )
                rows.append(
                    (
                        project_id,
                        uuid.uuid4(),
                        moment,
                        template["distinct_id"],
                        fingerprints[issue],
                        issues[issue],
                        template["library"],
                        template["search_text"],
                        properties,
                    )
                )
            write(rows)
            done += n
            print(f"\r  filled {done:,} events ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    with db.session(write=True) as session:
        session.execute(
            insert(Issue),
            [
                {"id": issue, "project_id": project_id, "status": "active", "name": f"BenchError{n}",
                 "description": "bench", "created_at": start}
                for n, issue in enumerate(issues)
            ],
        )  # fmt: skip
        session.execute(
            insert(IssueFingerprint),
            [
                {"id": uuid.uuid4(), "project_id": project_id, "issue_id": issue, "fingerprint": fp, "version": 0,
                 "first_seen": t.first_seen, "last_seen": t.last_seen, "occurrences": t.occurrences,
                 "created_at": start}
                for issue, fp, t in zip(issues, fingerprints, totals, strict=True)
            ],
        )  # fmt: skip
        session.commit()
    print(f"  {args.events:,} events, {args.issues:,} issues in {time.perf_counter() - started:.0f} s")


_COLUMNS = "project_id, uuid, timestamp, distinct_id, fingerprint, issue_id, library, search_text, properties"


@contextmanager
def _sqlite_inserter(db: Database) -> Iterator[Any]:
    # A connection of its own without the wait for the disk: a crash here only loses the bench.
    connection = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")

    def write(rows: list[tuple[Any, ...]]) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            f"INSERT INTO exception_event ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], r[1].hex, sqlite_datetime(r[2]), r[3], r[4], r[5].hex, *r[6:]) for r in rows],
        )
        connection.execute("COMMIT")

    try:
        yield write
    finally:
        connection.close()


@contextmanager
def _postgres_inserter(db: Database) -> Iterator[Any]:
    raw = db.engine.raw_connection()
    driver: Any = raw.driver_connection

    def write(rows: list[tuple[Any, ...]]) -> None:
        with driver.cursor() as cursor, cursor.copy(f"COPY exception_event ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        driver.commit()

    try:
        yield write
    finally:
        raw.close()


# --- measuring ------------------------------------------------------------------------------


class Feeder:
    """Keeps enough events queued for the next window (one per request, as pipeline_bench
    queues them); filling happens between windows. One body factory throughout: each event
    gets a uuid of its own (the pipeline stores a uuid once)."""

    def __init__(self, db: Database, project_id: int, token: str, stream: int = 1) -> None:
        self.db, self.project_id = db, project_id
        self.bodies = BodyFactory(body_template(token, 1), stream=stream)
        self.waiting = 0

    def top_up(self, events: int) -> None:
        if self.waiting >= events:
            return
        more = events - self.waiting + (10_000 if events > TEMPLATE_EVENTS else 0)
        requests: list[NewRequest] = []
        for _ in range(more):
            body = orjson.loads(self.bodies.next_body())
            requests.append(
                NewRequest(
                    project_id=self.project_id,
                    received_at=utcnow(),
                    sent_at=body["sent_at"],
                    payload=orjson.dumps(body["batch"]),
                    event_count=len(body["batch"]),
                )
            )
            if len(requests) >= 1000:
                enqueue(self.db, requests)
                requests = []
        enqueue(self.db, requests)
        self.waiting += more


def window(worker: Worker, feeder: Feeder, label: str, seconds: float, tick: Any = None) -> tuple[Phase, Any]:
    """The worker's loop for ``seconds``: ``tick()`` (retention's step, if due) before each
    batch, as ``Worker.run_forever`` does; returns what the pass deleted if it ended."""
    started = time.perf_counter()
    stored, ended = 0, None
    while time.perf_counter() - started < seconds:
        if tick is not None and ended is None:
            ended = tick()
        result = worker.run_once()
        feeder.waiting -= result.events
        if not result.requests:
            print(f"  ({label}: the queue ran dry)")
            break
        stored += result.stored
    return Phase(label, stored, time.perf_counter() - started), ended


def separate_retention(url: str, batch_size: int, busy_share: float, go: Any, results: Any) -> None:
    """The other process: one retention pass, paced, taking steps while ``go`` is set."""
    db = Database(make_engine(url, reprocessable=True))  # as trapline worker
    retention = Retention(db, RetentionOptions(batch_size=batch_size), busy_share=busy_share)
    while True:
        go.wait()
        purged = retention.tick()
        if purged is not None:
            results.put(asdict(purged))
            break
        time.sleep(0.005)
    db.dispose()


def issue_totals(db: Database) -> tuple[Any, ...]:
    with db.engine.connect() as connection:
        # The filled issues' fingerprints (the worker's events make issues of their own).
        row = connection.execute(
            text(
                "SELECT count(*), sum(f.occurrences), min(f.first_seen), max(f.last_seen) FROM issue_fingerprint f "
                "JOIN issue i ON i.id = f.issue_id WHERE i.description = 'bench'"
            )
        ).one()
    return tuple(row)


def count_before(db: Database, cutoff: datetime) -> int:
    with db.engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM exception_event WHERE timestamp < :c"), {"c": cutoff})
        return int(found.scalar() or 0)


def database_bytes(db: Database) -> int:
    """The database file's size after a checkpoint (SQLite), or the database's (PostgreSQL)."""
    if db.is_sqlite:
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.commit()
        return Path(db.engine.url.database or "").stat().st_size
    with db.engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)


def space_check(db: Database, project_id: int, args: argparse.Namespace) -> tuple[int, int, Any, float]:
    """With the worker stopped (so no new event takes the freed pages), a second pass keeping
    ``--space_days`` days, unpaced: how much smaller the SQLite file gets."""
    before = database_bytes(db)
    with db.session(write=True) as session:
        session.add(ErrorTrackingSettings(project_id=project_id, retention_days=args.space_days))
        session.commit()
    started = time.perf_counter()
    purged = Retention(db, RetentionOptions(batch_size=args.batch_size)).run(paced=False)
    return before, database_bytes(db), purged, time.perf_counter() - started


def mb(n: float) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="stored events to start with")
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=120, help="the stored events span this many days, up to now")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per measurement window")
    parser.add_argument("--pairs", type=int, default=0, help="stop measuring after this many pairs (default: never)")
    parser.add_argument("--separate", action="store_true", help="run retention in another process")
    parser.add_argument("--batch-size", type=int, default=2000, help="TRAPLINE_RETENTION_BATCH_SIZE")
    parser.add_argument("--busy-share", type=float, default=BUSY_SHARE, help="retention's share of the time")
    parser.add_argument("--database", help="a PostgreSQL URL to make a fresh database on (default: an SQLite file)")
    parser.add_argument(
        "--space-days",
        type=int,
        default=30,
        help="then keep this many days, worker stopped (SQLite; 0: skip)",
    )
    parser.add_argument("--keep", type=Path, help="make the SQLite database in this folder and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.database:
            url, name = fresh_postgres(args.database)
        else:
            url, name = f"sqlite:///{folder / 'retention-bench.db'}", ""
        try:
            run(url, args)
        finally:
            if name:
                drop_postgres(args.database, name)


def run(url: str, args: argparse.Namespace) -> None:
    db = Database(make_engine(url, reprocessable=True))  # as trapline worker
    migrate.upgrade(db.engine)
    backend = "SQLite" if db.is_sqlite else "PostgreSQL"
    where = "in another process" if args.separate else "in the worker's loop"
    print(f"retention bench, {backend}: {args.events:,} events over {args.days} days, {args.issues:,} issues; "
          f"retention {where}, busy share {args.busy_share:.2f}, batches of {args.batch_size:,}")  # fmt: skip
    if db.is_sqlite:
        print(f"  auto_vacuum: {vacuum.auto_vacuum_mode(db.engine)}")
    with db.session(write=True) as session:
        created = bootstrap(
            session, email="b@example.com", password="bench-pw-1", organization="B", project="B", key_label="b"
        )
    templates = template_rows(db, created.project_id, created.project_api_token)
    bulk_fill(db, created.project_id, templates, args)
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
    feeder = Feeder(db, created.project_id, created.project_api_token)

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)  # as trapline worker does
    worker = Worker(db, WorkerOptions())
    feeder.top_up(20_000)
    warm, _ = window(worker, feeder, "warm-up", 3.0)
    need = int(warm.rate * args.window * 1.5)

    totals_before = issue_totals(db)
    cutoff = utcnow() - timedelta(days=RetentionOptions().days)
    expired = count_before(db, cutoff)
    size_before = database_bytes(db)
    options = RetentionOptions(batch_size=args.batch_size)
    retention = Retention(db, options, busy_share=args.busy_share)
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    child = None
    if args.separate:
        child = context.Process(target=separate_retention, args=(url, args.batch_size, args.busy_share, go, results))
        child.start()
    alone: list[Phase] = []
    during: list[Phase] = []
    purged: Any = None
    retention_started = time.perf_counter()
    running = 0.0  # seconds retention was let run
    try:
        while purged is None and not (args.pairs and len(during) >= args.pairs):
            feeder.top_up(need)
            phase, _ = window(worker, feeder, "alone", args.window)
            alone.append(phase)
            feeder.top_up(need)
            go.set()
            phase, ended = window(worker, feeder, "with retention", args.window, None if child else retention.tick)
            go.clear()
            during.append(phase)
            running += phase.seconds
            if child is not None and not results.empty():
                ended = results.get()
            purged = asdict(ended) if isinstance(ended, Purged) else ended
            n = len(during)
            print(f"  pair {n}: alone {alone[-1].rate:,.0f} events/s, with retention {phase.rate:,.0f} "
                  f"({phase.rate / alone[-1].rate:.2f})", flush=True)  # fmt: skip
        feeder.top_up(need)
        phase, _ = window(worker, feeder, "alone", args.window)
        alone.append(phase)
        finished_alone = 0.0
        if purged is None:
            print("  measuring stopped; the pass finishes without the worker")
            started = time.perf_counter()
            if child is not None:
                go.set()
                purged = results.get(timeout=24 * 3600)
            else:
                purged = asdict(retention.run())
            finished_alone = time.perf_counter() - started
    finally:
        if child is not None:
            go.set()
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join()
    elapsed = time.perf_counter() - retention_started
    size_after = database_bytes(db)
    totals_after = issue_totals(db)
    left = count_before(db, cutoff)
    stored_meanwhile = sum(p.stored for p in alone + during)
    space = space_check(db, created.project_id, args) if db.is_sqlite and args.space_days else None
    db.dispose()

    alone_rate = sum(p.stored for p in alone) / sum(p.seconds for p in alone)
    during_rate = sum(p.stored for p in during) / sum(p.seconds for p in during)
    ratio = during_rate / alone_rate
    pair_ratios = sorted(d.rate / ((a.rate + b.rate) / 2) for a, d, b in zip(alone, during, alone[1:], strict=False))
    median = pair_ratios[len(pair_ratios) // 2]
    verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print()
    print(f"ingestion: alone {alone_rate:,.0f} events/s, with retention {during_rate:,.0f} events/s: ratio {ratio:.2f} "
          f"({verdict}, target ≥ {TARGET_RATIO:.2f}); median of {len(pair_ratios)} windows against the windows "
          f"either side: {median:.2f}")  # fmt: skip
    print(f"retention: the pass ran {running + finished_alone:.0f} s ({running:.0f} s beside the worker"
          f"{f', {finished_alone:.0f} s alone' if finished_alone else ''}; {elapsed:.0f} s of wall time with the "
          f"alone windows) for {purged['events_expired']:,} expired events "
          f"(of {expired:,} older than {options.days} days; {left:,} left)")  # fmt: skip
    print(f"  deleted: {', '.join(f'{k} {v:,}' for k, v in purged.items() if v)}")
    same = "unchanged" if totals_before == totals_after else f"CHANGED: {totals_before} → {totals_after}"
    print(f"issue totals of the {totals_before[0]:,} filled fingerprints ({totals_before[1]:,} occurrences, "
          f"first and last seen): {same}")  # fmt: skip
    meanwhile = f"the worker stored {stored_meanwhile:,} events meanwhile"
    if size_before and args.database:
        print(f"database: {mb(size_before)} before, {mb(size_after)} after ({meanwhile}; autovacuum makes the "
              f"deleted rows' space reusable)")  # fmt: skip
        return
    freed = purged.get("bytes_freed", 0)
    print(f"database: {mb(size_before)} before, {mb(size_after)} after ({meanwhile}; the incremental vacuum gave "
          f"{mb(freed)} back, the rest of the freed pages held the new events)")  # fmt: skip
    if space is not None:
        before, after, second, seconds = space
        print(f"then, the worker stopped, a pass keeping {args.space_days} days (unpaced): "
              f"{second.events_expired:,} events deleted in {seconds:.0f} s, {mb(second.bytes_freed)} given back; "
              f"the file went from {mb(before)} to {mb(after)}")  # fmt: skip


if __name__ == "__main__":
    main()
