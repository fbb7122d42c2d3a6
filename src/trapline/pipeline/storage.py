"""Store processed events and keep each fingerprint's running totals.

Events are inserted with ON CONFLICT DO NOTHING on (project, uuid): an SDK that retries a
request it already got through (a timeout after our 200) does not count its events twice,
and totals are only bumped for rows that were really inserted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import Connection, Table, bindparam, case, update
from sqlalchemy.orm import Session

from trapline.db.types import sqlite_datetime, utcnow
from trapline.db.upsert import dialect_insert, dialect_insert_for
from trapline.events.models import DroppedEvents, ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.pipeline.batch import DoorDrop, Item
from trapline.search import record as search_summaries
from trapline.volumes import record as volumes
from trapline.volumes.record import Counted

__all__ = ["SEARCH_SEPARATOR", "Prepared", "count_drops", "prepare_rows", "search_text", "store_events"]

# Separates the fields of search_text, so that a search token cannot match across two.
SEARCH_SEPARATOR = "\x1f"
_INDEXED_TEXT = 200
_SEARCHED = ("$exception_types", "$exception_values", "$exception_sources", "$exception_functions")


def search_text(properties: dict[str, Any]) -> str:
    """What the issue search matches: exception types, values, sources, functions, email."""
    parts: list[str] = []
    for key in _SEARCHED:
        value = properties.get(key)
        if isinstance(value, list):
            # The pipeline's own lists hold strings; a client's may hold anything.
            parts.extend(v if type(v) is str else str(v) for v in value if v is not None)
    for email in (properties.get("email"), (properties.get("$set") or {}).get("email")):
        if isinstance(email, str) and email:
            parts.append(email)
    return SEARCH_SEPARATOR.join(parts).lower()


@dataclass(frozen=True, slots=True)
class Prepared:
    """What storing one event writes that linking leaves alone."""

    distinct_id: str
    session_id: str | None
    library: str | None
    search_text: str
    # On SQLite: the row's values up to the issue, and the properties as UTF-8 JSON without
    # "$exception_issue_id" (which linking decides) and without their closing brace; the
    # insert appends the issue (``_SQLITE_INSERT``).
    sqlite_values: tuple[Any, ...] | None = None
    properties_head: bytes | None = None


def prepare_rows(items: list[Item], *, sqlite: bool) -> list[Prepared | None]:
    """Each live, grouped event's stored values, computed before the write transaction: on
    SQLite one transaction writes at a time, and capture's requests wait while a worker
    stores its batch, so the worker builds and serialises its rows before it takes the lock.
    None for the others. Grouping's properties must be in the output already."""
    prepared: list[Prepared | None] = []
    for item in items:
        if not item.live or item.fingerprint is None:
            prepared.append(None)
            continue
        # Both are in a b-tree index, whose entries PostgreSQL caps at ~2.7 kB; PostHog
        # refuses distinct ids over 200 characters anyway. The properties keep them whole.
        distinct_id = item.distinct_id[:_INDEXED_TEXT]
        session_id = _text(item.output.get("$session_id"), _INDEXED_TEXT)
        library = _text(item.output.get("$lib"), 64)
        text = search_text(item.output)
        if not sqlite:
            prepared.append(Prepared(distinct_id, session_id, library, text))
            continue
        values = (
            item.project_id,
            item.uuid.hex,
            sqlite_datetime(item.timestamp),
            distinct_id,
            session_id,
            item.fingerprint,
            library,
            text,
            orjson.dumps(item.unresolved_frames).decode() if item.unresolved_frames else None,
        )
        # The output always has keys ("$exception_list" at least): the issue follows a comma.
        head = orjson.dumps(item.output, option=orjson.OPT_NON_STR_KEYS)[:-1]
        prepared.append(Prepared(distinct_id, session_id, library, text, values, head))
    return prepared


def store_events(session: Session, items: list[Item], prepared: Sequence[Prepared | None]) -> int:
    """Insert the live items' events (``prepared``: ``prepare_rows``, then linked) and mark
    those that were new; returns how many."""
    live: list[tuple[Item, Prepared]] = []
    for item, ready in zip(items, prepared, strict=True):
        if item.live and item.issue_id is not None:
            assert ready is not None, "an event was linked without being prepared"
            live.append((item, ready))
    if not live:
        return 0
    connection = session.connection()
    inserted = _insert_sqlite(connection, live) if connection.dialect.name == "sqlite" else _insert(connection, live)
    _bump_totals(session, inserted)
    _count_volumes(connection, live, inserted)
    new = {(row[0], row[3]) for row in inserted}
    for item, _ready in live:
        key = (item.project_id, item.uuid)
        if key in new:
            item.stored = True
            new.discard(key)  # a uuid twice in one batch is stored (and counted) once
    return len(inserted)


_EVENTS = cast(Table, ExceptionEvent.__table__)
_COLUMNS = (
    "project_id", "uuid", "timestamp", "distinct_id", "session_id", "fingerprint", "library", "search_text",
    "unresolved_frames", "issue_id", "properties",
)  # fmt: skip
# The properties are the prepared head (bytes, read as the UTF-8 text they are) and linking's
# tail, joined by SQLite: no copy of a large event's JSON in Python while the lock is held.
_SQLITE_INSERT = (
    f"INSERT INTO exception_event ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))}, CAST(? AS TEXT) || ?)"
)
_IN_CHUNK = 500  # bound parameters per IN (...), well under SQLite's limit


def _insert(connection: Connection, live: list[tuple[Item, Prepared]]) -> Sequence[Any]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: exact under concurrent workers (PostgreSQL)."""
    rows = [
        {
            "project_id": item.project_id,
            "uuid": item.uuid,
            "timestamp": item.timestamp,
            "distinct_id": ready.distinct_id,
            "session_id": ready.session_id,
            "fingerprint": item.fingerprint,
            "issue_id": item.issue_id,
            "library": ready.library,
            "search_text": ready.search_text,
            "properties": item.output,
            "unresolved_frames": dict(item.unresolved_frames) or None,
        }
        for item, ready in live
    ]
    return connection.execute(
        dialect_insert_for(connection, _EVENTS)
        .on_conflict_do_nothing(index_elements=["project_id", "uuid"])
        .returning(_EVENTS.c.project_id, _EVENTS.c.fingerprint, _EVENTS.c.timestamp, _EVENTS.c.uuid),
        rows,
    ).all()


def _insert_sqlite(connection: Connection, live: list[tuple[Item, Prepared]]) -> list[tuple[int, str, datetime, UUID]]:
    """The same on SQLite, where the batch holds the only write lock: look up which events are
    stored already, then insert the rest through the driver (SQLAlchemy's per-value processing
    cost more than SQLite's insert), from the values ``prepare_rows`` built."""
    driver = connection.connection.driver_connection
    assert driver is not None
    known: set[tuple[int, str]] = set()
    by_project: dict[int, list[str]] = defaultdict(list)
    for _item, ready in live:
        assert ready.sqlite_values is not None
        by_project[ready.sqlite_values[0]].append(ready.sqlite_values[1])
    for project_id, uuids in by_project.items():
        for start in range(0, len(uuids), _IN_CHUNK):
            chunk = uuids[start : start + _IN_CHUNK]
            found = driver.execute(
                f"SELECT uuid FROM exception_event WHERE project_id = ? AND uuid IN ({', '.join('?' * len(chunk))})",
                [project_id, *chunk],
            )
            known.update((project_id, stored) for (stored,) in found)
    fresh: list[tuple[Item, tuple[Any, ...]]] = []
    for item, ready in live:
        values = cast(tuple[Any, ...], ready.sqlite_values)
        key = (values[0], values[1])
        if key not in known:
            known.add(key)  # a uuid twice in one batch is stored once
            tail = f',"$exception_issue_id":"{item.issue_id}"}}'
            fresh.append((item, (*values, cast(UUID, item.issue_id).hex, ready.properties_head, tail)))
    driver.executemany(_SQLITE_INSERT, [values for _item, values in fresh])
    return [(item.project_id, cast(str, item.fingerprint), item.timestamp, item.uuid) for item, _values in fresh]


def count_drops(session: Session, items: list[Item], door: Sequence[DoorDrop] = ()) -> Counter[str]:
    """Add the rejected items, and the drops counted at the door, to their project's drop
    counters; returns the items' counts by reason."""
    counts: Counter[tuple[int, str]] = Counter()
    details: dict[tuple[int, str], str | None] = {}
    last: dict[tuple[int, str], datetime] = {}
    now = utcnow()
    for item in items:
        if item.rejected is not None:
            key = (item.project_id, item.rejected.reason)
            counts[key] += 1
            details[key], last[key] = item.rejected.detail, now
    for drop in door:
        key = (drop.project_id, drop.reason)
        counts[key] += drop.count
        details[key], last[key] = drop.detail, max(last.get(key, drop.at), drop.at)
    if counts:
        insert = dialect_insert(session, DroppedEvents)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["project_id", "reason"],
                set_={
                    "count": DroppedEvents.count + insert.excluded.count,
                    "last_dropped_at": insert.excluded.last_dropped_at,
                    "last_detail": insert.excluded.last_detail,
                },
            ),
            [
                {
                    "project_id": pid,
                    "reason": why,
                    "count": n,
                    "last_dropped_at": last[(pid, why)],
                    "last_detail": details[(pid, why)],
                }
                for (pid, why), n in sorted(counts.items())  # one lock order for every worker
            ],
        )
    return Counter(item.rejected.reason for item in items if item.rejected is not None)


def _bump_totals(session: Session, inserted: Sequence[Any]) -> None:
    totals: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [0, None, None])
    for project_id, fingerprint, timestamp, _uuid in inserted:
        entry = totals[(project_id, fingerprint)]
        entry[0] += 1
        entry[1] = timestamp if entry[1] is None or timestamp < entry[1] else entry[1]
        entry[2] = timestamp if entry[2] is None or timestamp > entry[2] else entry[2]
    if not totals:
        return
    table = cast(Table, IssueFingerprint.__table__)
    # Core executemany: one statement, many parameter sets (ORM bulk updates want primary keys).
    session.connection().execute(
        update(table)
        .where(table.c.project_id == bindparam("p_project_id"), table.c.fingerprint == bindparam("p_fingerprint"))
        .values(
            occurrences=table.c.occurrences + bindparam("p_count"),
            first_seen=case(
                (table.c.first_seen.is_(None), bindparam("p_first")),
                (table.c.first_seen > bindparam("p_first"), bindparam("p_first")),
                else_=table.c.first_seen,
            ),
            last_seen=case(
                (table.c.last_seen.is_(None), bindparam("p_last")),
                (table.c.last_seen < bindparam("p_last"), bindparam("p_last")),
                else_=table.c.last_seen,
            ),
        ),
        [
            {"p_project_id": pid, "p_fingerprint": fp, "p_count": n, "p_first": first, "p_last": last}
            for (pid, fp), (n, first, last) in sorted(totals.items())  # one lock order for every worker
        ],
    )


def _count_volumes(connection: Connection, live: list[tuple[Item, Prepared]], inserted: Sequence[Any]) -> None:
    """Add the inserted events to their fingerprints' hourly and daily rollups."""
    if not inserted:
        return
    by_key = {(item.project_id, item.uuid): ready for item, ready in live}
    counted = []
    texts = []
    for project_id, fingerprint, timestamp, event_uuid in inserted:
        ready = by_key[(project_id, event_uuid)]
        counted.append(Counted(project_id, fingerprint, timestamp, ready.distinct_id, ready.session_id))
        texts.append((project_id, fingerprint, ready.search_text))
    volumes.add(connection, counted)
    search_summaries.add(connection, texts)


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit] if limit else text
