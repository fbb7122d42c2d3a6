"""Group commit for the capture endpoints: many requests, one transaction, one fsync.

A capture request may only be answered 200 once its events are durably queued. Committing
one transaction per request would cap ingestion at the disk's fsync rate; instead each
request hands its rows to the spool and waits, and a single flusher writes everything that
arrived since the last flush in one transaction. Under load, flushes grow; when idle, a
request waits for just its own commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from trapline.db.engine import Database
from trapline.diskspace import disk_full_cause
from trapline.events.queue import NewDrop, NewRequest, NewSignal, SqliteWriter, enqueue

__all__ = ["Spool", "SpoolClosed"]

log = logging.getLogger("trapline.ingest")

# What one request hands over: its queued requests, its sessions' signals, its drop counts.
_Write = tuple[tuple[NewRequest, ...], tuple[NewSignal, ...], tuple[NewDrop, ...]]


class SpoolClosed(Exception):
    """The server is shutting down and no longer accepts events."""


class Spool:
    """Durably queues accepted requests, batching concurrent ones into one commit."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 2000,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[_Write, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor: ThreadPoolExecutor | None = None
        self._writer: SqliteWriter | None = None

    async def start(self) -> None:
        # One thread: flushes are sequential by design, and SQLite has one writer anyway.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trapline-spool")
        if self._db.queue.is_sqlite:
            loop = asyncio.get_running_loop()
            self._writer = await loop.run_in_executor(self._executor, SqliteWriter, self._db.queue)
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="trapline-spool")

    async def stop(self) -> None:
        """Flush what is pending, then stop accepting."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            if self._writer is not None:
                self._executor.submit(self._writer.close)
                self._writer = None
            self._executor.shutdown(wait=True)
            self._executor = None
        self._wakeup = None

    async def append(
        self, requests: Sequence[NewRequest], signals: Sequence[NewSignal] = (), drops: Sequence[NewDrop] = ()
    ) -> None:
        """Return once ``requests``, ``signals`` and ``drops`` are committed; raise if the commit failed."""
        if self._closing or self._wakeup is None:
            raise SpoolClosed()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((tuple(requests), tuple(signals), tuple(drops)), future))
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await loop.run_in_executor(self._executor, self._write, [write for write, _ in batch])
                except Exception as exc:
                    # The requests are answered 503 and their SDKs send them again; the flusher
                    # goes on with whatever arrives next.
                    full = disk_full_cause(exc)
                    if full is not None:
                        log.error(
                            "could not queue accepted events: the disk is full",
                            extra={"requests": len(batch), "error": str(full)},
                        )
                    else:
                        log.exception("could not queue accepted events", extra={"requests": len(batch)})
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            if self._closing:
                return

    def _write(self, writes: list[_Write]) -> None:
        enqueue(
            self._db,
            [request for requests, _, _ in writes for request in requests],
            [signal for _, signals, _ in writes for signal in signals],
            [drop for _, _, drops in writes for drop in drops],
            writer=self._writer,
        )
