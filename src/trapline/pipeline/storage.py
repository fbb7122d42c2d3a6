"""Store processed events and keep each fingerprint's running totals.

Events are inserted with ON CONFLICT DO NOTHING on (project, uuid): an SDK that retries a
request it already got through (a timeout after our 200) does not count its events twice,
and totals are only bumped for rows that were really inserted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
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
from trapline.pipeline.batch import Item
from trapline.search import record as search_summaries
from trapline.volumes import record as volumes
from trapline.volumes.record import Counted

__all__ = ["SEARCH_SEPARATOR", "count_drops", "search_text", "store_events"]

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


def store_events(session: Session, items: list[Item]) -> int:
    """Insert the live items' events and mark those that were new; returns how many."""
    live = [item for item in items if item.live and item.issue_id is not None]
    rows = [
        {
            "project_id": item.project_id,
            "uuid": item.uuid,
            "timestamp": item.timestamp,
            # Both are in a b-tree index, whose entries PostgreSQL caps at ~2.7 kB; PostHog
            # refuses distinct ids over 200 characters anyway. The properties keep them whole.
            "distinct_id": item.distinct_id[:_INDEXED_TEXT],
            "session_id": _text(item.output.get("$session_id"), _INDEXED_TEXT),
            "fingerprint": item.fingerprint,
            "issue_id": item.issue_id,
            "library": _text(item.output.get("$lib"), 64),
            "search_text": search_text(item.output),
            "properties": item.output,
            "unresolved_frames": dict(item.unresolved_frames) or None,
        }
        for item in live
    ]
    if not rows:
        return 0
    connection = session.connection()
    inserted = _insert_sqlite(connection, rows) if connection.dialect.name == "sqlite" else _insert(connection, rows)
    _bump_totals(session, inserted)
    _count_volumes(connection, rows, inserted)
    new = {(row[0], row[3]) for row in inserted}
    for item in live:
        key = (item.project_id, item.uuid)
        if key in new:
            item.stored = True
            new.discard(key)  # a uuid twice in one batch is stored (and counted) once
    return len(inserted)


_EVENTS = cast(Table, ExceptionEvent.__table__)
_COLUMNS = (
    "project_id", "uuid", "timestamp", "distinct_id", "session_id", "fingerprint", "issue_id", "library",
    "search_text", "properties", "unresolved_frames",
)  # fmt: skip
_SQLITE_INSERT = f"INSERT INTO exception_event ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_IN_CHUNK = 500  # bound parameters per IN (...), well under SQLite's limit


def _insert(connection: Connection, rows: list[dict[str, Any]]) -> Sequence[Any]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: exact under concurrent workers (PostgreSQL)."""
    return connection.execute(
        dialect_insert_for(connection, _EVENTS)
        .on_conflict_do_nothing(index_elements=["project_id", "uuid"])
        .returning(_EVENTS.c.project_id, _EVENTS.c.fingerprint, _EVENTS.c.timestamp, _EVENTS.c.uuid),
        rows,
    ).all()


def _insert_sqlite(connection: Connection, rows: list[dict[str, Any]]) -> list[tuple[int, str, datetime, UUID]]:
    """The same on SQLite, where the batch holds the only write lock: look up which events are
    stored already, then insert the rest through the driver (SQLAlchemy's per-value processing
    cost more than SQLite's insert)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    known: set[tuple[int, str]] = set()
    by_project: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        by_project[row["project_id"]].append(row["uuid"].hex)
    for project_id, uuids in by_project.items():
        for start in range(0, len(uuids), _IN_CHUNK):
            chunk = uuids[start : start + _IN_CHUNK]
            found = driver.execute(
                f"SELECT uuid FROM exception_event WHERE project_id = ? AND uuid IN ({', '.join('?' * len(chunk))})",
                [project_id, *chunk],
            )
            known.update((project_id, stored) for (stored,) in found)
    fresh: list[dict[str, Any]] = []
    for row in rows:
        key = (row["project_id"], row["uuid"].hex)
        if key not in known:
            known.add(key)  # a uuid twice in one batch is stored once
            fresh.append(row)
    driver.executemany(
        _SQLITE_INSERT,
        [
            (
                row["project_id"],
                row["uuid"].hex,
                sqlite_datetime(row["timestamp"]),
                row["distinct_id"],
                row["session_id"],
                row["fingerprint"],
                row["issue_id"].hex,
                row["library"],
                row["search_text"],
                orjson.dumps(row["properties"], option=orjson.OPT_NON_STR_KEYS).decode(),
                None if row["unresolved_frames"] is None else orjson.dumps(row["unresolved_frames"]).decode(),
            )
            for row in fresh
        ],
    )
    return [(row["project_id"], row["fingerprint"], row["timestamp"], row["uuid"]) for row in fresh]


def count_drops(session: Session, items: list[Item]) -> Counter[str]:
    """Add the rejected items to their project's drop counters; returns the counts by reason."""
    counts: Counter[tuple[int, str]] = Counter()
    details: dict[tuple[int, str], str | None] = {}
    for item in items:
        if item.rejected is not None:
            key = (item.project_id, item.rejected.reason)
            counts[key] += 1
            details[key] = item.rejected.detail
    if counts:
        now = utcnow()
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
                    "last_dropped_at": now,
                    "last_detail": details[(pid, why)],
                }
                for (pid, why), n in sorted(counts.items())  # one lock order for every worker
            ],
        )
    by_reason: Counter[str] = Counter()
    for (_, reason), n in counts.items():
        by_reason[reason] += n
    return by_reason


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


def _count_volumes(connection: Connection, rows: list[dict[str, Any]], inserted: Sequence[Any]) -> None:
    """Add the inserted events to their fingerprints' hourly and daily rollups."""
    if not inserted:
        return
    by_key = {(row["project_id"], row["uuid"]): row for row in rows}
    counted = []
    for project_id, fingerprint, timestamp, event_uuid in inserted:
        row = by_key[(project_id, event_uuid)]
        counted.append(Counted(project_id, fingerprint, timestamp, row["distinct_id"], row["session_id"]))
    volumes.add(connection, counted)
    search_summaries.add(connection, [(c.project_id, c.fingerprint, by_key[(c.project_id, u)]["search_text"])
                                      for c, (_, _, _, u) in zip(counted, inserted, strict=True)])  # fmt: skip


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit] if limit else text
