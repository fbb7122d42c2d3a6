"""End-to-end ingest benchmark: accept rate, processing rate and memory of `trapline serve` on SQLite.

    make bench                      # or: .venv/bin/python bench/ingest_bench.py [options]
    .venv/bin/python bench/ingest_bench.py --workers 0 --worker-processes 2

For each mode (one event per request, then 50 per request) it measures:

* the floor: a bare ASGI app (bench/bare_asgi.py) on uvicorn with Trapline's options, driven by
  the same load generator with the same bodies, so that accept/floor is Trapline's own cost;
* accept: requests answered 200 by a fresh `trapline serve` (each 200 means durably queued);
* end-to-end: events stored in exception_event per second, from the start of the load until
  the ingest queue is drained (or, past --drain-timeout, the sustained rate so far);
* the server's peak RSS (VmHWM) and CPU time.

Figures are printed next to their targets; nothing is asserted, since timings depend on the
machine. Every process started here is stopped on exit, including Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from events import KINDS, BodyFactory, BodyTemplate, body_template, sentry_body_template
from load import Loader, LoadResult, pick_loader

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Mode → events per request; "sentry" posts one sentry-sdk envelope per request.
MODES = {"single": 1, "batch": 50, "sentry": 1}


FLOOR_CREDS = {"project_api_token": "phc_floor", "project_id": "1", "sentry_dsn": "http://floor@127.0.0.1/1"}


def template_for(mode: str, creds: dict[str, str]) -> BodyTemplate:
    if mode == "sentry":
        key = urlsplit(creds["sentry_dsn"]).username or ""
        return sentry_body_template(int(creds["project_id"]), key)
    return body_template(creds["project_api_token"], MODES[mode])


# Targets from the performance brief; printed next to the figures, never enforced.
TARGET_ACCEPT_SHARE = 1 / 3
TARGET_E2E_EVENTS = 7700  # issue 14: a hundred times Bugsink's 77 events/s
TARGET_RSS_MB = 300
BOOTSTRAP_ARGS = ("--email", "bench@example.com", "--password", "bench-pw-1", "--organization", "B", "--project", "B")
# Counting parked rows reads every row's overflow pages (failed_at comes after the payload):
# done only once the queue is short.
PARKED_COUNT_LIMIT = 10_000
# A load generator using this share of its threads' CPU is the bottleneck, not the server.
LOADER_BOUND_SHARE = 0.9
PY_SPY_OPTIONS = ("--rate", "200", "--threads", "--nonblocking", "--format", "raw")


@dataclass
class Options:
    duration: float
    connections: int
    threads: int
    workers: int
    worker_processes: int
    worker_threads: int
    drain_timeout: float
    modes: list[str]
    floor: bool
    python_loader: bool
    py_spy: Path | None
    py_spy_gil: bool
    keep: Path | None
    trapline: str
    settings: dict[str, str]

    @property
    def processing(self) -> bool:
        """Whether anything drains the queue: without workers only the accept rate is measured."""
        return self.workers > 0 or self.worker_processes > 0


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Trapline ingest benchmark (SQLite).")
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per run (default 15)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="load generator threads/processes (default 1)")
    parser.add_argument(
        "--workers", type=int, default=1, help="TRAPLINE_WORKERS: worker processes `trapline serve` starts"
    )
    parser.add_argument(
        "--worker-processes", type=int, default=0, help="separate `trapline worker` processes (default 0)"
    )
    parser.add_argument("--worker-threads", type=int, default=1, help="--threads of each `trapline worker`")
    parser.add_argument("--drain-timeout", type=float, default=25, help="seconds to wait for the queue to drain")
    parser.add_argument(
        "--modes", default="single,batch,sentry", help="comma-separated: single, batch, sentry (default all three)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare ASGI floor runs")
    parser.add_argument("--python-loader", action="store_true", help="use the Python load generator even with wrk")
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="record py-spy profiles (collapsed stacks) of the server under load"
    )
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="with --py-spy: sample only the thread holding the GIL"
    )
    parser.add_argument(
        "--trapline",
        default=str(BIN / "trapline"),
        metavar="PATH",
        help="the trapline command to benchmark (default: the one next to this Python), e.g. another checkout's",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep data dirs and logs in DIR instead of a temp dir")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Trapline setting for the server and workers, e.g. TRAPLINE_WORKER_BATCH_SIZE=500 (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set if "=" in item)
    if len(settings) != len(args.set) or not all(name.startswith("TRAPLINE_") for name in settings):
        parser.error("--set takes TRAPLINE_NAME=VALUE")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    return Options(
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        workers=args.workers,
        worker_processes=args.worker_processes,
        worker_threads=args.worker_threads,
        drain_timeout=args.drain_timeout,
        modes=modes,
        floor=not args.no_floor,
        python_loader=args.python_loader,
        py_spy=args.py_spy,
        py_spy_gil=args.py_spy_gil,
        keep=args.keep,
        trapline=args.trapline,
        settings=settings,
    )


# --- processes ------------------------------------------------------------------------------


class Processes:
    """Every child started here, stopped (TERM, then KILL) when the block is left for any reason."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            # Own session: a Ctrl-C in the terminal reaches us only, and we stop children in order.
            child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes], grace: float = 15) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            self.stop(child)


@contextmanager
def processes() -> Iterator[Processes]:
    group = Processes()
    try:
        yield group
    finally:
        # A second Ctrl-C while children are being stopped must not leave the rest running.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            group.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, child: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{child.args!r} exited with {child.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    stored: int
    queued: int


class Watch:
    """Polls the database (read-only) and the memory of every process of the deployment (the
    server, the worker processes it started and any started beside it) while a run goes on."""

    def __init__(
        self, db_path: Path, queue_path: Path, pid: int, other_pids: Sequence[int] = (), interval: float = 0.2
    ) -> None:
        self.pid = pid
        self.other_pids = list(other_pids)
        self.interval = interval
        self.samples: list[Sample] = []
        self.max_rss_kb = 0
        # The largest sum of every process's RSS seen at one sample, and every pid seen.
        self.max_total_rss_kb = 0
        self.pids: set[int] = {pid, *other_pids}
        self._db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        self._queue = (
            sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True, check_same_thread=False)
            if queue_path != db_path
            else self._db
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._queue.close()
        self._db.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> Sample:
        # max(rowid) and count(*) read b-tree pages only, never the payloads' overflow pages.
        with self._lock:
            stored = self._db.execute("SELECT coalesce(max(id), 0) FROM exception_event").fetchone()[0]
            queued = self._queue.execute("SELECT count(*) FROM ingest_queue").fetchone()[0]
            sample = Sample(time.monotonic(), stored, queued)
            self.samples.append(sample)
            self.max_rss_kb = max(self.max_rss_kb, proc_status_kb(self.pid, "VmRSS"))
            pids = self.deployment_pids()
            self.pids.update(pids)
            self.max_total_rss_kb = max(self.max_total_rss_kb, sum(proc_status_kb(p, "VmRSS") for p in pids))
        return sample

    def deployment_pids(self) -> list[int]:
        """The server, its descendants (``trapline serve`` starts its workers as processes) and
        the worker processes started beside it."""
        return [*descendants(self.pid), *self.other_pids]

    def parked(self) -> int:
        with self._lock:
            row = self._queue.execute("SELECT count(*) FROM ingest_queue WHERE failed_at IS NOT NULL").fetchone()
        return int(row[0])

    def drained(self) -> bool:
        """Nothing left but parked requests (which no worker retries on its own)."""
        queued = self.sample().queued
        return queued == 0 or (queued < PARKED_COUNT_LIMIT and queued == self.parked())


def proc_status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorRun:
    load: LoadResult
    server_cpu: float
    loader_cpu: float


@dataclass(frozen=True)
class TraplineRun:
    load: LoadResult
    events_per_request: int
    stored: int
    stored_during_load: int
    queued_at_load_end: int
    processing_seconds: float
    drained: bool
    left_in_queue: int
    parked: int | None
    processing: bool
    issues: int | None
    hwm_mb: float
    max_rss_mb: float
    # Every process of the deployment: the peak of the summed RSS (sampled) and each one's VmHWM.
    total_max_rss_mb: float
    total_hwm_mb: float
    all_cpu: float
    server_cpu: float
    loader_cpu: float
    worker_hwm_mb: list[float]


def run_floor(opts: Options, loader: Loader, group: Processes, workdir: Path) -> dict[str, FloorRun]:
    port = free_port()
    log = workdir / "bare_asgi.log"
    child = group.start(
        [sys.executable, str(ROOT / "bench" / "bare_asgi.py"), "--port", str(port)], env=dict(os.environ), log=log
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", child, log)
    results = {}
    try:
        for mode in opts.modes:
            template = template_for(mode, FLOOR_CREDS)
            cpu0, lcpu0 = proc_cpu_seconds(child.pid), children_cpu_seconds()
            load = loader.run(url, template.path, template, workdir)
            results[mode] = FloorRun(load, proc_cpu_seconds(child.pid) - cpu0, children_cpu_seconds() - lcpu0)
    finally:
        group.stop(child)
    return results


def trapline_env(data_dir: Path, port: int, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAPLINE_")}
    env.update(
        TRAPLINE_DATA_DIR=str(data_dir),
        TRAPLINE_PORT=str(port),
        TRAPLINE_HOST="127.0.0.1",
        TRAPLINE_WORKERS=str(workers),
        TRAPLINE_LOG_LEVEL="warning",
    )
    return env


def bootstrap(trapline: str, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [trapline, "bootstrap", "--json", *BOOTSTRAP_ARGS],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"trapline bootstrap failed ({out.returncode}): {out.stderr.strip()}")
    result: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def queue_file(data_dir: Path) -> Path:
    """The SQLite file the ingest queue is in: its own, beside the database (or, for a
    ``--trapline`` from before the queue had one, the database itself)."""
    own = data_dir / "trapline.queue.db"
    return own if own.exists() else data_dir / "trapline.db"


@dataclass(frozen=True)
class Deployment:
    """One fresh `trapline serve` (plus worker processes) and what it takes to talk to it."""

    url: str
    creds: dict[str, str]
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    db_path: Path
    queue_path: Path


def run_trapline(opts: Options, mode: str, loader: Loader, group: Processes, workdir: Path) -> TraplineRun:
    data_dir = workdir / f"data-{mode}"
    port = free_port()
    in_process = opts.workers if opts.worker_processes == 0 else 0
    env = {**trapline_env(data_dir, port, in_process), **opts.settings}
    creds = bootstrap(opts.trapline, env)
    log = workdir / f"serve-{mode}.log"
    server = group.start([opts.trapline, "serve"], env=env, log=log)
    workers = [
        group.start([opts.trapline, "worker", "--threads", str(opts.worker_threads)], env=env, log=log)
        for _ in range(opts.worker_processes)
    ]
    db_path = data_dir / "trapline.db"
    deployment = Deployment(f"http://127.0.0.1:{port}", creds, server, workers, db_path, queue_file(data_dir))
    try:
        wait_http(deployment.url + "/_health", server, log)
        template = template_for(mode, creds)
        warm_up(deployment, template, log, processed=opts.processing)
        return _measure(opts, loader, template, deployment, workdir, group, mode)
    finally:
        for child in (*workers, server):
            group.stop(child)


def warm_up(deployment: Deployment, template: BodyTemplate, log: Path, *, processed: bool, timeout: float = 30) -> None:
    """One request through the whole pipeline: checks the setup and fills caches before timing."""
    body = BodyFactory(template, stream=0xFFFF).next_body()
    request = urllib.request.Request(
        deployment.url + template.path,
        data=body,
        headers={"Content-Type": "application/json", **dict(template.headers)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise RuntimeError(f"warm-up request answered {response.status}")
    if not processed:
        return
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(f"file:{deployment.queue_path}?mode=ro", uri=True)
    try:
        while time.monotonic() < deadline:
            if db.execute("SELECT count(*) FROM ingest_queue").fetchone()[0] == 0:
                return
            time.sleep(0.1)
    finally:
        db.close()
    raise RuntimeError(f"the warm-up event was not processed within {timeout:g} s:\n{_tail(log)}")


def _measure(
    opts: Options,
    loader: Loader,
    template: BodyTemplate,
    deployment: Deployment,
    workdir: Path,
    group: Processes,
    mode: str,
) -> TraplineRun:
    server = deployment.server
    cpu0 = proc_cpu_seconds(server.pid)
    with Watch(deployment.db_path, deployment.queue_path, server.pid, [w.pid for w in deployment.workers]) as watch:
        all_cpu0 = {pid: proc_cpu_seconds(pid) for pid in watch.deployment_pids()}
        base = watch.samples[0].stored
        profilers = start_profilers(opts, group, mode, server, deployment.workers)
        lcpu0 = children_cpu_seconds()
        start = time.monotonic()
        load = loader.run(deployment.url, template.path, template, workdir)
        at_load_end = watch.sample()
        # Before waiting for py-spy: reaped children count in RUSAGE_CHILDREN, and it is no load generator.
        loader_cpu = children_cpu_seconds() - lcpu0
        for profiler in profilers:
            profiler.wait()
        drained = wait_drained(watch, opts.drain_timeout if opts.processing else 0)
        last = watch.samples[-1]
        parked = watch.parked() if last.queued < PARKED_COUNT_LIMIT else None
        end = _first_drained_at(watch.samples, at_load_end.at, parked or 0) if drained else last.at
        hwm = proc_status_kb(server.pid, "VmHWM")
        server_cpu = proc_cpu_seconds(server.pid) - cpu0
        max_rss = watch.max_rss_kb
        all_pids = watch.deployment_pids()
        all_cpu = sum(proc_cpu_seconds(pid) - all_cpu0.get(pid, 0.0) for pid in all_pids)
        total_hwm = sum(proc_status_kb(pid, "VmHWM") for pid in all_pids)
        total_max_rss = watch.max_total_rss_kb
    return TraplineRun(
        load=load,
        events_per_request=template.events_per_request,
        stored=last.stored - base,
        stored_during_load=at_load_end.stored - base,
        queued_at_load_end=at_load_end.queued,
        processing_seconds=end - start,
        drained=drained,
        left_in_queue=last.queued,
        parked=parked,
        processing=opts.processing,
        issues=count_issues(deployment),
        hwm_mb=hwm / 1024,
        max_rss_mb=max_rss / 1024,
        total_max_rss_mb=total_max_rss / 1024,
        total_hwm_mb=total_hwm / 1024,
        all_cpu=all_cpu,
        server_cpu=server_cpu,
        loader_cpu=loader_cpu,
        worker_hwm_mb=[proc_status_kb(w.pid, "VmHWM") / 1024 for w in deployment.workers],
    )


def start_profilers(
    opts: Options, group: Processes, mode: str, server: subprocess.Popen[bytes], workers: list[subprocess.Popen[bytes]]
) -> list[subprocess.Popen[bytes]]:
    """py-spy on the server (and each worker process) for the length of the load."""
    if opts.py_spy is None:
        return []
    py_spy = shutil.which("py-spy", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        raise RuntimeError("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    opts.py_spy.mkdir(parents=True, exist_ok=True)
    seconds = max(1, int(opts.duration) - 1)
    out = opts.py_spy
    extra = ["--gil"] if opts.py_spy_gil else []
    targets = [(f"serve-{mode}.txt", server), *((f"worker-{mode}-{n}.txt", w) for n, w in enumerate(workers))]
    # --nonblocking: sampling without pausing the process keeps the profiled rates close to the real ones.
    return [
        group.start(
            [
                py_spy,
                "record",
                "--pid",
                str(child.pid),
                "-d",
                str(seconds),
                *PY_SPY_OPTIONS,
                *extra,
                "-o",
                str(out / name),
            ],
            env=dict(os.environ),
            log=out / f"{name}.log",
        )
        for name, child in targets
    ]


def wait_drained(watch: Watch, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if watch.drained():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _first_drained_at(samples: list[Sample], after: float, parked: int) -> float:
    for sample in samples:
        if sample.at >= after and sample.queued <= parked:
            return sample.at
    return samples[-1].at


def count_issues(deployment: Deployment) -> int | None:
    """Issues the run created, through the REST API (20 expected: one per exception kind)."""
    creds = deployment.creds
    request = urllib.request.Request(
        f"{deployment.url}/api/projects/{creds['project_id']}/error_tracking/issues/?limit=1",
        headers={"Authorization": f"Bearer {creds['personal_api_key']}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            count: int = json.load(response)["count"]
            return count
    except (OSError, ValueError, KeyError):
        return None


# --- report ---------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "BELOW target"


def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def machine_speed() -> float:
    """Seconds of CPU for a fixed pure-Python loop: the development machine's speed drifts by
    half within a session, and every figure (the floor too) moves with it."""
    started = time.process_time()
    total = 0
    for number in range(10_000_000):
        total += number
    return time.process_time() - started


def print_header(opts: Options, loader: Loader) -> None:
    where = (
        f"TRAPLINE_WORKERS={opts.workers} (worker processes started by serve)"
        if opts.worker_processes == 0
        else f"TRAPLINE_WORKERS=0 + {opts.worker_processes} `trapline worker --threads {opts.worker_threads}`"
    )
    print("Trapline ingest benchmark (SQLite; capture syncs each commit before answering)")
    print(f"  load generator: {loader.name}, {opts.threads} thread(s), {opts.connections} connections")
    print(f"  {opts.duration:g} s of load per run; {where}; {os.cpu_count()} CPUs")
    print(f"  machine speed now: {machine_speed():.2f} s of CPU for a Python loop of 10,000,000 additions")
    print(
        f"  bodies: posthog-python 7.91.1 $exception events, {len(KINDS)} exception kinds, plain JSON to /batch/;"
        " sentry: one sentry-sdk 2.75.0 envelope per request to /api/<id>/envelope/"
    )
    sys.stdout.flush()


def print_mode(mode: str, floor: FloorRun | None, run: TraplineRun, loader_threads: int) -> None:
    n = run.events_per_request
    load = run.load
    accept_rps = _rate(load.requests_ok, load.seconds)
    print(f"\n== {mode}: {n} event(s) per request")
    if floor is not None:
        f = floor.load
        floor_rps = _rate(f.requests_ok, f.seconds)
        print(
            f"  floor (bare ASGI)   {floor_rps:9,.0f} req/s {floor_rps * n:10,.0f} events/s   non-200: {f.not_ok}"
            f"{_latency(f)}   server CPU {_rate(floor.server_cpu, f.seconds):.2f} cores,"
            f" load generator {_rate(floor.loader_cpu, f.seconds):.2f} cores"
        )
        if _rate(floor.loader_cpu, f.seconds) >= LOADER_BOUND_SHARE * loader_threads:
            print("    (the load generator used all of its CPU, so this floor is a lower bound)")
    print(
        f"  accept (trapline)   {accept_rps:9,.0f} req/s {accept_rps * n:10,.0f} events/s   non-200: {load.not_ok}"
        f"{_latency(load)}   load generator {_rate(run.loader_cpu, load.seconds):.2f} cores"
    )
    if floor is not None and floor.load.requests_ok:
        share = accept_rps / _rate(floor.load.requests_ok, floor.load.seconds)
        verdict = _verdict(share >= TARGET_ACCEPT_SHARE)
        print(f"  accept / floor      {share:9.2f}   target >= {TARGET_ACCEPT_SHARE:.2f} ({verdict})")
    if run.processing:
        _print_processing(run)
    else:
        print(f"  end-to-end          not measured: no workers; {run.left_in_queue:,} requests left queued")
    print(f"  server RSS          peak {run.hwm_mb:6.0f} MB (VmHWM), max sampled {run.max_rss_mb:.0f} MB")
    print(
        f"  all processes RSS   peak {run.total_max_rss_mb:6.0f} MB (sum sampled),"
        f" sum of VmHWM {run.total_hwm_mb:.0f} MB"
        f"   target < {TARGET_RSS_MB} MB ({_verdict(run.total_hwm_mb < TARGET_RSS_MB)})"
    )
    total = max(load.seconds, run.processing_seconds)
    print(
        f"  server CPU          {_rate(run.server_cpu, total):9.2f} cores on average over load + drain"
        f" (all processes {_rate(run.all_cpu, total):.2f})"
    )
    if run.worker_hwm_mb:
        print(f"  worker processes    peak RSS {', '.join(f'{mb:.0f} MB' for mb in run.worker_hwm_mb)}")
    sys.stdout.flush()


def _print_processing(run: TraplineRun) -> None:
    e2e = _rate(run.stored, run.processing_seconds)
    if run.drained:
        how = "queue drained"
    else:
        how = f"NOT drained within --drain-timeout: {run.left_in_queue:,} requests left, rate so far"
    print(
        f"  end-to-end          {e2e:9,.0f} events/s: {run.stored:,} events stored in {run.processing_seconds:.1f} s"
        f" ({how})   target >= {TARGET_E2E_EVENTS:,} ({_verdict(e2e >= TARGET_E2E_EVENTS)})"
    )
    parked = "?" if run.parked is None else str(run.parked)
    print(
        f"    during the load   {_rate(run.stored_during_load, run.load.seconds):9,.0f} events/s stored;"
        f" {run.queued_at_load_end:,} requests queued when the load stopped;"
        f" parked {parked}; issues {run.issues if run.issues is not None else '?'}"
    )


def _latency(load: LoadResult) -> str:
    if load.p50_ms is None or load.p99_ms is None:
        return ""
    return f"   latency p50 {load.p50_ms:.1f} ms p99 {load.p99_ms:.1f} ms"


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="trapline-bench-") as tmp:
            yield Path(tmp)
        return
    keep.mkdir(parents=True, exist_ok=True)
    # Each run's data dir must start empty; only the logs of earlier runs may be appended to.
    work = Path(tempfile.mkdtemp(prefix="run-", dir=keep))
    print(f"  keeping data dirs and logs in {work}")
    yield work


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # SIGINT too: a shell that starts us in the background leaves it ignored, and then Ctrl-C or
    # kill -INT would stop only wrk, silently cutting a run short.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    loader = pick_loader(
        connections=opts.connections, threads=opts.threads, seconds=opts.duration, force_python=opts.python_loader
    )
    print_header(opts, loader)
    try:
        with _workdir(opts.keep) as workdir, processes() as group:
            floors = run_floor(opts, loader, group, workdir) if opts.floor else {}
            for mode in opts.modes:
                run = run_trapline(opts, mode, loader, group, workdir)
                print_mode(mode, floors.get(mode), run, opts.threads)
        print(f"\nmachine speed at the end: {machine_speed():.2f} s (see the header)")
    except KeyboardInterrupt:
        print("\ninterrupted; every process started by the benchmark has been stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"\nbench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
