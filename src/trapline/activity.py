"""When the server last began a request: what tells the idle worker (``idle_worker.py``) that
the server is quiet."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Activity"]


class Activity:
    """When the server last began a request; the HTTP protocol calls ``touch`` for each."""

    __slots__ = ("_clock", "last")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last = clock()

    def touch(self) -> None:
        # One attribute store from the event loop's thread; the idle worker only reads it.
        self.last = self._clock()

    def quiet_in(self, quiet_seconds: float) -> float:
        """Seconds until the server has been quiet for ``quiet_seconds`` (0: it has)."""
        return max(0.0, self.last + quiet_seconds - self._clock())
