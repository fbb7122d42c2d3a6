"""Time buckets of the rollups. Pure.

Exact counts over a range add the whole hours inside it (the hour table) to the events of
the hours its bounds cut (the events' own index). Lists that must order thousands of issues
read the coarser buckets the range touches instead (``touched``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["DAY", "HOUR", "day_of", "hour_of", "touched"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# From this length on, a list orders by day buckets: a week is 7 rows per issue instead of 168.
DAILY_FROM = timedelta(days=3)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def touched(start: datetime, end: datetime) -> tuple[str, datetime, datetime]:
    """The buckets a list orders by: ``("day", first, last)`` for ranges of ``DAILY_FROM`` or
    more, else ``("hour", first, last)``; first and last are bucket starts, both included."""
    if end - start >= DAILY_FROM:
        return "day", day_of(start), day_of(end)
    return "hour", hour_of(start), hour_of(end)
