"""Mobile and native symbolication speed: real Hermes, ProGuard and ELF artefacts, one worker.

    .venv/bin/python bench/mobile_symbols_bench.py [--events 3000]

The artefacts are the tests' (tests/mobile/artefacts.py: hermesc, ProGuard and clang builds,
cached under .cache/mobile-artefacts), uploaded as the containers posthog-cli writes. For each
kind it prints:

* parse: reading the uploaded set the first time (decompress, parse, build the symcache);
* warm: events per second through one worker once the set is parsed and the frames are in the
  stack frame table (every event of an issue repeats its frames);
* without symbols: the same events with no resolver, the pipeline's floor.

The garbage collector is tuned as ``trapline worker`` tunes it. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the artefact builders live with the tests

from tests.mobile.artefacts import hermes_build, native_build, proguard_build  # noqa: E402
from tests.mobile.test_resolution import dwarf_zip  # noqa: E402

from trapline.accounts.bootstrap import bootstrap  # noqa: E402
from trapline.db import migrate  # noqa: E402
from trapline.db.engine import Database  # noqa: E402
from trapline.db.open import open_database  # noqa: E402
from trapline.db.types import utcnow  # noqa: E402
from trapline.events.queue import NewRequest, enqueue  # noqa: E402
from trapline.objects.memory import InMemoryStore  # noqa: E402
from trapline.symbols import platforms  # noqa: E402
from trapline.symbols.container import MAX_UNPACKED, Kind, pack  # noqa: E402
from trapline.symbols.models import SymbolSet  # noqa: E402
from trapline.symbols.resolver import SymbolResolver  # noqa: E402
from trapline.worker import Worker, WorkerOptions  # noqa: E402

CHUNK = str(uuid.uuid4())


def hermes() -> tuple[str, str, bytes, Callable[[], dict[str, Any]]]:
    build = hermes_build()
    frames = [{**frame, "chunk_id": CHUNK} for frame in build.frames]
    exception = {"type": "TypeError", "value": "expired", "stacktrace": {"type": "raw", "frames": frames}}
    return "hermes", CHUNK, pack(Kind.HERMES_MAP, build.map_path.read_bytes()), lambda: _event([exception], {})


def java() -> tuple[str, str, bytes, Callable[[], dict[str, Any]]]:
    build = proguard_build()
    mapping = pack(Kind.PROGUARD_MAPPING, build.mapping_path.read_bytes())
    return "java", build.map_id, mapping, lambda: _event(list(build.exception_list), {})


def native() -> tuple[str, str, bytes, Callable[[], dict[str, Any]]]:
    build = native_build()
    exception = {"type": "SIGABRT", "value": "overflow", "stacktrace": {"type": "raw", "frames": list(build.frames)}}
    container = pack(Kind.ELF_DEBUG_INFO, dwarf_zip(build.debug_file_path.read_bytes()))
    return "native", build.debug_id, container, lambda: _event([exception], {"$debug_images": [build.debug_image]})


def _event(exceptions: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    properties = {"$exception_list": exceptions, **extra}
    return {"event": "$exception", "uuid": str(uuid.uuid4()), "distinct_id": "user-1", "properties": properties}


def run(db: Database, project_id: int, make: Callable[[], dict[str, Any]], count: int, resolver: Any) -> float:
    requests = [NewRequest(project_id, utcnow(), None, json.dumps([make()]).encode(), 1) for _ in range(count)]
    for start in range(0, len(requests), 1000):
        enqueue(db, requests[start : start + 1000])
    started = time.perf_counter()
    result = Worker(db, WorkerOptions(), resolver).drain()
    elapsed = time.perf_counter() - started
    assert result.stored == count, result
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    print(f"mobile symbolication (one worker, SQLite, {args.events} events per figure)")
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)  # as trapline worker does at start-up
    for kind, ref, container, make in (hermes(), java(), native()):
        started = time.perf_counter()
        parsed = platforms.read_symbols("native" if kind == "native" else kind, container, ref, max_size=MAX_UNPACKED)
        parse_ms = (time.perf_counter() - started) * 1000
        assert not isinstance(parsed, str), parsed
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{tmp}/bench.db", reprocessable=True)
            migrate.upgrade(db.engine)
            with db.session(write=True) as session:
                project_id = bootstrap(
                    session, email="b@example.com", password="bench-pw-1", organization="B", project="B", key_label="b"
                ).project_id
                store = InMemoryStore()
                store.put("symbolsets/bench", container)
                session.add(SymbolSet(project_id=project_id, ref=ref, storage_ptr="symbolsets/bench", content_hash="h"))
                session.commit()
            resolver = SymbolResolver(db, store)
            run(db, project_id, make, 200, resolver)  # warm up: parse the set, fill the frame cache
            warm = run(db, project_id, make, args.events, resolver)
            floor = run(db, project_id, make, args.events, None)
            db.dispose()
        print(
            f"  {kind:7} {len(container):>9,} B set, parse {parse_ms:7.1f} ms · warm {warm:7,.0f} events/s · "
            f"without symbols {floor:7,.0f} events/s"
        )


if __name__ == "__main__":
    main()
