"""Daily usage counters, added to in the transactions that store or drop the events."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from trapline.db.upsert import dialect_insert
from trapline.pipeline.batch import DoorDrop, Item
from trapline.usage.models import STORED, UsageDay

__all__ = ["add_usage", "door_outcomes", "outcomes"]

_USAGE = cast(Table, UsageDay.__table__)


def outcomes(items: list[Item]) -> Counter[tuple[int, str]]:
    """Per project, how many of the batch's events were stored and how many dropped, by reason.

    Events that were live but not stored are retries of events stored before: counted once,
    then.
    """
    counts: Counter[tuple[int, str]] = Counter()
    for item in items:
        if item.stored:
            counts[(item.project_id, STORED)] += 1
        elif item.rejected is not None:
            counts[(item.project_id, item.rejected.reason)] += 1
    return counts


def door_outcomes(drops: Sequence[DoorDrop]) -> dict[date, Counter[tuple[int, str]]]:
    """Drops counted at the door, per project and reason, by the day capture counted them."""
    by_day: dict[date, Counter[tuple[int, str]]] = defaultdict(Counter)
    for drop in drops:
        by_day[drop.at.date()][(drop.project_id, drop.reason)] += drop.count
    return by_day


def add_usage(session: Session, counts: Counter[tuple[int, str]], day: date) -> None:
    if not counts:
        return
    insert = dialect_insert(session, _USAGE)
    session.execute(
        insert.values(
            [
                {"project_id": project_id, "day": day, "outcome": outcome, "count": n}
                for (project_id, outcome), n in sorted(counts.items())
            ]
        ).on_conflict_do_update(
            index_elements=["project_id", "day", "outcome"],
            set_={"count": _USAGE.c.count + insert.excluded.count},
        )
    )
