"""When a frequency or users alert fires: a pure decision over counts and what it last did.

An alert says "more than N events (or distinct users) of an issue in the last T minutes". It
fires when the count rises above N, then stays quiet while the count stays above N, and fires
again only after the count has fallen back to N or below and risen again. An alert with an
interval instead repeats itself at most once per interval while the count stays above.

``before`` is the count in the window without the batch just stored, ``after`` with it: a
count can fall below N between two batches without anyone looking (events leave the
window), and comparing with ``before`` notices that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ThresholdState", "decide"]


@dataclass(frozen=True)
class ThresholdState:
    """Whether the count was above the threshold at the last look, and the last notification."""

    over: bool = False
    last_fired_at: datetime | None = None


def decide(
    before: int,
    after: int,
    threshold: int,
    state: ThresholdState,
    now: datetime,
    interval: timedelta | None = None,
) -> tuple[bool, ThresholdState]:
    """Whether to notify now, and the state to keep."""
    if after <= threshold:
        return False, ThresholdState(False, state.last_fired_at)
    still_over = state.over and before > threshold
    if not still_over:
        fire = True
    else:
        fire = interval is not None and (state.last_fired_at is None or now - state.last_fired_at >= interval)
    return fire, ThresholdState(True, now if fire else state.last_fired_at)
