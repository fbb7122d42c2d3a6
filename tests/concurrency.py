"""Run one function in several threads at once and collect what they raised."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(target: Callable[[], object], count: int, *, timeout: float = 60) -> list[BaseException]:
    """Start ``count`` threads of ``target`` together, wait for them; what any of them raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported to the caller, which asserts there is none
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread did not finish"
    return errors
