"""Store processed events and keep each fingerprint's running totals.

Events are inserted with ON CONFLICT DO NOTHING on (project, uuid): an SDK that retries a
request it already got through (a timeout after our 200) does not count its events twice,
and totals are only bumped for rows that were really inserted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, update
from sqlalchemy.orm import Session

from trapline.db.types import utcnow
from trapline.events.models import DroppedEvents, ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.pipeline.batch import Item
from trapline.pipeline.linking import dialect_insert

__all__ = ["SEARCH_SEPARATOR", "count_drops", "search_text", "store_events"]

# Separates the fields of search_text, so that a search token cannot match across two.
SEARCH_SEPARATOR = "\x1f"
_SEARCHED = ("$exception_types", "$exception_values", "$exception_sources", "$exception_functions")


def search_text(properties: dict[str, Any]) -> str:
    """What the issue search matches: exception types, values, sources, functions, email."""
    parts: list[str] = []
    for key in _SEARCHED:
        value = properties.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value if v is not None)
    for email in (properties.get("email"), (properties.get("$set") or {}).get("email")):
        if isinstance(email, str) and email:
            parts.append(email)
    return SEARCH_SEPARATOR.join(parts).lower()


def store_events(session: Session, items: list[Item]) -> int:
    """Insert the live items' events; returns how many were new."""
    rows = [
        {
            "project_id": item.project_id,
            "uuid": item.uuid,
            "timestamp": item.timestamp,
            "distinct_id": item.distinct_id,
            "session_id": _text(item.output.get("$session_id")),
            "fingerprint": item.fingerprint,
            "issue_id": item.issue_id,
            "library": _text(item.output.get("$lib"), 64),
            "search_text": search_text(item.output),
            "properties": item.output,
        }
        for item in items
        if item.live and item.issue_id is not None
    ]
    if not rows:
        return 0
    table = cast(Table, ExceptionEvent.__table__)
    # On the table, not the entity: the ORM's bulk insert costs more than the insert itself.
    inserted = (
        session.connection()
        .execute(
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["project_id", "uuid"])
            .returning(table.c.project_id, table.c.fingerprint, table.c.timestamp),
            rows,
        )
        .all()
    )
    _bump_totals(session, inserted)
    return len(inserted)


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
                for (pid, why), n in counts.items()
            ],
        )
    by_reason: Counter[str] = Counter()
    for (_, reason), n in counts.items():
        by_reason[reason] += n
    return by_reason


def _bump_totals(session: Session, inserted: Sequence[Any]) -> None:
    totals: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [0, None, None])
    for project_id, fingerprint, timestamp in inserted:
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


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit] if limit else text
