"""A worker's stop signal is safe whatever the main thread is doing when it arrives."""

from __future__ import annotations

import signal
import threading

from trapline.supervisor import StopSignals


def test_a_signal_arriving_while_the_stop_events_lock_is_held_does_not_hang():
    stop = threading.Event()
    signals = StopSignals(stop).install()
    try:
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)

        def main_thread() -> None:
            # As Event.wait holds the event's lock for a moment on its way in and out: a
            # handler that sets the event there waits for that lock forever.
            with stop._cond:  # type: ignore[attr-defined]
                handler(signal.SIGTERM, None)
            signals.wait()

        thread = threading.Thread(target=main_thread, daemon=True)
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the handler waited for a lock its own thread holds"
        assert stop.is_set()  # the worker's threads are told to stop
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGTERM) is not handler


def test_wait_also_returns_when_another_thread_sets_stop():
    stop = threading.Event()
    signals = StopSignals(stop).install()
    try:
        threading.Timer(0.05, stop.set).start()  # the parent watch
        signals.wait()
        assert stop.is_set()
    finally:
        signals.restore()
