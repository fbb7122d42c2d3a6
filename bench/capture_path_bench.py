"""The event loop's work per capture request, measured in process: no sockets, no load generator.

    .venv/bin/python bench/capture_path_bench.py [--connections 64] [--rounds 100] [--opcodes]

Builds the application on a fresh SQLite data dir as ``trapline serve`` does, hands
posthog-python-shaped capture requests straight to the server's HTTP protocol
(``http_protocol.HttpProtocol``, one instance per connection, a request on each at a time) and
waits for their answers, which come once the spool has made the requests durable, as in the
server. Prints the CPU time per request of the event loop's thread and of the whole process (the
spool's threads besides). ``make bench`` measures the server whole; this isolates what the
loop's thread spends, the share that competes with everything else for Python's lock.

The machine's speed here varies from minute to minute by half or more, so CPU times of two
runs compare poorly. ``--opcodes`` counts the Python bytecodes each function of the loop's
thread runs per request instead: the same count every run, moving only when the code does.
(For instructions of C code too, run it under ``valgrind --tool=callgrind``.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from events import BodyFactory, body_template  # noqa: E402
from ingest_bench import bootstrap, trapline_env  # noqa: E402

_HEAD = b"POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
_HEAD += b"User-Agent: posthog-python/7.91.1\r\nContent-Length: %d\r\n\r\n"


class _Transport:
    """What the protocol writes to: counts answers, fails on anything but a 200."""

    def __init__(self, answered: Callable[[bytes], None]) -> None:
        self.write = answered
        self._closing = False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class Rig:
    """The application, its protocol on ``connections`` fake connections, and a pool of bodies."""

    def __init__(self, connections: int) -> None:
        self.data_dir = data_dir = Path(tempfile.mkdtemp(prefix="trapline-capture-path-"))
        env = trapline_env(data_dir, 8000, 0)
        creds = bootstrap(str(Path(sys.executable).parent / "trapline"), env)
        os.environ.update(env)
        factory = BodyFactory(body_template(creds["project_api_token"], 1), 1)
        # Bodies are built ahead: building them costs more than capture does.
        self.bodies = itertools.cycle([_HEAD % len(body) + body for body in (factory.next_body() for _ in range(2048))])
        self.connections = connections
        self.answered = 0
        self._target = 0
        self._all_answered = asyncio.Event()

    async def start(self) -> None:
        import uvicorn
        from uvicorn.server import ServerState

        from trapline.app import create_app
        from trapline.cli import _database
        from trapline.db import migrate
        from trapline.http_protocol import HttpProtocol
        from trapline.settings import load_settings

        settings = load_settings()
        db = _database(settings)
        migrate.upgrade(db.engine)
        self.app = create_app(settings, db)
        await self.app.capture.spool.start()
        protocol = HttpProtocol.answering(self.app.capture, self.app.sentry)
        config = uvicorn.Config(self.app, http=protocol, log_config=None, access_log=False, server_header=False)
        config.load()
        state, loop = ServerState(), asyncio.get_running_loop()
        self.protocols = [
            protocol(config=config, server_state=state, app_state={}, _loop=loop) for _ in range(self.connections)
        ]
        for each in self.protocols:
            each.connection_made(_Transport(self._on_answer))  # type: ignore[arg-type]

    async def stop(self) -> None:
        await self.app.capture.spool.stop()
        self.app.state.db.dispose()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _on_answer(self, data: bytes) -> None:
        if not data.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"not answered 200: {data[:300]!r}")
        self.answered += 1
        if self.answered >= self._target:
            self._all_answered.set()

    async def rounds(self, count: int) -> None:
        """``count`` times: a request on every connection, then wait for all their answers."""
        for _ in range(count):
            self._all_answered.clear()
            self._target = self.answered + len(self.protocols)
            for each in self.protocols:
                each.data_received(next(self.bodies))
            await self._all_answered.wait()


async def cpu_times(rig: Rig, rounds: int) -> None:
    loop_us: list[float] = []
    all_us: list[float] = []
    for _ in range(rounds):
        thread, process = time.thread_time(), time.process_time()
        await rig.rounds(4)
        requests = 4 * rig.connections
        loop_us.append((time.thread_time() - thread) / requests * 1e6)
        all_us.append((time.process_time() - process) / requests * 1e6)
    print(f"{rig.connections} connections, {rounds * 4 * rig.connections:,} requests, CPU time per request:")
    print(f"  event loop's thread   median {statistics.median(loop_us):6.1f} us   p25 {_quartile(loop_us):6.1f} us")
    print(f"  whole process         median {statistics.median(all_us):6.1f} us   p25 {_quartile(all_us):6.1f} us")


async def opcodes(rig: Rig, top: int) -> None:
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        where = code.co_filename.split("site-packages/")[-1].replace(str(ROOT / "src") + "/", "")
        key = f"{where}:{code.co_name}"

        def each(frame: FrameType, event: str, arg: object) -> Any:
            if event == "opcode":
                counts[key] += 1
            return each

        return each

    sys.settrace(trace)
    try:
        await rig.rounds(4)
    finally:
        sys.settrace(None)
    requests = 4 * rig.connections
    print(f"Python bytecodes the event loop's thread ran per request: {sum(counts.values()) / requests:,.0f}")
    for key, count in counts.most_common(top):
        if not key.startswith(__file__.rsplit("/", 1)[-1]):
            print(f"  {count / requests:7.1f}  {key}")


def _quartile(values: list[float]) -> float:
    return sorted(values)[len(values) // 4]


async def run(args: argparse.Namespace) -> None:
    rig = Rig(args.connections)
    await rig.start()
    try:
        await rig.rounds(50)  # warm: caches of tokens, controls, the queue's pages
        import gc

        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)  # as `trapline serve` (cli._tune_gc)
        if args.opcodes:
            await opcodes(rig, args.top)
        else:
            await cpu_times(rig, args.rounds)
    finally:
        await rig.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds of 4 requests per connection")
    parser.add_argument("--opcodes", action="store_true", help="count bytecodes per function instead of CPU time")
    parser.add_argument("--top", type=int, default=25, help="functions listed with --opcodes")
    uvloop.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
