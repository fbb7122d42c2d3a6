"""`trapline serve` runs its workers as child processes: restarted when they die, gone when it goes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.live.support import bootstrap, poll
from tests.server import running_server

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    # Each thread has its own list: the supervisor's thread starts the replacements.
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads process trees from /proc")
def test_workers_are_restarted_and_leave_with_the_server(tmp_path: Path):
    data_dir = tmp_path / "data"
    bootstrap(data_dir, "supervised")
    with running_server(data_dir, {"TRAPLINE_WORKERS": "2"}) as server:
        pid = server.process.pid
        first = poll(lambda: children(pid), lambda found: len(found) == 2, "two worker processes")
        os.kill(first[0], signal.SIGKILL)
        poll(
            lambda: children(pid),
            lambda found: len(found) == 2 and first[0] not in found,
            "the killed worker to be replaced",
        )
        workers = children(pid)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        # Orphans would keep the database busy and hold leases: they stop with their server.
        poll(lambda: [w for w in workers if alive(w)], lambda left: left == [], "the workers to exit")


def test_a_stopped_server_stops_its_workers(tmp_path: Path):
    data_dir = tmp_path / "data"
    bootstrap(data_dir, "stopped")
    with running_server(data_dir, {"TRAPLINE_WORKERS": "1"}) as server:
        [worker] = poll(lambda: children(server.process.pid), lambda found: len(found) == 1, "a worker process")
        assert server.stop(signal.SIGTERM) == 0
        assert not alive(worker)
