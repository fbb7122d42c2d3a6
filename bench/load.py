"""Load generators for the ingest benchmark: wrk when installed, else a multi-process Python client.

Both send the bodies of ``events.BodyFactory`` (wrk rebuilds them in ``capture.lua`` from the
same template) over keep-alive connections for a fixed time and report what came back. The
Python client spends more CPU per request than wrk, and on a 2-core machine it takes that CPU
from the server: its figures are labelled so that they are read as lower bounds.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from events import DISTINCT_IDS, BodyFactory, BodyTemplate

__all__ = ["LoadResult", "Loader", "PythonLoader", "WrkLoader", "pick_loader"]

LUA_SCRIPT = Path(__file__).resolve().parent / "capture.lua"


@dataclass(frozen=True)
class LoadResult:
    seconds: float
    requests_ok: int  # answered exactly 200
    not_ok: int  # any other status, or a connection error / timeout
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Loader:
    """What every generator takes: where to send, how hard, for how long."""

    connections: int
    threads: int
    seconds: float
    name: str = ""

    def run(self, url: str, path: str, template: BodyTemplate, workdir: Path) -> LoadResult:
        raise NotImplementedError


def pick_loader(*, connections: int, threads: int, seconds: float, force_python: bool) -> Loader:
    if not force_python and shutil.which("wrk"):
        return WrkLoader(connections, threads, seconds, "wrk")
    return PythonLoader(connections, threads, seconds, "PYTHON FALLBACK (wrk not found; figures are lower bounds)")


# --- wrk ------------------------------------------------------------------------------------


class WrkLoader(Loader):
    def run(self, url: str, path: str, template: BodyTemplate, workdir: Path) -> LoadResult:
        data = workdir / f"bodies-{template.events_per_request}.lua"
        write_lua_data(data, template, path)
        command = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{self.seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            str(data),
        ]
        # Own session: wrk stops early on SIGINT and reports as if the run were complete, so a Ctrl-C
        # must reach only the benchmark, which then kills wrk and stops.
        out = subprocess.run(command, capture_output=True, text=True, check=False, start_new_session=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK-RESULT ")), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        raw = json.loads(line.removeprefix("WRK-RESULT "))
        errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
        return LoadResult(
            seconds=raw["duration_us"] / 1e6,
            requests_ok=raw["requests"] - raw["non200"],
            not_ok=raw["non200"] + errors,
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
        )


def write_lua_data(path: Path, template: BodyTemplate, url_path: str) -> None:
    """The body template as a Lua table literal, for capture.lua's init()."""
    events = ",\n".join(
        f"  {{ parts = {{ {', '.join(_lua_string(p) for p in t.parts)} }}, "
        f"slots = {{ {', '.join(_lua_string(s) for s in t.slots)} }} }}"
        for t in template.events
    )
    path.write_text(
        "return {\n"
        f"run = {_lua_string(os.urandom(4).hex())},\n"
        f"path = {_lua_string(url_path)},\n"
        f"prefix = {_lua_string(template.prefix)},\n"
        f"separator = {_lua_string(template.separator)},\n"
        f"suffix = {_lua_string(template.suffix)},\n"
        f"events_per_request = {template.events_per_request},\n"
        f"headers = {{ {', '.join(f'{{ {_lua_string(k)}, {_lua_string(v)} }}' for k, v in template.headers)} }},\n"
        f"distinct_ids = {DISTINCT_IDS},\n"
        f"events = {{\n{events}\n}},\n"
        "}\n"
    )


def _lua_string(text: str) -> str:
    # A long bracket takes JSON verbatim (no escapes); pick a level that cannot occur inside.
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


# --- Python fallback ------------------------------------------------------------------------


class PythonLoader(Loader):
    def run(self, url: str, path: str, template: BodyTemplate, workdir: Path) -> LoadResult:
        host, port = _host_port(url)
        processes = max(1, self.threads)
        per_process = _spread(self.connections, processes)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            jobs = [
                pool.apply_async(_client_process, (host, port, path, template, n, conns, self.seconds))
                for n, conns in enumerate(per_process)
            ]
            results = [job.get(timeout=self.seconds + 60) for job in jobs]
        return LoadResult(
            seconds=max(r[2] for r in results),
            requests_ok=sum(r[0] for r in results),
            not_ok=sum(r[1] for r in results),
        )


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    return host, int(port or 80)


def _spread(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def _client_process(
    host: str, port: int, path: str, template: BodyTemplate, stream: int, connections: int, seconds: float
) -> tuple[int, int, float]:
    try:
        import uvloop

        run: Callable[..., tuple[int, int, float]] = uvloop.run
    except ImportError:
        run = asyncio.run
    return run(_client(host, port, path, template, stream, connections, seconds))


async def _client(
    host: str, port: int, path: str, template: BodyTemplate, stream: int, connections: int, seconds: float
) -> tuple[int, int, float]:
    start = time.monotonic()
    deadline = start + seconds
    counts = await asyncio.gather(
        *(
            _connection(host, port, path, BodyFactory(template, stream * 1000 + n + 1), deadline)
            for n in range(connections)
        )
    )
    return sum(c[0] for c in counts), sum(c[1] for c in counts), time.monotonic() - start


async def _connection(host: str, port: int, path: str, bodies: BodyFactory, deadline: float) -> tuple[int, int]:
    ok = bad = 0
    reader, writer = await asyncio.open_connection(host, port)
    extra = "".join(f"{name}: {value}\r\n" for name, value in bodies.headers)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: posthog-python/7.91.1\r\n{extra}"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    try:
        while time.monotonic() < deadline:
            body = bodies.next_body()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status = await _read_response(reader)
            if status == 200:
                ok += 1
            else:
                bad += 1
    except (OSError, asyncio.IncompleteReadError):
        bad += 1
    finally:
        writer.close()
    return ok, bad


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status
