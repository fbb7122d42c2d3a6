"""The search summaries' oracle: what a summary may hold, from the stored events' texts."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.search import summary
from trapline.search.models import FingerprintText


def assert_summaries_sound(database: Database) -> None:
    """Every fingerprint with events has a summary whose filter holds each event's trigrams
    and whose common parts each event has: a summary may say less than the truth, never
    something false."""
    texts: dict[tuple[int, str], list[str]] = defaultdict(list)
    with database.session(write=False) as session:
        for project_id, fingerprint, text in session.execute(
            select(ExceptionEvent.project_id, ExceptionEvent.fingerprint, ExceptionEvent.search_text)
        ):
            texts[(project_id, fingerprint)].append(text or "")
        rows = {
            (p, f): (summary.from_bytes(t), c)
            for p, f, t, c in session.execute(
                select(FingerprintText.project_id, FingerprintText.fingerprint, FingerprintText.trigrams,
                       FingerprintText.common)
            )
        }  # fmt: skip
    for key, events in texts.items():
        assert key in rows, f"no summary for {key}"
        mask, common = rows[key]
        assert mask & summary.mask_of(events) == summary.mask_of(events), key
        assert common is not None, key
        for part in summary.parts_of(common):
            assert all(part in summary.parts_of(text) for text in events), (key, part)
