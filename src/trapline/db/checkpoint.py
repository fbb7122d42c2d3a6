"""Copying SQLite's write-ahead log into the database file, off the writers' path.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that
commit copies the log into the database file and waits for the disk twice. A worker's batch
writes ~6 MB (500 events of ~12 kB), so nearly every batch paid a checkpoint while holding the
one write lock (~17% of its time, `bench/symbolication_bench.py`). Here a thread of each worker
process checkpoints in the background instead; PASSIVE checkpoints take no writer's lock, so
capture and the workers keep committing meanwhile. Connections still checkpoint by themselves
past ``AUTOCHECKPOINT_BYTES`` of log, so the log stays bounded when no worker runs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

__all__ = ["AUTOCHECKPOINT_BYTES", "WalCheckpointer", "autocheckpoint_pages", "sync_log"]

log = logging.getLogger(__name__)

# Ten worker batches between a checkpoint in the background and the commit that would do one
# itself; SQLite counts the bound in pages, of the file's own size (``autocheckpoint_pages``).
AUTOCHECKPOINT_BYTES = 64 * 1024 * 1024


def autocheckpoint_pages(page_size: int) -> int:
    """``wal_autocheckpoint`` for a file of ``page_size`` pages: ``AUTOCHECKPOINT_BYTES`` of log."""
    return max(1, AUTOCHECKPOINT_BYTES // page_size)


class WalCheckpointer:
    """A thread that checkpoints the database at ``path`` every ``interval`` seconds."""

    def __init__(self, path: str, interval: float = 0.25) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trapline-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        failing = False
        try:
            while not self._stop.wait(self.interval):
                try:
                    # Frames held by a reader or another checkpoint are copied by a later pass.
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    # A full disk or a database locked by a vacuum: writers checkpoint
                    # themselves past the bound meanwhile, and the next pass tries again.
                    # Said once per failing spell, not four times a second.
                    if not failing:
                        log.warning("background checkpoint failed", extra={"error": str(exc)})
                    failing = True
                else:
                    failing = False
        finally:
            connection.close()


def sync_log(path: str) -> None:
    """Make every transaction committed so far to the SQLite file at ``path`` (WAL mode)
    survive a power loss, whatever ``synchronous`` its writers committed with."""
    try:
        # Opened each time: the log is the file at this path now (SQLite may have replaced
        # it), and fsync writes the file's pages whichever descriptor asks.
        descriptor = os.open(f"{path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        # No log: a checkpoint moved everything into the database file (and synced it) and
        # the log went with the last connection; sync the database file instead.
        descriptor = os.open(path, os.O_RDONLY)
    try:
        # Data, and the size when it grew, as SQLite syncs its own files on Linux: fsync also
        # writes the file's new mtime, a journal commit of the file system that waits for
        # whatever else is being written (a worker's batch). Measured under ingest load: the
        # sync took 1.7 ms on average against 2.0 ms.
        getattr(os, "fdatasync", os.fsync)(descriptor)
    finally:
        os.close(descriptor)
