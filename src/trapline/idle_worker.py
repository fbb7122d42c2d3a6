"""Processing in the server while it is quiet: a worker thread on the core the server leaves free.

On one box `trapline serve` and its worker processes share the cores. While requests pour in,
the server's core is capture's; once they stop, it idles while one worker drains the backlog
on one core. A burst of errors (a bad deploy) leaves a backlog that takes as long again to
turn into issues and alerts as the burst took to arrive. The idle worker processes batches in
the server's own process whenever the server has begun no request for ``QUIET_SECONDS`` and
requests are queued, and stops between batches as soon as one comes in: a worker thread
shares Python's lock with the event loop, so it must never run while the server is answering
(that halves the rate at which events are accepted). A request that arrives during a batch
shares the lock with it until the batch ends: tens of milliseconds at most
(``bench/idle_bench.py``).

It is a worker like the others (``worker.Worker``): it claims disjoint batches, and what it
holds when the server dies goes back to the queue when its lease ends or a worker of this
machine sees the server's pid gone. Housekeeping (retention, pruning, the daily roll) and
sending alerts stay with the worker processes: the notifications its batches write go out at
their senders' next look (``TRAPLINE_ALERTS_POLL_SECONDS``).
"""

from __future__ import annotations

import logging
import threading

from trapline.activity import Activity
from trapline.worker import Worker

__all__ = ["BATCH_REQUESTS", "MAP_CACHE_BYTES", "QUIET_SECONDS", "IdleWorker"]

log = logging.getLogger("trapline.worker")

# How long the server must have begun no request before the idle worker takes a batch: a
# server answering a steady stream (a request every 0.2 s or more often) never starts one, and
# a backlog is taken up within a moment of a burst's end.
QUIET_SECONDS = 0.2
# Requests (and events) a batch of the idle worker takes, ~65 ms of work: a request arriving
# meanwhile shares Python's lock with it in 5 ms slices. 250 drained ~10% slower (each batch
# pays ~12 ms of its own) and cut the longest such wait from ~40 to ~23 ms.
BATCH_REQUESTS = 500
# Its cache of parsed symbol sets: the worker processes keep the large ones (the resolver's
# DEFAULT_MAP_CACHE_BYTES each).
MAP_CACHE_BYTES = 32 * 1024 * 1024


class IdleWorker:
    """Runs ``worker``'s batches in a thread of the server while ``activity`` is quiet."""

    def __init__(self, worker: Worker, activity: Activity, *, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.worker = worker
        self._activity = activity
        self._quiet_seconds = quiet_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="trapline-idle-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after the batch in progress (if it takes longer, its lease hands it on)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        log.info("idle worker started", extra={"worker": self.worker.id})
        while not self._stop.is_set():
            wait = self._activity.quiet_in(self._quiet_seconds)
            if wait > 0:
                self._stop.wait(wait)
                continue
            self.worker.step(self._stop)  # and waits as a worker process would
        log.info("idle worker stopped", extra={"worker": self.worker.id})
