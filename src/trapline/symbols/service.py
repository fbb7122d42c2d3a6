"""Use cases for symbol sets: the upload protocol of PostHog's CLI, listing and deleting.

Upload is three steps, so that the file itself never passes through the API: the client asks
where to put each chunk (``start_uploads``: a presigned POST per chunk that needs one), posts
the container there, and confirms with its content hash (``finish_uploads``). A chunk whose
hash is already stored is skipped; a different hash is refused unless the client says
``force`` (replace) or ``skip_on_conflict`` (keep the old one), as PostHog does.

Finishing an upload clears the set's failure and its cached stack frames: frames that failed
because the map was missing resolve again from the next event on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from trapline.db.types import utcnow
from trapline.errors import InvalidInput, NotFound
from trapline.ids import uuid7
from trapline.objects.store import ObjectStore, PresignedPost
from trapline.releases.models import Release
from trapline.symbols.checks import upload_problem
from trapline.symbols.container import MAX_UNPACKED
from trapline.symbols.models import StackFrame, SymbolSet

__all__ = [
    "UPLOAD_EXPIRES_IN",
    "ChunkUpload",
    "Started",
    "check_uploads",
    "delete_symbol_sets",
    "download_url",
    "finish_single_upload",
    "finish_uploads",
    "get_symbol_set",
    "list_query",
    "start_single_upload",
    "start_uploads",
]

# A presigned upload is valid this long: the CLI posts right after asking.
UPLOAD_EXPIRES_IN = 300
DOWNLOAD_EXPIRES_IN = 3600
LAST_USED_REFRESH = timedelta(hours=12)
_KEY_FOLDER = "symbolsets"
ORDERINGS = ("created_at", "-created_at", "ref", "-ref", "last_used", "-last_used")
STATUSES = ("all", "valid", "invalid")


@dataclass(frozen=True)
class ChunkUpload:
    """One chunk a client wants to upload."""

    chunk_id: str
    release_id: str | None
    content_hash: str | None
    content_length: int | None = None


@dataclass(frozen=True)
class Started:
    symbol_set_id: uuid.UUID
    presigned_url: PresignedPost


# --- reading -------------------------------------------------------------------------------


def get_symbol_set(session: Session, project_id: int, set_id: str) -> SymbolSet:
    try:
        parsed = uuid.UUID(set_id)
    except ValueError:
        raise NotFound() from None
    found = session.scalar(select(SymbolSet).where(SymbolSet.project_id == project_id, SymbolSet.id == parsed))
    if found is None:
        raise NotFound()
    return found


def download_url(store: ObjectStore, row: SymbolSet) -> str:
    """A presigned URL for the set's uploaded file, valid for an hour."""
    if row.storage_ptr is None or row.content_hash is None:
        raise NotFound("Symbol set has no uploaded file.")
    return store.presigned_get(row.storage_ptr, expires_in=DOWNLOAD_EXPIRES_IN)


def list_query(
    project_id: int, *, ref: str | None, search: str | None, status: str | None, order_by: str | None
) -> Select[SymbolSet]:
    """The symbol sets of a project, filtered and ordered as PostHog's list is."""
    stmt = select(SymbolSet).where(SymbolSet.project_id == project_id)
    if ref:
        stmt = stmt.where(SymbolSet.ref == ref)
    if search:
        pattern = f"%{search.lower()}%"
        release_matches = (
            select(Release.id)
            .where(
                Release.project_id == project_id,
                or_(
                    func.lower(Release.version).like(pattern),
                    func.lower(Release.project_name).like(pattern),
                    func.lower(Release.metadata_["git"]["commit_id"].as_string()).like(pattern),
                ),
            )
            .scalar_subquery()
        )
        stmt = stmt.where(or_(func.lower(SymbolSet.ref).like(pattern), SymbolSet.release_id.in_(release_matches)))
    status = status or "all"
    if status not in STATUSES:
        raise InvalidInput(f'"{status}" is not a valid choice.', code="invalid_choice", attr="status")
    if status == "valid":
        stmt = stmt.where(SymbolSet.storage_ptr.is_not(None))
    elif status == "invalid":
        stmt = stmt.where(SymbolSet.storage_ptr.is_(None))
    order_by = order_by or "-created_at"
    if order_by not in ORDERINGS:
        raise InvalidInput(f'"{order_by}" is not a valid choice.', code="invalid_choice", attr="order_by")
    column = getattr(SymbolSet, order_by.lstrip("-"))
    ordered = column.desc().nulls_last() if order_by.startswith("-") else column.asc().nulls_last()
    return stmt.order_by(ordered, SymbolSet.id)


# --- the bulk upload protocol ----------------------------------------------------------------


def start_uploads(
    session: Session,
    store: ObjectStore,
    project_id: int,
    chunks: Sequence[ChunkUpload],
    *,
    force: bool,
    skip_on_conflict: bool,
    max_size: int,
) -> dict[str, Started]:
    """Where to upload each chunk that needs it; chunks left out need no upload."""
    plan = _plan(session, project_id, chunks, force=force, skip_on_conflict=skip_on_conflict, max_size=max_size)
    started: dict[str, Started] = {}
    for chunk, row in plan:
        if row is None:
            row = SymbolSet(id=uuid7(), project_id=project_id, ref=chunk.chunk_id)
            session.add(row)
        if chunk.release_id is not None and row.release_id is None:
            row.release_id = uuid.UUID(chunk.release_id)
        # A new object for every upload: a reader of the old one is never handed half a file.
        row.storage_ptr = f"{_KEY_FOLDER}/{uuid7()}"
        row.content_hash = None
        started[chunk.chunk_id] = Started(
            row.id, store.presigned_post(row.storage_ptr, max_size=max_size, expires_in=UPLOAD_EXPIRES_IN)
        )
    session.flush()
    return started


def check_uploads(
    session: Session,
    project_id: int,
    chunks: Sequence[ChunkUpload],
    *,
    force: bool,
    skip_on_conflict: bool,
    max_size: int,
) -> list[str]:
    """The chunk ids ``start_uploads`` would hand out URLs for (nothing is written but last_used)."""
    plan = _plan(session, project_id, chunks, force=force, skip_on_conflict=skip_on_conflict, max_size=max_size)
    return [chunk.chunk_id for chunk, _ in plan]


def finish_uploads(session: Session, store: ObjectStore, project_id: int, hashes: Any, *, max_size: int) -> None:
    """Confirm uploads: each set's object must exist and be within the size limit."""
    if hashes is None:
        raise InvalidInput("content_hashes are required", code="content_hashes_required", attr="content_hashes")
    if not isinstance(hashes, dict):
        raise InvalidInput("content_hashes must be an object", attr="content_hashes")
    if not hashes:
        return
    ids = _uuids(hashes.keys())
    rows = {
        row.id: row
        for row in session.scalars(select(SymbolSet).where(SymbolSet.project_id == project_id, SymbolSet.id.in_(ids)))
    }
    unknown = [str(set_id) for set_id in ids if set_id not in rows]
    if unknown:
        raise InvalidInput(f"Unknown symbol set IDs: {', '.join(unknown)}", code="symbol_set_not_found")
    for set_id in ids:
        row = rows[set_id]
        _confirm(session, store, row, str(hashes[str(set_id)]), max_size=max_size, overwrite=True)


def start_single_upload(
    session: Session,
    store: ObjectStore,
    project_id: int,
    chunk_id: str | None,
    release_id: str | None,
    *,
    max_size: int,
) -> Started:
    """The deprecated one-chunk start: always (re)uploads."""
    if not chunk_id:
        raise InvalidInput("chunk_id query parameter is required", attr="chunk_id")
    if "\x00" in chunk_id or "\x00" in (release_id or ""):
        raise InvalidInput("Null characters are not allowed.", code="null_characters_not_allowed", attr="chunk_id")
    chunk = ChunkUpload(chunk_id=chunk_id, release_id=release_id or None, content_hash=None)
    started = start_uploads(session, store, project_id, [chunk], force=True, skip_on_conflict=False, max_size=max_size)
    return started[chunk_id]


def finish_single_upload(
    session: Session, store: ObjectStore, row: SymbolSet, content_hash: Any, *, max_size: int
) -> None:
    if not content_hash:
        raise InvalidInput("content_hash is required", code="content_hash_required", attr="content_hash")
    # The deprecated path stores the hash only if none is set yet.
    _confirm(session, store, row, str(content_hash), max_size=max_size, overwrite=False)


def delete_symbol_sets(session: Session, store: ObjectStore, rows: Sequence[SymbolSet]) -> int:
    """Delete sets with their unresolved frames (resolved ones stay: events show them)."""
    keys = [row.storage_ptr for row in rows if row.storage_ptr]
    ids = [row.id for row in rows]
    if not ids:
        return 0
    session.execute(delete(StackFrame).where(StackFrame.symbol_set_id.in_(ids), StackFrame.resolved.is_(False)))
    session.execute(delete(SymbolSet).where(SymbolSet.id.in_(ids)))
    session.commit()
    # After the commit: an object left behind by a crash here costs space, never a dangling row.
    for key in keys:
        store.delete(key)
    return len(ids)


# --- rules -----------------------------------------------------------------------------------


def _plan(
    session: Session,
    project_id: int,
    chunks: Sequence[ChunkUpload],
    *,
    force: bool,
    skip_on_conflict: bool,
    max_size: int,
) -> list[tuple[ChunkUpload, SymbolSet | None]]:
    """Validate a bulk request and decide, chunk by chunk, which need an upload (PostHog's order)."""
    if force and skip_on_conflict:
        raise InvalidInput("force and skip_on_conflict cannot both be true", code="invalid_conflict_handling")
    ids = [chunk.chunk_id for chunk in chunks]
    if len(set(ids)) != len(ids) or not all(ids):
        raise InvalidInput("chunk ids must be unique and non-empty", code="invalid_chunk_ids")
    _check_releases(session, project_id, {chunk.release_id for chunk in chunks if chunk.release_id is not None})
    for chunk in chunks:
        if chunk.content_length is not None and chunk.content_length > max_size:
            raise InvalidInput(
                f"Symbol set {chunk.chunk_id} is {chunk.content_length} bytes, over the {max_size}-byte limit",
                code="file_too_large",
            )
    existing = {
        row.ref: row
        for row in session.scalars(select(SymbolSet).where(SymbolSet.project_id == project_id, SymbolSet.ref.in_(ids)))
    }
    now = utcnow()
    plan: list[tuple[ChunkUpload, SymbolSet | None]] = []
    for chunk in chunks:
        row = existing.get(chunk.chunk_id)
        if row is None:
            plan.append((chunk, None))
            continue
        if chunk.release_id is not None and row.release_id is not None and str(row.release_id) != chunk.release_id:
            raise InvalidInput(
                f"Symbol set {chunk.chunk_id} already belongs to release {row.release_id}", code="release_id_mismatch"
            )
        if row.last_used is None or now - row.last_used > LAST_USED_REFRESH:
            row.last_used = now
        if _needs_upload(row, chunk, force=force, skip_on_conflict=skip_on_conflict):
            plan.append((chunk, row))
    return plan


def _needs_upload(row: SymbolSet, chunk: ChunkUpload, *, force: bool, skip_on_conflict: bool) -> bool:
    if chunk.content_hash is None:
        if row.content_hash is not None and not force:
            raise InvalidInput(
                f"Symbol set {chunk.chunk_id} was uploaded with a content hash; send one to replace it",
                code="content_hash_required",
            )
        return True  # nothing to compare: a restarted upload, or a placeholder waiting for one
    if row.content_hash is None:
        return True  # started before but never finished
    if row.content_hash == chunk.content_hash:
        return False  # already there
    if force:
        return True
    if skip_on_conflict:
        return False
    raise InvalidInput(
        f"Symbol set {chunk.chunk_id} was uploaded with different content; pass force to replace it "
        "or skip_on_conflict to keep it",
        code="content_hash_mismatch",
    )


def _check_releases(session: Session, project_id: int, release_ids: set[str]) -> None:
    parsed = []
    for release_id in release_ids:
        try:
            parsed.append(uuid.UUID(release_id))
        except ValueError:
            raise InvalidInput(f"Invalid release id: {release_id}", code="invalid_release_id") from None
    if parsed:
        found = set(session.scalars(select(Release.id).where(Release.project_id == project_id, Release.id.in_(parsed))))
        missing = [str(r) for r in parsed if r not in found]
        if missing:
            raise InvalidInput(f"Release not found: {', '.join(missing)}", code="invalid_release_id")


def _confirm(
    session: Session, store: ObjectStore, row: SymbolSet, content_hash: str, *, max_size: int, overwrite: bool
) -> None:
    if row.storage_ptr is None:
        raise InvalidInput(f"Symbol set {row.id} has no upload in progress", code="file_not_found")
    size = store.size(row.storage_ptr)
    if size is None:
        raise InvalidInput(f"The file of symbol set {row.id} was not uploaded", code="file_not_found")
    if size == 0 or size > max_size:
        _drop(session, store, row)
        raise InvalidInput(
            f"The file of symbol set {row.id} is {size} bytes; it must be 1 to {max_size} bytes", code="file_too_large"
        )
    data = store.get(row.storage_ptr)
    problem = None if data is None else upload_problem(data, max_unpacked=MAX_UNPACKED)
    if problem is not None:
        _drop(session, store, row)
        detail = f"The file of symbol set {row.id} is not a usable symbol set: {problem}"
        raise InvalidInput(detail, code="invalid_file")
    if overwrite or row.content_hash is None:
        row.content_hash = content_hash
    row.failure_reason = None
    # Frames cached while the map was missing (or another one was there) resolve again.
    session.execute(delete(StackFrame).where(StackFrame.symbol_set_id == row.id))


def _drop(session: Session, store: ObjectStore, row: SymbolSet) -> None:
    """Remove an upload that cannot be used; the set goes even though the request fails, so
    the commit comes before the error."""
    key = row.storage_ptr
    session.delete(row)
    session.commit()
    if key is not None:
        store.delete(key)


def _uuids(values: Any) -> list[uuid.UUID]:
    parsed = []
    for value in values:
        try:
            parsed.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidInput(f"Unknown symbol set IDs: {value}", code="symbol_set_not_found") from None
    return parsed
