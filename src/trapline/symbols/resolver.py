"""Symbol-set resolution for the pipeline's resolve stage, and the stack frame cache.

For each batch, ``SymbolResolver.for_batch`` reads what the batch's JavaScript frames need in
two queries (their chunks' symbol sets, and the frames already resolved before), then
resolves frame by frame without further I/O but for downloading a source map the first time
it is needed. Parsed maps are kept between batches (an LRU bounded by size).

What resolution learns is written by ``BatchSymbols.save`` in the batch's write transaction:
new stack frames (with their source context), a placeholder symbol set for a chunk id nobody uploaded
(so the failure is remembered, and an upload for that chunk clears it), a symbol set's
failure when its upload cannot be read, and ``last_used``.

Failures are values: a frame whose symbols are missing or unusable resolves to a frame with
``resolve_failure`` set. Only the database or the object store being unreachable raises.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import orjson
from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.orm import Session

from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.db.upsert import dialect_insert_for
from trapline.ids import uuid7
from trapline.pipeline.batch import Item
from trapline.pipeline.exceptions import ExceptionInfo, ResolvedExceptions, resolve_exception_list
from trapline.pipeline.frames import (
    Frame,
    FrameContext,
    JsResolveError,
    RawFrame,
    ResolvedFrame,
    ResolvedStack,
    Resolver,
    SymbolLookup,
    mapped_frame,
    raw_frame_hash,
    resolve_stack,
    stack_lookups,
    symbol_lookup,
    unmapped_frame,
)
from trapline.symbols import platforms
from trapline.symbols.container import MAX_UNPACKED
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.symbols.proguard import ProguardMap
from trapline.symbols.sourcemaps import SourceMap

__all__ = ["DEFAULT_MAP_CACHE_BYTES", "BatchSymbols", "Blobs", "SymbolResolver"]

DEFAULT_MAP_CACHE_BYTES = 256 * 1024 * 1024  # parsed symbol sets a resolver keeps (a worker's)

# last_used drives retention; refreshing it on every use would write on every batch.
LAST_USED_REFRESH = timedelta(hours=12)
_IN_CHUNK = 500
_FRAMES: Table = cast(Table, StackFrame.__table__)
_SETS: Table = cast(Table, SymbolSet.__table__)


class Blobs(Protocol):
    """The part of the object store resolution needs."""

    def get(self, key: str) -> bytes | None: ...


@dataclass(frozen=True)
class _Set:
    id: uuid.UUID
    storage_ptr: str | None
    content_hash: str | None
    failure_reason: str | None
    last_used: datetime | None
    release: dict[str, Any] | None  # $exception_releases entry, keyed by its hash_id


@dataclass
class _Known:
    """A raw frame's resolution: from the stack frame table, or made in this batch."""

    frames: list[ResolvedFrame]
    symbol_set_id: uuid.UUID | None
    # For frames resolved in this batch: the chunk looked up.
    chunk_id: str | None = None


class SymbolResolver:
    """Resolves JavaScript frames with uploaded symbol sets; one per worker process."""

    def __init__(self, db: Database, store: Blobs, *, max_map_bytes: int = DEFAULT_MAP_CACHE_BYTES) -> None:
        self._db = db
        self._store = store
        self._max_map_bytes = max_map_bytes
        # Parsed symbol sets (source maps and the other kinds) or why they are unusable.
        self._maps: OrderedDict[tuple[uuid.UUID, str], object] = OrderedDict()
        self._map_bytes = 0
        # Pass-through frames already in the stack frame table (they never change): not
        # written again. Bounded; forgetting only costs an insert that does nothing.
        self._saved: OrderedDict[tuple[int, str, int], None] = OrderedDict()

    def for_batch(self, items: Sequence[Item]) -> BatchSymbols:
        wanted: dict[int, set[str]] = {}
        hashes: dict[int, set[str]] = {}
        seen: set[tuple[int, int]] = set()  # frame lists by id(): the items keep them alive
        for item in items:
            if not item.live or item.exception is None:
                continue
            for raw_frames in _raw_stacks(item.exception.exception_list):
                if (item.project_id, id(raw_frames)) in seen:
                    continue  # the same list again (events of one exception list share it)
                seen.add((item.project_id, id(raw_frames)))
                lookups = stack_lookups(raw_frames)  # cached per stack
                if lookups:
                    wanted.setdefault(item.project_id, set()).update(lookup.chunk_id for lookup, _ in lookups)
                    hashes.setdefault(item.project_id, set()).update(hash_id for _, hash_id in lookups)
        sets: dict[tuple[int, str], _Set] = {}
        known: dict[tuple[int, str], _Known] = {}
        if wanted:
            with self._db.session(write=False) as session:
                for project_id, refs in wanted.items():
                    sets.update(_load_sets(session, project_id, refs))
                    known.update(_load_frames(session, project_id, hashes[project_id]))
        return BatchSymbols(self, sets, known)

    def source_map(self, symbol_set: _Set) -> SourceMap | JsResolveError | None:
        """The parsed map of an uploaded set (cached), its error, or None if the object is gone."""
        assert symbol_set.storage_ptr is not None
        key = (symbol_set.id, symbol_set.storage_ptr)
        cached = self._maps.get(key)
        if cached is not None:
            self._maps.move_to_end(key)
            return cast("SourceMap | JsResolveError", cached)
        data = self._store.get(symbol_set.storage_ptr)
        if data is None:
            return None
        parsed = SourceMap.from_container(data)
        self._remember_parsed(key, parsed, len(data))
        return parsed

    def platform_symbols(self, symbol_set: _Set, kind: str, ref: str) -> platforms.Symbols | str | None:
        """The parsed symbols of an uploaded set for frames of ``kind`` (cached), why they
        cannot be used, or None if the object is gone."""
        assert symbol_set.storage_ptr is not None
        key = (symbol_set.id, f"{kind}:{symbol_set.storage_ptr}")
        cached = self._maps.get(key)
        if cached is not None:
            self._maps.move_to_end(key)
            return cast("platforms.Symbols | str", cached)
        data = self._store.get(symbol_set.storage_ptr)
        if data is None:
            return None
        parsed = platforms.read_symbols(kind, data, ref, max_size=MAX_UNPACKED)
        self._remember_parsed(key, parsed, len(data))
        return parsed

    def _remember_parsed(self, key: tuple[uuid.UUID, str], parsed: object, size: int) -> None:
        self._maps[key] = parsed
        self._map_bytes += size
        while self._map_bytes > self._max_map_bytes and len(self._maps) > 1:
            _, evicted = self._maps.popitem(last=False)
            self._map_bytes -= getattr(evicted, "size", 0)

    def remember_saved(self, key: tuple[int, str, int]) -> bool:
        """Whether a pass-through frame still needs writing; marks it written."""
        if key in self._saved:
            self._saved.move_to_end(key)
            return False
        self._saved[key] = None
        if len(self._saved) > 50_000:
            self._saved.popitem(last=False)
        return True


@dataclass
class _StackPlan:
    """How a raw stack resolved in this batch, and the writes its frames made on the way.

    Within a batch a stack resolves the same every time: a frame's resolution is fixed once its
    raw id is known (``known``, or ``new_frames`` from then on), until stored frames turn out
    outdated and leave ``known`` (``replaced``), which drops every plan. Resolving it again
    would only repeat its writes to ``failed`` and ``_release_of_frame`` (last writer wins, so
    they are replayed in order); ``used``, ``known`` and ``new_frames`` would not change.
    """

    stack: ResolvedStack
    writes: tuple[tuple[dict[tuple[int, str], Any], tuple[int, str], Any], ...]
    # len(new_frames) when remember last went through this stack's frames: until new_frames
    # grows, going through them again changes nothing.
    remembered: int = -1


@dataclass
class BatchSymbols:
    """What one batch's resolution reads, decides and then writes."""

    owner: SymbolResolver
    sets: dict[tuple[int, str], _Set]
    known: dict[tuple[int, str], _Known]
    # To write: stack frames, chunk ids nobody uploaded, sets that turned out unusable.
    new_frames: dict[tuple[int, str], _Known] = field(default_factory=dict)
    passthrough: dict[tuple[int, str, int], tuple[Frame, FrameContext | None]] = field(default_factory=dict)
    missing: dict[tuple[int, str], str] = field(default_factory=dict)
    broken: dict[uuid.UUID, str] = field(default_factory=dict)
    used: set[uuid.UUID] = field(default_factory=set)
    # Raw frames whose symbols failed, for the events to keep (and `trapline reprocess` to redo).
    failed: dict[tuple[int, str], RawFrame] = field(default_factory=dict)
    # Stored frames of a set that was deleted, whose chunk has been uploaded again: rewritten.
    replaced: set[tuple[int, str]] = field(default_factory=set)
    _release_of_frame: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # The stacks this batch resolved, by project and JSON text: the events of an issue repeat
    # their stack, and each is resolved once per batch. Bounded by the batch (dropped with it).
    _plans: dict[tuple[int, bytes], _StackPlan] = field(default_factory=dict)
    # The same by the frame list itself (the events of one exception list share its lists, see
    # exceptions._exceptions_by_json), which spares the JSON text; the list is kept, so its id
    # stays its own. Lists are not modified once read.
    _plans_of_list: dict[tuple[int, int], tuple[list[RawFrame], _StackPlan]] = field(default_factory=dict)

    def resolver(self, project_id: int) -> Resolver:
        return lambda raw: self._resolve(project_id, raw)

    def resolve_event(
        self, project_id: int, exception_list: Sequence[ExceptionInfo]
    ) -> tuple[ResolvedExceptions, dict[str, Any], dict[str, RawFrame]]:
        """One event's resolved exceptions, ``releases`` and ``unresolved``, having called
        ``remember``: what those calls with ``resolver`` would give and do, in fewer steps."""
        plans: dict[int, _StackPlan] = {}  # by id() of the event's resolved frame lists

        def stack(raw_frames: list[RawFrame]) -> ResolvedStack:
            plan = self._plan(project_id, raw_frames)
            if plan is None:  # not plain JSON: not memoised
                return resolve_stack(raw_frames, self.resolver(project_id))
            # Copies: each event gets its own frames; contexts are only read.
            frames = [cast(Frame, dict(frame)) for frame in plan.stack.frames]
            plans[id(frames)] = plan
            return ResolvedStack(frames=frames, contexts=plan.stack.contexts)

        resolved = resolve_exception_list(exception_list, stacks=stack)
        resolved = self._java_types(project_id, exception_list, resolved)
        releases = self.releases(project_id, resolved.exception_list)
        unresolved = self.unresolved(project_id, resolved.exception_list)
        self._remember(project_id, resolved, plans)
        return resolved, releases, unresolved

    def _java_types(
        self, project_id: int, raw: Sequence[ExceptionInfo], resolved: ResolvedExceptions
    ) -> ResolvedExceptions:
        """``platforms.renamed_java_types`` with this batch's mappings."""

        def mapping(map_id: str) -> ProguardMap | None:
            symbol_set = self.sets.get((project_id, map_id))
            if symbol_set is None or symbol_set.failure_reason is not None or symbol_set.storage_ptr is None:
                return None
            found = self.owner.platform_symbols(symbol_set, "java", map_id)
            return found if isinstance(found, ProguardMap) else None

        renamed = platforms.renamed_java_types(raw, resolved.exception_list, mapping)
        if renamed is None:
            return resolved
        return ResolvedExceptions(exception_list=renamed, contexts=resolved.contexts)

    def _plan(self, project_id: int, raw_frames: list[RawFrame]) -> _StackPlan | None:
        """The stack's plan, made the first time, its writes done (again); None for a stack
        that is not plain JSON."""
        same = self._plans_of_list.get((project_id, id(raw_frames)))
        if same is not None and same[0] is raw_frames:
            plan = same[1]
        else:
            try:
                text = orjson.dumps(raw_frames)
            except TypeError:
                return None
            found = self._plans.get((project_id, text))
            if found is None:
                replaced = len(self.replaced)
                writes: list[tuple[dict[tuple[int, str], Any], tuple[int, str], Any]] = []
                resolved = resolve_stack(raw_frames, lambda raw: self._resolve(project_id, raw, writes))
                found = _StackPlan(resolved, tuple(writes))
                if len(self.replaced) != replaced:
                    # Outdated stored frames were dropped from known: frames resolved from them
                    # (by this stack or by the plans) resolve differently from now on.
                    self._plans.clear()
                    self._plans_of_list.clear()
                    return found
                self._plans[(project_id, text)] = found
            plan = found
            self._plans_of_list[(project_id, id(raw_frames))] = (raw_frames, plan)
        # Doing the writes again right after making them changes nothing: last writer wins.
        for target, key, value in plan.writes:
            target[key] = value
        return plan

    def _resolve(
        self,
        project_id: int,
        raw: RawFrame,
        writes: list[tuple[dict[tuple[int, str], Any], tuple[int, str], Any]] | None = None,
    ) -> list[ResolvedFrame] | None:
        lookup = symbol_lookup(raw)
        if lookup is None:
            return None
        key = (project_id, raw_frame_hash(raw))
        stored = self.known.get(key)
        if stored is not None and _outdated(stored, self.sets.get((project_id, lookup.chunk_id))):
            del self.known[key]
            self.replaced.add(key)
        known = self.known.get(key) or self.new_frames.get(key)
        if known is None:
            symbol_set = self.sets.get((project_id, lookup.chunk_id))
            if lookup.kind == "js":
                frames = self._symbolicate(project_id, raw, lookup.chunk_id, lookup.line, lookup.column, symbol_set)
            else:
                frames = self._symbolicate_platform(project_id, raw, lookup, symbol_set)
            known = _Known(frames, symbol_set.id if symbol_set is not None else None, lookup.chunk_id)
            self.new_frames[key] = known
        if "resolve_failure" in known.frames[0].frame:
            self.failed[key] = raw
            if writes is not None:
                writes.append((self.failed, key, raw))
        symbol_set = self.sets.get((project_id, lookup.chunk_id))
        if symbol_set is not None:
            self.used.add(symbol_set.id)
            if symbol_set.release is not None and known.frames[0].frame["resolved"]:
                self._release_of_frame[key] = symbol_set.release
                if writes is not None:
                    writes.append((self._release_of_frame, key, symbol_set.release))
        return known.frames

    def _symbolicate(
        self, project_id: int, raw: RawFrame, chunk_id: str, line: int, column: int, symbol_set: _Set | None
    ) -> list[ResolvedFrame]:
        if symbol_set is None:
            self.missing[(project_id, chunk_id)] = str(JsResolveError.no_sourcemap_uploaded(chunk_id))
            return [unmapped_frame(raw, JsResolveError.no_sourcemap_uploaded(chunk_id))]
        if symbol_set.failure_reason is not None:
            return [unmapped_frame(raw, JsResolveError.from_message(symbol_set.failure_reason))]
        if symbol_set.storage_ptr is None or symbol_set.content_hash is None:
            # Nothing uploaded, or an upload not finished: the frames are resolved again
            # when it finishes (finishing clears the set's cached frames).
            return [unmapped_frame(raw, JsResolveError.no_sourcemap_uploaded(chunk_id))]
        source_map = self.owner.source_map(symbol_set)
        if source_map is None:
            return [unmapped_frame(raw, JsResolveError.no_sourcemap_uploaded(chunk_id))]
        if isinstance(source_map, JsResolveError):
            self.broken[symbol_set.id] = str(source_map)
            return [unmapped_frame(raw, source_map)]
        position = source_map.lookup(line, column)
        if position is None:
            function = str(raw.get("function", ""))
            return [unmapped_frame(raw, JsResolveError.token_not_found(function, line, column))]
        frame = mapped_frame(
            raw, line=position.line, column=position.column, source=position.source, resolved_name=position.function
        )
        return [ResolvedFrame(frame, position.context)]

    def _symbolicate_platform(
        self, project_id: int, raw: RawFrame, lookup: SymbolLookup, symbol_set: _Set | None
    ) -> list[ResolvedFrame]:
        """``_symbolicate`` for Hermes, ProGuard and native frames (``symbols/platforms.py``)."""
        if symbol_set is None:
            self.missing[(project_id, lookup.chunk_id)] = platforms.missing(lookup.kind, lookup.chunk_id)
            return platforms.failed(raw, platforms.missing(lookup.kind, lookup.chunk_id))
        if symbol_set.failure_reason is not None:
            return platforms.failed(raw, symbol_set.failure_reason)
        if symbol_set.storage_ptr is None or symbol_set.content_hash is None:
            return platforms.failed(raw, platforms.missing(lookup.kind, lookup.chunk_id))
        symbols = self.owner.platform_symbols(symbol_set, lookup.kind, lookup.chunk_id)
        if symbols is None:
            return platforms.failed(raw, platforms.missing(lookup.kind, lookup.chunk_id))
        if isinstance(symbols, str):
            self.broken[symbol_set.id] = symbols
            return platforms.failed(raw, symbols)
        return platforms.resolve(raw, lookup, symbols)

    def releases(self, project_id: int, exception_list: Sequence[ExceptionInfo]) -> dict[str, Any]:
        """``$exception_releases``: the releases of the symbol sets this event's frames used."""
        found: dict[str, Any] = {}
        if not self._release_of_frame:
            return found
        for frame in _resolved_frames(exception_list):
            release = self._release_of_frame.get((project_id, frame["raw_id"].partition("/")[0]))
            if release is not None:
                found[release["hash_id"]] = release["entry"]
        return found

    def unresolved(self, project_id: int, exception_list: Sequence[ExceptionInfo]) -> dict[str, RawFrame]:
        """The raw form of this event's frames whose symbols failed, by frame raw_id."""
        found: dict[str, RawFrame] = {}
        if not self.failed:
            return found
        for frame in _resolved_frames(exception_list):
            raw = self.failed.get((project_id, frame["raw_id"].partition("/")[0]))
            if raw is not None:
                found[frame["raw_id"]] = raw
        return found

    def remember(self, project_id: int, resolved: ResolvedExceptions) -> None:
        """Note the event's pass-through frames, with their contexts, for the frame table."""
        self._remember(project_id, resolved, {})

    def _remember(self, project_id: int, resolved: ResolvedExceptions, plans: dict[int, _StackPlan]) -> None:
        for exception in resolved.exception_list:
            stack = exception.get("stacktrace")
            if stack is None or stack["type"] != "resolved":
                continue
            plan = plans.get(id(stack["frames"]))
            if plan is not None and plan.remembered == len(self.new_frames):
                continue  # this stack's frames were noted, and nothing changed since
            for frame in stack["frames"]:
                raw_id, _, part = frame["raw_id"].partition("/")
                if (project_id, raw_id) in self.known or (project_id, raw_id) in self.new_frames:
                    continue
                key = (project_id, raw_id, int(part or 0))
                if key not in self.passthrough:
                    self.passthrough[key] = (frame, resolved.contexts.get(frame["raw_id"]))
            if plan is not None:
                plan.remembered = len(self.new_frames)

    def save(self, session: Session) -> None:
        """Write what the batch learned, in the batch's write transaction."""
        connection = session.connection()
        placeholder_ids = _create_placeholders(connection, self.missing)
        now = utcnow()
        for set_id, reason in self.broken.items():
            connection.execute(
                update(_SETS)
                .where(_SETS.c.id == set_id, _SETS.c.failure_reason.is_(None))
                .values(failure_reason=reason)
            )
        stale = [
            s.id
            for s in self.sets.values()
            if s.id in self.used and (s.last_used is None or now - s.last_used > LAST_USED_REFRESH)
        ]
        if stale:
            connection.execute(update(_SETS).where(_SETS.c.id.in_(stale)).values(last_used=now))
        for project_id, raw_id in sorted(self.replaced):
            connection.execute(delete(_FRAMES).where(_FRAMES.c.project_id == project_id, _FRAMES.c.raw_id == raw_id))
        # One lock order for every worker: two batches inserting the same new frames in different
        # orders each wait on the other's unique-index entry (a deadlock on PostgreSQL).
        rows = sorted(self._frame_rows(placeholder_ids, now), key=_frame_key)
        if rows:
            connection.execute(
                dialect_insert_for(connection, _FRAMES).on_conflict_do_nothing(
                    index_elements=["project_id", "raw_id", "part"]
                ),
                rows,
            )

    def _frame_rows(self, placeholder_ids: dict[tuple[int, str], uuid.UUID], now: datetime) -> Iterator[dict[str, Any]]:
        for (project_id, raw_id), known in self.new_frames.items():
            set_id = known.symbol_set_id
            if set_id is None and known.chunk_id is not None:
                set_id = placeholder_ids.get((project_id, known.chunk_id))
            for part, (frame, context) in enumerate(known.frames):
                yield _frame_row(project_id, raw_id, part, frame, context, set_id, now)
        for (project_id, raw_id, part), (frame, context) in self.passthrough.items():
            if self.owner.remember_saved((project_id, raw_id, part)):
                yield _frame_row(project_id, raw_id, part, frame, context, None, now)


def _frame_key(row: dict[str, Any]) -> tuple[int, str, int]:
    return row["project_id"], row["raw_id"], row["part"]


def _outdated(stored: _Known, symbol_set: _Set | None) -> bool:
    """Whether stored frames were resolved with another set than the one the chunk has now.

    Deleting a set keeps its resolved frames (pages show their context), with no set. An upload
    for the same chunk afterwards is a new set, whose confirmation clears only its own frames:
    without this, every worker would go on answering with the deleted map.
    """
    return (
        symbol_set is not None
        and symbol_set.storage_ptr is not None
        and symbol_set.content_hash is not None
        and stored.symbol_set_id != symbol_set.id
    )


def _frame_row(
    project_id: int,
    raw_id: str,
    part: int,
    frame: Frame,
    context: FrameContext | None,
    symbol_set_id: uuid.UUID | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "project_id": project_id,
        "raw_id": raw_id,
        "part": part,
        "symbol_set_id": symbol_set_id,
        "contents": dict(frame),
        "resolved": frame["resolved"],
        "context": context,
        "created_at": now,
    }


def _create_placeholders(
    connection: Connection, missing: dict[tuple[int, str], str]
) -> dict[tuple[int, str], uuid.UUID]:
    """Record chunk ids nobody uploaded; returns every such ref's set id (ours or a racer's)."""
    if not missing:
        return {}
    now = utcnow()
    connection.execute(
        dialect_insert_for(connection, _SETS).on_conflict_do_nothing(index_elements=["project_id", "ref"]),
        [
            {"id": uuid7(), "project_id": pid, "ref": ref, "failure_reason": None, "created_at": now}
            for (pid, ref) in sorted(missing)
        ],
    )
    ids: dict[tuple[int, str], uuid.UUID] = {}
    for project_id, refs in _by_project(missing):
        for chunk in _chunks(sorted(refs)):
            rows = connection.execute(
                select(_SETS.c.ref, _SETS.c.id).where(_SETS.c.project_id == project_id, _SETS.c.ref.in_(chunk))
            )
            ids.update({(project_id, ref): set_id for ref, set_id in rows})
    return ids


def _load_sets(session: Session, project_id: int, refs: set[str]) -> dict[tuple[int, str], _Set]:
    found: dict[tuple[int, str], _Set] = {}
    for chunk in _chunks(sorted(refs)):
        for row in session.scalars(
            select(SymbolSet).where(SymbolSet.project_id == project_id, SymbolSet.ref.in_(chunk))
        ):
            release = None
            if row.release is not None:
                entry: dict[str, Any] = {
                    "id": str(row.release.id),
                    "version": row.release.version,
                    "project": row.release.project_name,
                    "timestamp": row.release.created_at.isoformat(),
                }
                if row.release.metadata_:
                    entry["metadata"] = row.release.metadata_
                release = {"hash_id": row.release.hash_id, "entry": entry}
            found[(project_id, row.ref)] = _Set(
                row.id, row.storage_ptr, row.content_hash, row.failure_reason, row.last_used, release
            )
    return found


def _load_frames(session: Session, project_id: int, hashes: set[str]) -> dict[tuple[int, str], _Known]:
    parts: dict[str, list[tuple[int, ResolvedFrame]]] = {}
    set_of: dict[str, uuid.UUID | None] = {}
    for chunk in _chunks(sorted(hashes)):
        rows = session.execute(
            select(
                StackFrame.raw_id, StackFrame.part, StackFrame.contents, StackFrame.context, StackFrame.symbol_set_id
            ).where(StackFrame.project_id == project_id, StackFrame.raw_id.in_(chunk))
        )
        for raw_id, part, contents, context, set_id in rows:
            parts.setdefault(raw_id, []).append(
                (part, ResolvedFrame(cast(Frame, contents), cast(FrameContext | None, context)))
            )
            set_of[raw_id] = set_id
    return {
        (project_id, raw_id): _Known([frame for _, frame in sorted(found, key=lambda p: p[0])], set_of[raw_id])
        for raw_id, found in parts.items()
    }


def _raw_stacks(exception_list: Sequence[ExceptionInfo]) -> Iterator[list[RawFrame]]:
    for exception in exception_list:
        stack = exception.get("stacktrace")
        if stack is not None and stack["type"] == "raw":
            yield stack["frames"]


def _resolved_frames(exception_list: Sequence[ExceptionInfo]) -> Iterator[Frame]:
    for exception in exception_list:
        stack = exception.get("stacktrace")
        if stack is not None and stack["type"] == "resolved":
            yield from stack["frames"]


def _by_project(keys: Iterable[tuple[int, str]]) -> Iterator[tuple[int, set[str]]]:
    grouped: dict[int, set[str]] = {}
    for project_id, ref in keys:
        grouped.setdefault(project_id, set()).add(ref)
    yield from grouped.items()


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
