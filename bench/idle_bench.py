"""What the server's idle worker gains and costs: how fast a backlog drains with no worker process,
and how long a request waits that arrives while the idle worker is processing.

    .venv/bin/python bench/idle_bench.py [--events 20000] [--probes 40]

For each setting of TRAPLINE_IDLE_WORKER (on, off) it starts `trapline serve` with no worker
processes on a fresh SQLite data dir and queues ``--events`` posthog-python exception events (50
a request). With the idle worker on, it times their processing while no request comes in (the
database is read from its file). Then it queues as many again and sends one single-event
request every 0.3 s (the server is quiet in between, so with the idle worker on each lands
among its batches), and prints their latency. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
from events import BodyFactory, body_template
from ingest_bench import bootstrap, free_port, processes, trapline_env, wait_http

BIN = Path(sys.executable).parent
PROBE_EVERY = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events queued before the probes (default 20,000)")
    parser.add_argument("--probes", type=int, default=40, help="single-event requests timed (default 40)")
    args = parser.parse_args()
    print(f"idle worker: {args.events:,} events queued, then {args.probes} requests {PROBE_EVERY} s apart")
    for setting in ("true", "false"):
        run(setting, args.events, args.probes)


def run(setting: str, events: int, probes: int) -> None:
    with tempfile.TemporaryDirectory() as temp, processes() as group:
        data_dir = Path(temp) / "data"
        port = free_port()
        # ingest_bench's: the caller's own TRAPLINE_ settings (a database URL) stay out of the server.
        env = {**trapline_env(data_dir, port, workers=0), "TRAPLINE_IDLE_WORKER": setting}
        token = bootstrap(str(BIN / "trapline"), env)["project_api_token"]
        url = f"http://127.0.0.1:{port}"
        log = Path(temp) / "serve.log"
        server = group.start([str(BIN / "trapline"), "serve"], env=env, log=log)
        wait_http(f"{url}/_health", server, log)
        batches = BodyFactory(body_template(token, 50), stream=1)
        singles = BodyFactory(body_template(token, 1), stream=2)
        database = data_dir / "trapline.db"
        with httpx.Client(base_url=url, headers={"Content-Type": "application/json"}, timeout=30) as client:

            def fill() -> None:
                for _ in range(events // 50):
                    assert client.post("/batch/", content=batches.next_body()).status_code == 200

            drain = ""
            if setting == "true":
                fill()
                started, before = time.monotonic(), stored(database)
                while stored(database) < before + events and time.monotonic() - started < 120:
                    time.sleep(0.05)  # read from the file: no request to the server
                drained = stored(database) - before
                drain = f"; a backlog of {drained:,} events drained at {drained / (time.monotonic() - started):,.0f}/s"
            fill()
            before = stored(database)
            latencies = []
            for _ in range(probes):
                time.sleep(PROBE_EVERY)
                sent = time.perf_counter()
                assert client.post("/batch/", content=singles.next_body()).status_code == 200
                latencies.append((time.perf_counter() - sent) * 1000)
            during = stored(database) - before
        group.stop(server)
    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(
        f"  TRAPLINE_IDLE_WORKER={setting:5}  request latency median {statistics.median(latencies):.1f} ms, "
        f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms ({during:,} events stored meanwhile){drain}"
    )


def stored(database: Path) -> int:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT count(*) FROM exception_event").fetchone()[0])


if __name__ == "__main__":
    main()
