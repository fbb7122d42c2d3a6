"""Failed sign-ins slow down guessing: after too many, the form refuses for a while.

Counted per (email, client address) and per client address, in the server process's memory:
no table to write on every failure, and a restart forgets, which errs towards letting people
in. With several server processes each counts its own, which still bounds guessing to a
small multiple. argon2 already costs each guess tens of milliseconds; this stops a patient
attacker at a few dozen guesses per quarter hour instead of thousands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["LoginThrottle"]


@dataclass
class _Window:
    started: float
    failures: int = 0


@dataclass
class LoginThrottle:
    per_account: int = 10
    per_address: int = 50
    window_seconds: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, ...], _Window] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _keys(self, email: str, address: str) -> list[tuple[tuple[str, ...], int]]:
        return [
            (("account", email.strip().lower(), address), self.per_account),
            (("address", address), self.per_address),
        ]

    def retry_after(self, email: str, address: str) -> float:
        """Seconds until this sign-in may be tried again; 0 when it may be tried now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(email, address):
                window = self._windows.get(key)
                if window is None:
                    continue
                if now - window.started >= self.window_seconds:
                    del self._windows[key]
                elif window.failures >= limit:
                    wait = max(wait, window.started + self.window_seconds - now)
        return wait

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._windows) > 100_000:  # a flood of made-up emails must not grow memory forever
                self._forget_expired(now)
            for key, _ in self._keys(email, address):
                window = self._windows.get(key)
                if window is None or now - window.started >= self.window_seconds:
                    window = self._windows[key] = _Window(started=now)
                window.failures += 1

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._windows.pop(self._keys(email, address)[0][0], None)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self.window_seconds]:
            del self._windows[key]
