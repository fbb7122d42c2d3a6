"""Summarise a py-spy profile (``--format raw --threads``, as ingest_bench.py --py-spy records them).

    .venv/bin/python bench/pyspy_top.py /tmp/prof/serve-single.txt [--top 15]

Per thread: its share of the sampling rounds (how much of one core it was running or ready to
run), then the functions with the most samples, three ways: the innermost frame (where the
CPU is), the innermost Trapline frame (which of our lines caused it) and inclusive (everything
below a function, counted once per stack).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SAMPLES = re.compile(r"Samples: (\d+)")
OWN_CODE = "trapline/"


@dataclass
class Thread:
    samples: int = 0
    leaf: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def parse(path: Path) -> dict[str, Thread]:
    threads: dict[str, Thread] = defaultdict(Thread)
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        head, *frames = stack.split(";")
        thread = threads[_thread_name(head)]
        thread.samples += count
        thread.leaf[frames[-1] if frames else head] += count
        thread.own[_innermost_own(frames)] += count
        for name in {_function(frame) for frame in frames}:
            thread.inclusive[name] += count
    return dict(threads)


def _thread_name(head: str) -> str:
    # "thread (27171): trapline-worker-0", or "thread (0x7f...)" for an unnamed thread
    _, _, name = head.partition(": ")
    return name or head


def _innermost_own(frames: list[str]) -> str:
    for frame in reversed(frames):
        if OWN_CODE in frame:
            return frame
    return "(outside trapline: " + (_function(frames[0]) if frames else "?") + ")"


def _function(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def rounds(path: Path) -> int | None:
    """Sampling rounds, from py-spy's own log next to the profile (written by ingest_bench.py)."""
    log = path.with_name(path.name + ".log")
    if not log.exists():
        return None
    found = _SAMPLES.findall(log.read_text())
    return int(found[-1]) if found else None


def report(path: Path, top: int) -> None:
    threads = parse(path)
    total = rounds(path) or max((t.samples for t in threads.values()), default=1)
    print(f"{path}: {total} sampling rounds; share = of rounds (1.00 = one core all the time)")
    for name, thread in sorted(threads.items(), key=lambda item: -item[1].samples):
        print(f"\n## thread {name}: {thread.samples} samples, {thread.samples / total:.2f} of rounds")
        for title, counter in (
            ("innermost frame", thread.leaf),
            ("innermost trapline frame", thread.own),
            ("inclusive", thread.inclusive),
        ):
            print(f"  -- {title}")
            for frame, count in counter.most_common(top):
                print(f"  {count / thread.samples:6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        report(path, args.top)


if __name__ == "__main__":
    main()
