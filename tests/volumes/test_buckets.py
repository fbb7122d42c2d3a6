"""The buckets a list orders by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trapline.volumes.buckets import touched

T = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def test_lists_order_by_the_days_a_long_range_touches():
    kind, first, last = touched(T, T + timedelta(days=7))
    assert (kind, first, last) == ("day", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC))


def test_and_by_the_hours_a_short_one_touches():
    kind, first, last = touched(T, T + timedelta(hours=24))
    assert (kind, first, last) == ("hour", T.replace(minute=0), T.replace(minute=0) + timedelta(hours=24))
