"""Keeping the search summaries: every stored event's search text widens its fingerprint's
filter and narrows its common parts, in the storage stage's transaction. A batch writes only
the rows it changed; most batches of a known fingerprint change nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from trapline.db.upsert import dialect_insert_for
from trapline.events.models import ExceptionEvent
from trapline.search import summary
from trapline.search.models import FingerprintText

__all__ = ["add", "rebuild"]

_TEXT = cast(Table, FingerprintText.__table__)
_CHUNK = 500


def add(connection: Connection, texts: Iterable[tuple[int, str, str]]) -> None:
    """Count (project_id, fingerprint, search_text) of stored events into the summaries."""
    by_fingerprint: dict[tuple[int, str], set[str]] = defaultdict(set)
    for project_id, fingerprint, text in texts:
        by_fingerprint[(project_id, fingerprint)].add(text)
    if not by_fingerprint:
        return
    keys = sorted(by_fingerprint)
    # Rows first (a new fingerprint's is born empty), so that on PostgreSQL the read below can
    # lock every row it will merge into: two workers never widen one filter over each other.
    connection.execute(
        dialect_insert_for(connection, _TEXT).on_conflict_do_nothing(index_elements=["project_id", "fingerprint"]),
        [{"project_id": p, "fingerprint": f, "trigrams": b"", "common": None} for p, f in keys],
    )
    stored: dict[tuple[int, str], tuple[bytes, str | None]] = {}
    by_project: dict[int, list[str]] = defaultdict(list)
    for project_id, fingerprint in keys:
        by_project[project_id].append(fingerprint)
    for project_id, fingerprints in by_project.items():
        for start in range(0, len(fingerprints), _CHUNK):
            query = select(_TEXT.c.fingerprint, _TEXT.c.trigrams, _TEXT.c.common).where(
                _TEXT.c.project_id == project_id, _TEXT.c.fingerprint.in_(fingerprints[start : start + _CHUNK])
            )
            if connection.dialect.name == "postgresql":
                query = query.order_by(_TEXT.c.fingerprint).with_for_update()
            stored.update({(project_id, row[0]): (row[1], row[2]) for row in connection.execute(query)})
    changes = []
    for key in keys:
        texts_here = by_fingerprint[key]
        old_bytes, old_common = stored.get(key, (b"", None))
        old_mask = summary.from_bytes(old_bytes)
        mask = old_mask | summary.mask_of(texts_here)
        parts = frozenset.intersection(*(summary.parts_of(text) for text in texts_here))
        if old_common is not None:
            parts &= summary.parts_of(old_common)
        common = summary.joined(parts)
        if mask != old_mask or common != old_common:
            changes.append(
                {"p_project": key[0], "p_fingerprint": key[1], "p_trigrams": summary.to_bytes(mask),
                 "p_common": common}
            )  # fmt: skip
    if changes:
        connection.execute(
            update(_TEXT)
            .where(_TEXT.c.project_id == bindparam("p_project"), _TEXT.c.fingerprint == bindparam("p_fingerprint"))
            .values(trigrams=bindparam("p_trigrams"), common=bindparam("p_common")),
            changes,
        )


def rebuild(connection: Connection, project_id: int | None = None) -> None:
    """Summaries computed from the stored events (for a database that has events but no
    summaries), a bounded number of events at a time."""
    events = cast(Table, ExceptionEvent.__table__)
    statement = delete(_TEXT)
    query = select(events.c.project_id, events.c.fingerprint, events.c.search_text).order_by(
        events.c.project_id, events.c.fingerprint
    )
    if project_id is not None:
        statement = statement.where(_TEXT.c.project_id == project_id)
        query = query.where(events.c.project_id == project_id)
    connection.execute(statement)
    pending: list[tuple[int, str, str]] = []
    for row in connection.execute(query.execution_options(stream_results=True, yield_per=20_000)):
        pending.append((row[0], row[1], row[2] or ""))
        if len(pending) >= 20_000:
            add(connection, pending)
            pending = []
    add(connection, pending)
