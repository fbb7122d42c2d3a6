"""Worker processes started, watched and stopped by ``trapline serve``.

Processing runs in child processes rather than in threads of the server: Python runs one
thread at a time, and a worker thread busy grouping events would take that time from the
event loop that answers the SDKs (measured: accept rate down by half or more). The children
are ordinary ``trapline worker`` processes; they exit when the server does, even if it is
killed (``PR_SET_PDEATHSIG`` on Linux, and a check of the parent pid everywhere), and one
that exits unexpectedly is started again after a pause.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["PARENT_PID_ENV", "StopSignals", "WorkerProcesses", "exit_with_parent"]

log = logging.getLogger("trapline.supervisor")

# Set in a worker's environment: the pid of the server it belongs to.
PARENT_PID_ENV = "TRAPLINE_SUPERVISOR_PID"
# A crashing worker is restarted, but not more often than this.
_RESTART_PAUSE_SECONDS = 1.0


class WorkerProcesses:
    def __init__(self, count: int, args: Sequence[str] = ()) -> None:
        self._count = count
        self._args = list(args)
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._processes = [self._spawn() for _ in range(self._count)]
        if self._count:
            self._watcher = threading.Thread(target=self._watch, name="trapline-supervisor", daemon=True)
            self._watcher.start()

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def stop(self, timeout: float) -> None:
        """SIGTERM every worker; SIGKILL what is still running after ``timeout`` (its lease
        then hands its batch to the next worker: nothing is lost)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self._processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killed", extra={"pid": process.pid})
                process.kill()
                process.wait()
        self._processes = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        process = subprocess.Popen([sys.executable, "-m", "trapline", "worker", *self._args], env=env)
        log.info("worker process started", extra={"pid": process.pid})
        return process

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self._processes):
                code = process.poll()
                if code is None:
                    continue
                log.error("worker process exited; starting another", extra={"pid": process.pid, "code": code})
                if self._stopping.wait(_RESTART_PAUSE_SECONDS):
                    return
                self._processes[index] = self._spawn()


def exit_with_parent(stop: threading.Event) -> None:
    """In a worker started by ``WorkerProcesses``: stop when the server is gone."""
    parent = int(os.environ.get(PARENT_PID_ENV, "0") or 0)
    if not parent:
        return
    if sys.platform == "linux":
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass  # the pid check below still works

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("server is gone; worker stopping")
                stop.set()

    threading.Thread(target=watch, name="trapline-parent-watch", daemon=True).start()


class StopSignals:
    """SIGTERM and SIGINT stop a worker process: ``wait`` returns once one arrived or ``stop``
    is set elsewhere (the parent watch), and sets ``stop`` for the threads.

    The handler only records the signal. A handler runs between two bytecodes of the main
    thread, maybe while that thread holds the lock of the very ``Event`` it would set (on its
    way into or out of ``Event.wait``); setting it there waits for that lock forever. A worker
    hung so, asleep and never exiting, was found left over from a test run.
    """

    # How long a signal may wait to be noticed.
    POLL_SECONDS = 0.2

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._signalled: list[int] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._record)
        return self

    def restore(self) -> None:
        """Put back the handlers there were before ``install``."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _record(self, signum: int, frame: object) -> None:
        self._signalled.append(signum)  # no lock taken: see the class's docstring

    def wait(self) -> None:
        while not self._signalled and not self._stop.wait(self.POLL_SECONDS):
            pass
        self._stop.set()
