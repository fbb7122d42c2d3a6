"""The counts alerts decide by, kept in the database: the spike detector's 5-minute buckets
and cooldowns, the threshold alerts' per-minute counters and their states per issue.

These are the hot path of alerts (every batch adds to them and reads a window of them), so
they are written and read through the driver, as storage does: SQLAlchemy's per-statement and
per-value work cost several times the statements themselves. Counters are keyed by 64-bit
hashes (see their models) and read by their primary key's prefix, a few rows per issue.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.alerts.spikes import bucket_starts
from trapline.alerts.thresholds import ThresholdState
from trapline.db.types import SQLITE_DATETIME, sqlite_datetime
from trapline.issues.filters import owned_by
from trapline.issues.models import IssueFingerprint

__all__ = [
    "Driver",
    "SeenUsers",
    "add_and_read_buckets",
    "count_in",
    "fingerprints_of",
    "key_hash",
    "lock_states",
    "minute_counts",
    "minute_of",
    "snooze",
    "user_counts",
]

# Stored events keep the first 200 characters of a distinct id (see storage): so do the counts.
_USER_ID_LIMIT = 200


class SeenUsers:
    """How many users a worker has recorded per project, fingerprint and minute.

    A minute that already holds more users than every users alert's threshold keeps any window
    that contains it above the threshold, so more users of that minute change no decision: they
    are not recorded, and a flood from a million browsers writes a bounded number of rows. The
    counts only ever stay below the truth (they are this worker's rows, added once committed),
    so no minute is skipped too early.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._counts: dict[tuple[int, int, Any], int] = {}
        self._pending: Counter[tuple[int, int, Any]] = Counter()
        self._max_entries = max_entries

    def room(self, key: tuple[int, int, Any], cap: int) -> int:
        return cap - self._counts.get(key, 0) - self._pending[key]

    def add(self, key: tuple[int, int, Any], count: int = 1) -> None:
        self._pending[key] += count

    def committed(self) -> None:
        if len(self._counts) > self._max_entries:
            self._counts.clear()  # forgetting only costs rows, never a decision
        for key, count in self._pending.items():
            self._counts[key] = self._counts.get(key, 0) + count
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def lock_states(
    session: Session, watched: dict[uuid.UUID, list[uuid.UUID]]
) -> dict[uuid.UUID, dict[uuid.UUID, ThresholdState]]:
    """Each alert's state for each of its watched issues, made if missing, locked (PostgreSQL)."""
    driver = Driver(session)
    pairs = sorted(
        (driver.uuid(alert_id), driver.uuid(issue_id)) for alert_id, ids in watched.items() for issue_id in ids
    )
    if not pairs:
        return {}
    driver.run(
        "INSERT INTO alert_issue_state (alert_id, issue_id, over) VALUES (?, ?, ?) "
        "ON CONFLICT (alert_id, issue_id) DO NOTHING",
        [(alert, issue, False) for alert, issue in pairs],
    )
    alerts = sorted({alert for alert, _ in pairs})
    issues = sorted({issue for _, issue in pairs})
    query = (
        f"SELECT alert_id, issue_id, over, last_fired_at FROM alert_issue_state WHERE alert_id IN "
        f"({_marks(len(alerts))}) AND issue_id IN ({_marks(len(issues))}) ORDER BY alert_id, issue_id"
    )
    # On PostgreSQL a second worker deciding the same issue waits here (see the alerting stage).
    rows = driver.run(query if driver.sqlite else query + " FOR UPDATE", (*alerts, *issues))
    ids = {driver.uuid(i): i for i in {*watched, *(i for ids in watched.values() for i in ids)}}
    states: dict[uuid.UUID, dict[uuid.UUID, ThresholdState]] = defaultdict(dict)
    for alert, issue, over, fired in rows:
        states[ids[alert]][ids[issue]] = ThresholdState(bool(over), driver.read_time(fired))
    return states


def fingerprints_of(session: Session, project_id: int, issue_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    owned: dict[uuid.UUID, list[str]] = defaultdict(list)
    for issue_id, fingerprint in session.execute(
        select(IssueFingerprint.issue_id, IssueFingerprint.fingerprint).where(
            *owned_by(project_id, sorted(set(issue_ids)))
        )
    ):
        owned[issue_id].append(fingerprint)
    return owned


_ADD_MINUTES = (
    "INSERT INTO fingerprint_minute (project_id, fingerprint_hash, minute, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (project_id, fingerprint_hash, minute) DO UPDATE SET count = fingerprint_minute.count + excluded.count"
)
_ADD_BUCKETS = (
    "INSERT INTO issue_bucket (issue_id, bucket_start, project_id, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (issue_id, bucket_start) DO UPDATE SET count = issue_bucket.count + excluded.count"
)
_SEE_USERS = "INSERT INTO fingerprint_user (project_id, fingerprint_hash, minute, user_hash)"
_SEE_USERS_END = (
    "ON CONFLICT (project_id, fingerprint_hash, minute, user_hash) DO NOTHING RETURNING fingerprint_hash, minute"
)
_USERS_PER_STATEMENT = 500  # four values each: well under SQLite's limit on bound parameters


class Driver:
    """The session's connection, spoken to in plain SQL with ``?`` placeholders."""

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self.sqlite = self.connection.dialect.name == "sqlite"

    def time(self, moment: datetime) -> Any:
        return sqlite_datetime(moment) if self.sqlite else moment

    def uuid(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def read_time(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value.astimezone(UTC) if value is not None else None
        return datetime.strptime(value, SQLITE_DATETIME).replace(tzinfo=UTC)

    def run(self, sql: str, params: Sequence[Any] | list[tuple[Any, ...]]) -> Any:
        return self.connection.exec_driver_sql(sql if self.sqlite else sql.replace("?", "%s"), params)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def key_hash(text: str) -> int:
    """The 64-bit key the counters use for a fingerprint or a distinct id (see their models)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big",
                          signed=True)  # fmt: skip


def minute_counts(
    session: Session, project_id: int, owned: dict[uuid.UUID, list[str]], since: datetime
) -> dict[uuid.UUID, int]:
    issue_of = {key_hash(fingerprint): issue_id for issue_id, fps in owned.items() for fingerprint in fps}
    counts: Counter[uuid.UUID] = Counter()
    if issue_of:
        driver = Driver(session)
        rows = driver.run(
            "SELECT fingerprint_hash, sum(count) FROM fingerprint_minute WHERE project_id = ? "
            f"AND fingerprint_hash IN ({_marks(len(issue_of))}) AND minute >= ? GROUP BY fingerprint_hash",
            (project_id, *sorted(issue_of), driver.time(since)),
        )
        for fingerprint, total in rows:
            counts[issue_of[fingerprint]] += int(total or 0)
    return dict(counts)


def user_counts(
    session: Session, project_id: int, owned: dict[uuid.UUID, list[str]], since: datetime, cap: int
) -> dict[uuid.UUID, int]:
    """Distinct users of each issue seen since ``since``, counted up to ``cap``: whether there are
    more than the threshold is all a decision needs, and a flood from a million browsers then
    costs as much as one from ``cap`` of them. One statement for all the issues."""
    issues = sorted(owned)
    if not issues:
        return {}
    driver = Driver(session)
    columns: list[str] = []
    params: list[Any] = []
    for issue_id in issues:
        hashes = sorted({key_hash(fingerprint) for fingerprint in owned[issue_id]})
        columns.append(
            "(SELECT count(*) FROM (SELECT DISTINCT user_hash FROM fingerprint_user WHERE project_id = ? "
            f"AND fingerprint_hash IN ({_marks(len(hashes))}) AND minute >= ? LIMIT ?) AS seen)"
        )
        params.extend((project_id, *hashes, driver.time(since), cap))
    row = driver.run(f"SELECT {', '.join(columns)}", tuple(params)).one()
    return {issue_id: int(count or 0) for issue_id, count in zip(issues, row, strict=True)}


def count_in(
    session: Session,
    project_id: int,
    stored: Iterable[tuple[str, datetime, str]],
    *,
    minutes: bool,
    user_cap: int,
    seen: SeenUsers,
) -> None:
    """Add the batch's stored events (fingerprint, event time, distinct id) to the per-minute
    counters and to the users seen per minute (up to ``user_cap`` users per minute and
    fingerprint, see ``SeenUsers``)."""
    driver = Driver(session)
    # A batch has few fingerprints and minutes and many events: each is hashed or formatted once.
    fingerprints: dict[str, int] = {}
    times: dict[datetime, Any] = {}
    keyed: list[tuple[int, Any, str]] = []
    for fingerprint, timestamp, distinct_id in stored:
        fp = fingerprints.get(fingerprint)
        if fp is None:
            fp = fingerprints[fingerprint] = key_hash(fingerprint)
        minute = minute_of(timestamp)
        when = times.get(minute)
        if when is None:
            when = times[minute] = driver.time(minute)
        keyed.append((fp, when, distinct_id))
    if minutes:
        counts = Counter((fp, when) for fp, when, _ in keyed)
        # Sorted: one lock order for every worker.
        driver.run(_ADD_MINUTES, [(project_id, fp, when, n) for (fp, when), n in sorted(counts.items())])
    if user_cap:
        rows: list[tuple[int, Any, int]] = []
        taken: Counter[tuple[int, Any]] = Counter()
        for fp, when, user in sorted({(fp, when, key_hash(user[:_USER_ID_LIMIT])) for fp, when, user in keyed if user}):
            if taken[(fp, when)] < seen.room((project_id, fp, when), user_cap):
                taken[(fp, when)] += 1
                rows.append((fp, when, user))
        for start in range(0, len(rows), _USERS_PER_STATEMENT):
            chunk = rows[start : start + _USERS_PER_STATEMENT]
            # RETURNING tells which were new: only those count towards a minute's users.
            inserted = driver.run(
                f"{_SEE_USERS} VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))} {_SEE_USERS_END}",
                tuple(value for fp, when, user in chunk for value in (project_id, fp, when, user)),
            )
            for fp, when in inserted:
                seen.add((project_id, fp, when if driver.sqlite else driver.read_time(when)))


def add_and_read_buckets(
    session: Session, project_id: int, counts: dict[uuid.UUID, int], now: datetime
) -> tuple[dict[uuid.UUID, list[int | None]], list[int | None], list[int]]:
    """Add the batch's events of each issue (``counts``, sorted: one lock order for every
    worker) to the current 5-minute bucket, then read the detector's hour: each issue's counts
    per bucket, the project's events and distinct issues per bucket, the current bucket first."""
    driver = Driver(session)
    starts = bucket_starts(now)
    when = [driver.time(start) for start in starts]
    position = {start: index for index, start in enumerate(when)}
    driver.run(
        _ADD_BUCKETS,
        [(driver.uuid(issue_id), when[0], project_id, n) for issue_id, n in counts.items()],
    )
    history: dict[uuid.UUID, list[int | None]] = {issue_id: [None] * len(starts) for issue_id in counts}
    by_key = {driver.uuid(issue_id): issue_id for issue_id in counts}
    for key, start, count in driver.run(
        f"SELECT issue_id, bucket_start, count FROM issue_bucket WHERE issue_id IN ({_marks(len(by_key))}) "
        "AND bucket_start >= ?",
        (*by_key, when[-1]),
    ):
        if start in position:
            history[by_key[key]][position[start]] = count
    totals: list[int | None] = [None] * len(starts)
    distinct = [0] * len(starts)
    for start, total, count in driver.run(
        "SELECT bucket_start, sum(count), count(*) FROM issue_bucket WHERE project_id = ? AND bucket_start >= ? "
        "GROUP BY bucket_start",
        (project_id, when[-1]),
    ):
        if start in position:
            totals[position[start]], distinct[position[start]] = int(total), int(count)
    return history, totals, distinct


def snooze(session: Session, issue_id: uuid.UUID, now: datetime, until: datetime) -> bool:
    """Take the issue's spike cooldown (cymbal's SET NX EX); False if it is still snoozed."""
    driver = Driver(session)
    taken = driver.run(
        "INSERT INTO issue_spike_cooldown (issue_id, until) VALUES (?, ?) ON CONFLICT (issue_id) "
        "DO UPDATE SET until = excluded.until WHERE issue_spike_cooldown.until <= ? RETURNING issue_id",
        (driver.uuid(issue_id), driver.time(until), driver.time(now)),
    ).first()
    return taken is not None
