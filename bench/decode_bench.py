"""Throughput of decode_capture on the real SDK payloads, as plain JSON, gzip and a base64 form.

    .venv/bin/python bench/decode_bench.py [--seconds 0.5] [payload-dir]

Each body is re-encoded the way its SDK sends it (see tests/ingest/test_decode.py) and decoded
in a loop; MB/s counts the bytes as received, so gzip figures are per compressed byte.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
try:
    from trapline.ingest.decode import Limits, decode_capture
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))
    from trapline.ingest.decode import Limits, decode_capture

LIMITS = Limits(max_body_bytes=20 << 20, max_decompressed_bytes=100 << 20, max_event_bytes=1 << 20)
CAPTURE_PATHS = ("/batch/", "/e/", "/i/v0/e/", "/i/v1/analytics/events")


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str
    content_encoding: str | None
    query: dict[str, str]
    decoded_size: int


def cases(directory: Path) -> list[Case]:
    found: list[Case] = []
    for path in sorted(directory.glob("posthog-*.json")):
        recording = json.loads(path.read_text())
        if not recording["path"].startswith(CAPTURE_PATHS):
            continue
        python_sdk = recording["headers"].get("User-Agent", "").startswith("posthog-python")
        body = recording["body_decoded"]
        if python_sdk:
            text = json.dumps(body).encode()
        else:
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        short = path.stem.split("_", 1)[1][:44]
        found.append(Case(f"{short} plain", text, "application/json", None, {}, len(text)))
        if python_sdk:  # gzip=True: Content-Encoding header
            found.append(Case(f"{short} gzip", gzip.compress(text), "application/json", "gzip", {}, len(text)))
        else:  # posthog-js: text/plain, recognised by the magic bytes
            found.append(Case(f"{short} gzip", gzip.compress(text), "text/plain", None, {}, len(text)))
        form = b"data=" + quote(base64.b64encode(text), safe="").encode()
        found.append(
            Case(
                f"{short} base64",
                form,
                "application/x-www-form-urlencoded",
                None,
                {"compression": "base64"},
                len(text),
            )
        )
    return found


def measure(case: Case, seconds: float) -> tuple[float, int]:
    """Seconds per decode (best of three runs) and the number of decodes timed."""

    def run(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            decode_capture(
                case.body,
                content_type=case.content_type,
                content_encoding=case.content_encoding,
                query=case.query,
                limits=LIMITS,
            )
        return time.perf_counter() - started

    count = 1
    while (elapsed := run(count)) < seconds / 10:
        count *= 2
    count = max(1, int(count * seconds / 3 / elapsed))
    return min(run(count) for _ in range(3)) / count, count * 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT / "tests" / "ingest" / "payloads")
    parser.add_argument("--seconds", type=float, default=0.5, help="time spent on each body (default 0.5)")
    args = parser.parse_args()

    all_cases = cases(args.directory)
    if not all_cases:
        sys.exit(f"no posthog-*.json capture payloads in {args.directory}")
    print(f"Python {sys.version.split()[0]}, {len(all_cases)} bodies, ~{args.seconds:g} s each")
    print(f"{'body':<52} {'bytes':>7} {'json':>7} {'us/body':>8} {'bodies/s':>9} {'MB/s in':>8} {'MB/s json':>9}")
    totals: dict[str, list[float]] = {}
    for case in all_cases:
        per_body, _ = measure(case, args.seconds)
        encoding = case.name.rsplit(" ", 1)[1]
        total = totals.setdefault(encoding, [0.0, 0.0, 0.0])
        total[0] += per_body
        total[1] += len(case.body)
        total[2] += case.decoded_size
        print(
            f"{case.name:<52} {len(case.body):>7} {case.decoded_size:>7} {per_body * 1e6:>8.1f} "
            f"{1 / per_body:>9.0f} {len(case.body) / per_body / 1e6:>8.1f} {case.decoded_size / per_body / 1e6:>9.1f}"
        )
    print()
    print("all bodies of one encoding, one after another:")
    for encoding, (seconds, raw, decoded) in totals.items():
        count = sum(1 for case in all_cases if case.name.endswith(" " + encoding))
        print(
            f"  {encoding:<7} {count / seconds:>9.0f} bodies/s {raw / seconds / 1e6:>7.1f} MB/s in "
            f"{decoded / seconds / 1e6:>7.1f} MB/s json"
        )


if __name__ == "__main__":
    main()
