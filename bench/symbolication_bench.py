"""Symbolication speed: 20-frame minified JavaScript events through the worker, warm caches.

    .venv/bin/python bench/symbolication_bench.py [--events 5000]

Builds a bundle of twenty nested functions with esbuild (from the npm registry, installed into
.cache/npm the first time), runs it in node to get the real minified stack, uploads the
symbol set, then times one worker processing events that each carry those 20 frames:

* warm: the map is parsed and the frames are in the stack frame table (the steady state:
  every event of an issue repeats its frames);
* without symbols: the same events with no symbol set resolver, the pipeline's floor;
* raw lookups: symbolic's source map lookups per second, the cost when frames are new.

The garbage collector is tuned as ``trapline worker`` tunes it (start-up objects frozen, rare
full passes).

Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from trapline.accounts.bootstrap import bootstrap
from trapline.db import migrate
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import utcnow
from trapline.events.queue import NewRequest, enqueue
from trapline.objects.memory import InMemoryStore
from trapline.symbols.container import pack_source_and_map
from trapline.symbols.models import SymbolSet
from trapline.symbols.resolver import SymbolResolver
from trapline.symbols.sourcemaps import SourceMap
from trapline.worker import Worker, WorkerOptions

ROOT = Path(__file__).resolve().parent.parent
NPM_PREFIX = ROOT / ".cache" / "npm"
DEPTH = 20
CHUNK = str(uuid.uuid4())
URL = "https://shop.example/assets/app.min.js"


def esbuild() -> Path:
    binary = NPM_PREFIX / "node_modules" / ".bin" / "esbuild"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install esbuild")
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "esbuild@0.25"], check=True
        )
    return binary


def bundle(folder: Path) -> tuple[bytes, bytes, list[tuple[str, int, int]]]:
    """The minified bundle, its map, and the stack node reports for its throw (oldest first)."""
    lines = ["Error.stackTraceLimit = 100;"]
    lines += [f"function level{i}(n) {{ return level{i + 1}(n + 1) * 2; }}" for i in range(DEPTH - 1)]
    lines.append(f"function level{DEPTH - 1}(n) {{ throw new Error('deep ' + n); }}")
    lines.append("try { level0(0); } catch (e) { console.log(e.stack); }")
    (folder / "app.js").write_text("\n".join(lines) + "\n")
    subprocess.run(
        # --bundle: an IIFE, so the function names are mangled as in a real build.
        [str(esbuild()), "app.js", "--bundle", "--minify", "--sourcemap", "--outfile=app.min.js"],
        cwd=folder,
        check=True,
    )
    stack = subprocess.run(["node", "app.min.js"], cwd=folder, capture_output=True, text=True, check=True).stdout
    frames = [
        (match[1], int(match[2]), int(match[3]))
        for match in re.finditer(r"at (\S+) \(.*?app\.min\.js:(\d+):(\d+)\)", stack)
    ][:DEPTH]
    if any(name.startswith("level") for name, _, _ in frames):
        raise SystemExit("the bundle kept its function names: it would not need its source map")
    if len(frames) < DEPTH:
        raise SystemExit(f"expected {DEPTH} frames from node, got {len(frames)}:\n{stack}")
    return (folder / "app.min.js").read_bytes(), (folder / "app.min.js.map").read_bytes(), frames[::-1]


def event(frames: list[tuple[str, int, int]]) -> dict[str, Any]:
    raw = [
        {"platform": "web:javascript", "filename": URL, "function": name, "lineno": line, "colno": column,
         "in_app": True, "chunk_id": CHUNK}
        for name, line, column in frames
    ]  # fmt: skip
    return {
        "event": "$exception",
        "uuid": str(uuid.uuid4()),
        "distinct_id": "user-1",
        "properties": {
            "$exception_list": [{"type": "Error", "value": "deep 19", "stacktrace": {"type": "raw", "frames": raw}}],
            "$lib": "web",
        },
    }


def run(
    db: Database,
    project_id: int,
    frames: list[tuple[str, int, int]],
    count: int,
    resolver: Any,
    profiler: cProfile.Profile | None = None,
) -> float:
    requests = [NewRequest(project_id, utcnow(), None, json.dumps([event(frames)]).encode(), 1) for _ in range(count)]
    for start in range(0, len(requests), 1000):
        enqueue(db, requests[start : start + 1000])
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = Worker(db, WorkerOptions(), resolver).drain()
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
    assert result.stored == count, result
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--profile", type=int, metavar="N", help="print the N costliest functions of the warm run")
    parser.add_argument("--profile-sort", default="tottime", help="tottime (own time, default) or cumulative")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        minified, source_map, frames = bundle(folder)
        db = open_database(f"sqlite:///{folder}/bench.db", reprocessable=True)
        migrate.upgrade(db.engine)
        with db.session(write=True) as session:
            project_id = bootstrap(
                session, email="b@example.com", password="bench-pw-1", organization="B", project="B", key_label="b"
            ).project_id
            store = InMemoryStore()
            store.put("symbolsets/bench", pack_source_and_map(minified, source_map))
            session.add(SymbolSet(project_id=project_id, ref=CHUNK, storage_ptr="symbolsets/bench", content_hash="h"))
            session.commit()
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)  # as trapline worker does at start-up
        resolver = SymbolResolver(db, store)
        checkpointers = db.checkpointers()  # as trapline worker runs them
        for checkpointer in checkpointers:
            checkpointer.start()
        run(db, project_id, frames, 200, resolver)  # warm up: parse the map, fill the frame cache
        profiler = cProfile.Profile() if args.profile else None
        warm = run(db, project_id, frames, args.events, resolver, profiler)
        floor = run(db, project_id, frames, args.events, None)
        for checkpointer in checkpointers:
            checkpointer.stop()
        db.dispose()

        parsed = SourceMap.from_container(pack_source_and_map(minified, source_map))
        assert isinstance(parsed, SourceMap)
        lookups = 0
        started = time.perf_counter()
        while time.perf_counter() - started < 1.0:
            for _, line, column in frames:
                assert parsed.lookup(line, column) is not None
            lookups += len(frames)
        lookup_rate = lookups / (time.perf_counter() - started)

    print(f"symbolication ({DEPTH}-frame web:javascript events, one worker, SQLite)")
    print(f"  warm caches        {warm:8,.0f} events/s   ({warm * DEPTH:,.0f} frames/s)")
    print(f"  without symbols    {floor:8,.0f} events/s   (the same events, no resolver)")
    if profiler is not None:
        print(f"\nthe warm run's {args.profile} costliest functions (own time; profiled, so slower):")
        pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(args.profile)
    print(f"  raw map lookups    {lookup_rate:8,.0f} frames/s (symbolic, with 15 lines of context each)")


if __name__ == "__main__":
    main()
