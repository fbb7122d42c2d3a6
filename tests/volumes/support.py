"""The rollups' oracle: what they must hold, counted from the stored events in Python."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.volumes.buckets import day_of, hour_of
from trapline.volumes.models import FingerprintDay as D
from trapline.volumes.models import FingerprintHour as H
from trapline.volumes.recent import first_day


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
    assert_windows_match(database)


def windows(database: Database) -> dict[tuple[int, str], tuple[object, int]]:
    """(recent_day, recent_events) of every fingerprint whose window is kept."""
    with database.session(write=False) as session:
        rows = session.execute(
            select(
                IssueFingerprint.project_id,
                IssueFingerprint.fingerprint,
                IssueFingerprint.recent_day,
                IssueFingerprint.recent_events,
            ).where(IssueFingerprint.recent_day.is_not(None))
        )
        return {(p, f): (d, n) for p, f, d, n in rows}


def assert_windows_match(database: Database) -> None:
    """Every kept window counts exactly the stored events of its eight days."""
    _, days = expected(database)
    for (project_id, fingerprint), (last, events) in windows(database).items():
        mine = [(day, n) for (p, f, day), n in days.items() if (p, f) == (project_id, fingerprint)]
        want = sum(n for day, n in mine if first_day(last) <= day <= last)
        assert events == want, (fingerprint, last)
