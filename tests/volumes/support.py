"""The rollups' oracle: what they must hold, counted from the stored events in Python."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.volumes.buckets import day_of, hour_of
from trapline.volumes.models import FingerprintDay as D
from trapline.volumes.models import FingerprintHour as H


def expected(database: Database) -> tuple[Counter[tuple[int, str, object]], Counter[tuple[int, str, object]]]:
    hours: Counter[tuple[int, str, object]] = Counter()
    days: Counter[tuple[int, str, object]] = Counter()
    with database.session(write=False) as session:
        for project_id, fingerprint, timestamp in session.execute(
            select(ExceptionEvent.project_id, ExceptionEvent.fingerprint, ExceptionEvent.timestamp)
        ):
            hours[(project_id, fingerprint, hour_of(timestamp))] += 1
            days[(project_id, fingerprint, day_of(timestamp))] += 1
    return hours, days


def stored(database: Database) -> tuple[Counter[tuple[int, str, object]], Counter[tuple[int, str, object]]]:
    with database.session(write=False) as session:
        hours = Counter(
            {(p, f, h): n for p, f, h, n in session.execute(select(H.project_id, H.fingerprint, H.hour, H.events))}
        )
        days = Counter(
            {(p, f, d): n for p, f, d, n in session.execute(select(D.project_id, D.fingerprint, D.day, D.events))}
        )
    return hours, days


def assert_rollups_match(database: Database) -> None:
    """Every hour and day row counts exactly the stored events of its bucket, and no bucket
    without events has a row."""
    want_hours, want_days = expected(database)
    have_hours, have_days = stored(database)
    assert have_hours == want_hours
    assert have_days == want_days
