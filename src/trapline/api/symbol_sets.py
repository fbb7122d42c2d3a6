"""``/error_tracking/symbol_sets``: uploaded source maps, and the upload protocol of PostHog's CLI."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Query, Response

from trapline.api.deps import DiskRoom, ObjectStoreDep, ReadProject, SessionDep, SettingsDep, WriteProject
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.releases import serialize as release_out
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.symbol_sets import (
    BulkDelete,
    BulkFinish,
    BulkUpload,
    CheckedUploads,
    DeletedOut,
    DownloadOut,
    FinishUpload,
    SingleStarted,
    StartedUploads,
    SuccessOut,
    SymbolSetOut,
)
from trapline.db.types import storable_text
from trapline.errors import InvalidInput, NotFound
from trapline.symbols import service
from trapline.symbols.models import SymbolSet

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/symbol_sets", tags=["error_tracking"])
RESOURCE = "symbol_sets"
_ERRORS = error_responses(*STANDARD_ERRORS)
# Uploads take disk space: below the watermark they are refused (DiskRoom).
_UPLOAD_ERRORS = error_responses(*STANDARD_ERRORS, 503)
# PostHog pages symbol sets at most 100 at a time.
MAX_LIMIT = 100


def serialize(row: SymbolSet) -> dict[str, Any]:
    return {
        "id": row.id,
        "ref": row.ref,
        "team_id": row.project_id,
        "created_at": row.created_at,
        "last_used": row.last_used,
        "failure_reason": row.failure_reason,
        "has_uploaded_file": row.storage_ptr is not None,
        "release": release_out(row.release) if row.release is not None else None,
    }


def _chunks(body: BulkUpload) -> list[service.ChunkUpload]:
    chunks = [
        service.ChunkUpload(s.chunk_id, s.release_id or None, s.content_hash or None, s.content_length)
        for s in body.symbol_sets or []
    ]
    # Older CLIs name chunks without hashes, all of one release.
    chunks += [service.ChunkUpload(chunk_id, body.release_id or None, None) for chunk_id in body.chunk_ids or []]
    return chunks


@router.get(
    "", name=f"error_tracking_{RESOURCE}_list", response_model=Page[SymbolSetOut], responses=_ERRORS,
    summary="List symbol sets",
)  # fmt: skip
def list_(
    project: ReadProject,
    session: SessionDep,
    page: PageParamsDep,
    ref: Annotated[str | None, Query(description="Exactly this chunk id.")] = None,
    search: Annotated[str | None, Query(description="In the ref, or the release's version, project or commit.")] = None,
    status: Annotated[str | None, Query(description="all (default), valid (uploaded) or invalid.")] = None,
    order_by: Annotated[str | None, Query(description="±created_at (default -created_at), ±ref, ±last_used.")] = None,
) -> dict[str, Any]:
    # Stored text never holds NUL (PostgreSQL cannot): searched for, it is U+FFFD, as stored.
    ref, search = (None if v is None else storable_text(v) for v in (ref, search))
    stmt = service.list_query(project.id, ref=ref, search=search, status=status, order_by=order_by)
    return paginate(session, stmt, dataclasses.replace(page, limit=min(page.limit, MAX_LIMIT)), serialize)


@router.post(
    "/bulk_start_upload", name=f"error_tracking_{RESOURCE}_bulk_start_upload_create", status_code=201,
    response_model=StartedUploads, responses=_UPLOAD_ERRORS, summary="Get upload URLs for symbol sets",
    description="One presigned POST per chunk that needs uploading; chunks already uploaded with the same "
    "content hash are left out of id_map.",
)  # fmt: skip
def bulk_start_upload(
    project: WriteProject,
    _room: DiskRoom,
    session: SessionDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
    body: BulkUpload,
) -> dict[str, Any]:
    started = service.start_uploads(
        session, store, project.id, _chunks(body), force=body.force, skip_on_conflict=body.skip_on_conflict,
        max_size=settings.object_upload_max_size,
    )  # fmt: skip
    session.commit()
    return {
        "id_map": {
            chunk_id: {"symbol_set_id": s.symbol_set_id, "presigned_url": dataclasses.asdict(s.presigned_url)}
            for chunk_id, s in started.items()
        }
    }


@router.post(
    "/bulk_check_upload", name=f"error_tracking_{RESOURCE}_bulk_check_upload_create", response_model=CheckedUploads,
    responses=_ERRORS, summary="Which symbol sets need uploading",
)  # fmt: skip
def bulk_check_upload(project: WriteProject, session: SessionDep, settings: SettingsDep, body: BulkUpload) -> Any:
    chunk_ids = service.check_uploads(
        session, project.id, _chunks(body), force=body.force, skip_on_conflict=body.skip_on_conflict,
        max_size=settings.object_upload_max_size,
    )  # fmt: skip
    session.commit()  # last_used of the chunks that are there
    return {"chunk_ids_to_upload": chunk_ids}


@router.post(
    "/bulk_finish_upload", name=f"error_tracking_{RESOURCE}_bulk_finish_upload_create", status_code=201,
    response_model=SuccessOut, responses=_UPLOAD_ERRORS, summary="Confirm uploaded symbol sets",
)  # fmt: skip
def bulk_finish_upload(
    project: WriteProject,
    _room: DiskRoom,
    session: SessionDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
    body: BulkFinish,
) -> dict[str, Any]:
    service.finish_uploads(session, store, project.id, body.content_hashes, max_size=settings.object_upload_max_size)
    session.commit()
    return {"success": True}


@router.post(
    "/bulk_delete", name=f"error_tracking_{RESOURCE}_bulk_delete_create", response_model=DeletedOut,
    responses=_ERRORS, summary="Delete symbol sets",
)  # fmt: skip
def bulk_delete(project: WriteProject, session: SessionDep, store: ObjectStoreDep, body: BulkDelete) -> dict[str, Any]:
    if body.ids is None:
        raise InvalidInput("ids is required", attr="ids")
    if not isinstance(body.ids, list):
        raise InvalidInput("ids must be a list", attr="ids")
    rows = []
    for value in body.ids:
        try:
            rows.append(service.get_symbol_set(session, project.id, str(value)))
        except NotFound:
            continue  # already gone, or never ours: nothing to delete
    return {"deleted": service.delete_symbol_sets(session, store, rows)}


@router.post(
    "/start_upload", name=f"error_tracking_{RESOURCE}_start_upload_create", status_code=201,
    response_model=SingleStarted, responses=_UPLOAD_ERRORS, summary="Get an upload URL for one symbol set (deprecated)",
)  # fmt: skip
def start_upload(
    project: WriteProject,
    _room: DiskRoom,
    session: SessionDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
    chunk_id: Annotated[str | None, Query()] = None,
    release_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    started = service.start_single_upload(
        session, store, project.id, chunk_id, release_id, max_size=settings.object_upload_max_size
    )
    session.commit()
    return {"presigned_url": dataclasses.asdict(started.presigned_url), "symbol_set_id": started.symbol_set_id}


@router.get(
    "/{id}", name=f"error_tracking_{RESOURCE}_retrieve", response_model=SymbolSetOut, responses=_ERRORS,
    summary="Retrieve a symbol set",
)  # fmt: skip
def retrieve(id: str, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    return serialize(service.get_symbol_set(session, project.id, id))


def _unchanged(id: str, project: WriteProject, session: SessionDep) -> dict[str, Any]:
    # Kept for PostHog compatibility: updates change nothing.
    return serialize(service.get_symbol_set(session, project.id, id))


for _method in ("PUT", "PATCH"):
    router.add_api_route(
        "/{id}", _unchanged, methods=[_method], response_model=SymbolSetOut, responses=_ERRORS,
        name=f"error_tracking_{RESOURCE}_{'update' if _method == 'PUT' else 'partial_update'}", include_in_schema=False,
    )  # fmt: skip


@router.delete(
    "/{id}", name=f"error_tracking_{RESOURCE}_destroy", status_code=204, response_class=Response, responses=_ERRORS,
    summary="Delete a symbol set",
)  # fmt: skip
def destroy(id: str, project: WriteProject, session: SessionDep, store: ObjectStoreDep) -> Response:
    service.delete_symbol_sets(session, store, [service.get_symbol_set(session, project.id, id)])
    return Response(status_code=204)


@router.get(
    "/{id}/download", name=f"error_tracking_{RESOURCE}_download_retrieve", response_model=DownloadOut,
    responses=_ERRORS, summary="A URL to download the symbol set's file, valid for an hour",
)  # fmt: skip
def download(id: str, project: ReadProject, session: SessionDep, store: ObjectStoreDep) -> dict[str, Any]:
    return {"url": service.download_url(store, service.get_symbol_set(session, project.id, id))}


@router.put(
    "/{id}/finish_upload", name=f"error_tracking_{RESOURCE}_finish_upload_update", response_model=SuccessOut,
    responses=_UPLOAD_ERRORS, summary="Confirm one uploaded symbol set (deprecated)",
)  # fmt: skip
def finish_upload(
    id: str, project: WriteProject, _room: DiskRoom, session: SessionDep, store: ObjectStoreDep,
    settings: SettingsDep, body: FinishUpload,
) -> dict[str, Any]:  # fmt: skip
    row = service.get_symbol_set(session, project.id, id)
    service.finish_single_upload(session, store, row, body.content_hash, max_size=settings.object_upload_max_size)
    session.commit()
    return {"success": True}
