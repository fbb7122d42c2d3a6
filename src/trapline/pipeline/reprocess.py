"""Resolve stored events again, once the symbols their frames lacked have been uploaded.

Events often arrive before their build's source maps are uploaded. Each stored event keeps
the raw form of the frames whose symbols failed (``unresolved_frames``); ``reprocess``
resolves just those frames again, groups the event again with the project's current rules,
and, when the fingerprint changed, moves the event to the issue of its new fingerprint
(found or created as at ingestion). Fingerprint totals are recomputed from the events, so
they stay exact. Events whose frames still cannot be resolved are left as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.pipeline.batch import Item
from trapline.pipeline.exceptions import ExceptionInfo, ExceptionProperties
from trapline.pipeline.frames import Frame, RawFrame, resolve_stack
from trapline.pipeline.grouping import group
from trapline.pipeline.linking import link_issues
from trapline.pipeline.properties import RESERVED, base_output, finish_output
from trapline.pipeline.resolution import BatchResolver, FrameResolver
from trapline.pipeline.rules import load_rules
from trapline.pipeline.storage import search_text
from trapline.search import record as search_summaries
from trapline.volumes import record as volumes
from trapline.volumes.record import Counted

__all__ = ["ReprocessResult", "reprocess"]

_MANUAL = [{"type": "manual"}]


@dataclass(frozen=True)
class ReprocessResult:
    examined: int = 0
    # Events with at least one frame resolved this time.
    improved: int = 0
    # Of those, events whose fingerprint (and so, maybe, issue) changed.
    regrouped: int = 0

    def __add__(self, other: ReprocessResult) -> ReprocessResult:
        return ReprocessResult(
            self.examined + other.examined, self.improved + other.improved, self.regrouped + other.regrouped
        )


def reprocess(
    db: Database,
    resolver: FrameResolver,
    project_id: int,
    *,
    since: datetime | None = None,
    batch_size: int = 200,
) -> ReprocessResult:
    """Reprocess the project's events (since ``since``) that have unresolved frames."""
    total = ReprocessResult()
    after = 0
    while True:
        with db.session(write=False) as session:
            query = select(ExceptionEvent).where(
                ExceptionEvent.project_id == project_id,
                ExceptionEvent.unresolved_frames.is_not(None),
                ExceptionEvent.id > after,
            )
            if since is not None:
                query = query.where(ExceptionEvent.timestamp >= since)
            rows = list(session.scalars(query.order_by(ExceptionEvent.id).limit(batch_size)))
        if not rows:
            return total
        after = rows[-1].id
        total = total + _reprocess_batch(db, resolver, project_id, rows)


def _reprocess_batch(
    db: Database, resolver: FrameResolver, project_id: int, rows: Sequence[ExceptionEvent]
) -> ReprocessResult:
    # Items carrying just the failed frames, as raw stacks: what the resolver reads ahead for.
    probes = [_probe(row) for row in rows]
    symbols = resolver.for_batch(probes)
    with db.session(write=False) as session:
        rules = load_rules(session, [project_id])
    items: list[tuple[ExceptionEvent, Item]] = []
    for row in rows:
        item = _redo(row, symbols)
        if item is not None:
            items.append((row, item))
    if not items:
        return ReprocessResult(examined=len(rows))
    for row, item in items:
        # A client's fingerprint stands; a Sentry one with "{{ default }}" parts is computed again.
        manual = row.properties.get("$exception_fingerprint_record") == _MANUAL
        assert item.exception is not None
        group([item], rules)
        if manual and not item.exception.fingerprint_parts:
            # The client's fingerprint stands (already hashed if it was long).
            item.fingerprint, item.fingerprint_record, item.rule_assignee = row.fingerprint, list(_MANUAL), None
    with db.session(write=True) as session:
        symbols.save(session)
        moved = [item for row, item in items if item.fingerprint != row.fingerprint]
        link_issues(session, moved, rules)
        moves: list[tuple[str, str, datetime]] = []
        left: list[Counted] = []
        arrived: list[Counted] = []
        for row, item in items:
            if item.fingerprint != row.fingerprint:
                moves.append((row.fingerprint, cast(str, item.fingerprint), row.timestamp))
                left.append(Counted(project_id, row.fingerprint, row.timestamp))
                arrived.append(
                    Counted(project_id, cast(str, item.fingerprint), row.timestamp, row.distinct_id, row.session_id)
                )
            else:
                item.issue_id = row.issue_id
            _write(session, row, item)
        _recount(session, project_id, moves)
        volumes.remove(session.connection(), left)
        volumes.add(session.connection(), arrived)
        # The rewritten texts (resolved names replace minified ones): added to the filters and
        # intersected into the common parts, which then hold only parts every event still has.
        search_summaries.add(
            session.connection(),
            [(project_id, cast(str, item.fingerprint), search_text(item.output)) for _row, item in items],
        )
        session.commit()
    regrouped = sum(item.fingerprint != row.fingerprint for row, item in items)
    return ReprocessResult(examined=len(rows), improved=len(items), regrouped=regrouped)


def _probe(row: ExceptionEvent) -> Item:
    raws = list((row.unresolved_frames or {}).values())
    probe = Item(
        queue_id=0, project_id=row.project_id, uuid=row.uuid, timestamp=row.timestamp, distinct_id="", properties={}
    )
    probe.exception = ExceptionProperties(
        exception_list=[cast(ExceptionInfo, {"type": "", "value": "", "stacktrace": {"type": "raw", "frames": raws}})],
        fingerprint=None,
        fingerprint_parts=None,
        issue_name=None,
        issue_description=None,
        handled=False,
    )
    return probe


def _redo(row: ExceptionEvent, symbols: BatchResolver) -> Item | None:
    """The event with its failed frames resolved again, or None if none resolved better."""
    unresolved: dict[str, RawFrame] = dict(row.unresolved_frames or {})
    resolver = symbols.resolver(row.project_id)
    improved = False
    still: dict[str, RawFrame] = {}
    exception_list: list[ExceptionInfo] = []
    for exception in cast(list[ExceptionInfo], row.properties.get("$exception_list") or []):
        stack = exception.get("stacktrace")
        if stack is None or stack["type"] != "resolved":
            exception_list.append(exception)
            continue
        frames: list[Frame] = []
        for frame in stack["frames"]:
            raw = unresolved.get(frame["raw_id"])
            if raw is None:
                frames.append(frame)
                continue
            again = resolve_stack([raw], resolver).frames
            if any("resolve_failure" in new for new in again):
                still[frame["raw_id"]] = raw
                frames.append(frame)
            else:
                improved = True
                frames.extend(again)
        exception_list.append(cast(ExceptionInfo, {**exception, "stacktrace": {"type": "resolved", "frames": frames}}))
    if not improved:
        return None
    client = {key: value for key, value in row.properties.items() if key not in RESERVED}
    item = Item(
        queue_id=0,
        project_id=row.project_id,
        uuid=row.uuid,
        timestamp=row.timestamp,
        distinct_id=row.distinct_id,
        properties=client,
        exception_list=exception_list,
        unresolved_frames=still,
    )
    handled = bool(row.properties.get("$exception_handled", False))
    parts = client.get("$sentry_fingerprint")
    item.exception = ExceptionProperties(
        exception_list=exception_list,
        fingerprint=None,
        fingerprint_parts=tuple(parts) if isinstance(parts, list) and all(isinstance(p, str) for p in parts) else None,
        issue_name=client.get("$issue_name") if isinstance(client.get("$issue_name"), str) else None,
        issue_description=client.get("$issue_description")
        if isinstance(client.get("$issue_description"), str)
        else None,
        handled=handled,
    )
    releases = {**row.properties.get("$exception_releases", {}), **symbols.releases(row.project_id, exception_list)}
    item.output = base_output(client, exception_list, handled=handled, releases=releases)
    return item


def _write(session: Session, row: ExceptionEvent, item: Item) -> None:
    assert item.fingerprint is not None and item.issue_id is not None
    finish_output(
        item.output,
        fingerprint=item.fingerprint,
        proposed_fingerprint=item.proposed_fingerprint or item.fingerprint,
        record=item.fingerprint_record,
        issue_id=item.issue_id,
        errors=[],
    )
    session.execute(
        update(ExceptionEvent)
        .where(ExceptionEvent.id == row.id)
        .values(
            fingerprint=item.fingerprint,
            issue_id=item.issue_id,
            properties=item.output,
            search_text=search_text(item.output),
            unresolved_frames=dict(item.unresolved_frames) or None,
        )
    )


def _recount(session: Session, project_id: int, moves: Sequence[tuple[str, str, datetime]]) -> None:
    """Move the moved events' counts from their old fingerprints' totals to their new ones.

    Totals are adjusted, never counted again from the events: they are all-time figures, and
    retention has deleted older events they still include. first_seen stays (it is when the
    fingerprint was first seen; linking set it for a new one).
    """
    if not moves:
        return
    delta: Counter[str] = Counter()
    newest: dict[str, datetime] = {}
    for old, new, at in moves:
        delta[old] -= 1
        delta[new] += 1
        newest[new] = max(newest.get(new, at), at)
    left = sorted(set(delta) - set(newest))
    # A fingerprint events left was last seen at its newest remaining event (if any remains).
    rows = session.execute(
        select(ExceptionEvent.fingerprint, func.max(ExceptionEvent.timestamp))
        .where(ExceptionEvent.project_id == project_id, ExceptionEvent.fingerprint.in_(left))
        .group_by(ExceptionEvent.fingerprint)
    )
    remaining: dict[str, datetime] = {row[0]: row[1] for row in rows}
    for fingerprint in sorted(delta):
        values: dict[str, Any] = {"occurrences": IssueFingerprint.occurrences + delta[fingerprint]}
        if fingerprint in newest:
            at = newest[fingerprint]
            values["last_seen"] = case(
                (IssueFingerprint.last_seen.is_(None), at),
                (IssueFingerprint.last_seen < at, at),
                else_=IssueFingerprint.last_seen,
            )
        elif fingerprint in remaining:
            values["last_seen"] = remaining[fingerprint]
        session.execute(
            update(IssueFingerprint)
            .where(IssueFingerprint.project_id == project_id, IssueFingerprint.fingerprint == fingerprint)
            .values(**values)
        )
