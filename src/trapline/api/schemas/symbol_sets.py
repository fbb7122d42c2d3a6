"""Wire schemas of symbol sets and stack frames."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trapline.api.schemas.common import RequestModel
from trapline.api.schemas.releases import ReleaseOut

__all__ = [
    "BatchGet",
    "BulkDelete",
    "BulkFinish",
    "BulkUpload",
    "CheckedUploads",
    "DeletedOut",
    "DownloadOut",
    "FinishUpload",
    "PresignedPostOut",
    "StackFrameOut",
    "StackFramesOut",
    "StartedUpload",
    "StartedUploads",
    "SuccessOut",
    "SymbolSetOut",
    "SymbolSetUpload",
]


class SymbolSetOut(BaseModel):
    id: uuid.UUID
    ref: str = Field(description="The chunk id the build injected (or the script URL).")
    team_id: int
    created_at: datetime
    last_used: datetime | None
    failure_reason: str | None = Field(description="Why frames could not be resolved with this set, if they could not.")
    has_uploaded_file: bool
    release: ReleaseOut | None


class SymbolSetUpload(RequestModel):
    chunk_id: str
    release_id: str | None = None
    content_hash: str | None = Field(default=None, description="An opaque token; equal hashes mean equal content.")
    content_length: int | None = Field(default=None, ge=0)


class BulkUpload(RequestModel):
    """The body of bulk_start_upload and bulk_check_upload."""

    symbol_sets: list[SymbolSetUpload] | None = None
    chunk_ids: list[str] | None = Field(default=None, description="Older CLIs: chunk ids, all of release_id.")
    release_id: str | None = None
    force: bool = Field(default=False, description="Replace chunks uploaded with a different content hash.")
    skip_on_conflict: bool = Field(default=False, description="Keep chunks uploaded with a different content hash.")


class PresignedPostOut(BaseModel):
    url: str
    fields: dict[str, str]


class StartedUpload(BaseModel):
    symbol_set_id: uuid.UUID
    presigned_url: PresignedPostOut


class StartedUploads(BaseModel):
    id_map: dict[str, StartedUpload] = Field(description="Chunks left out need no upload.")


class CheckedUploads(BaseModel):
    chunk_ids_to_upload: list[str]


class BulkFinish(RequestModel):
    content_hashes: dict[str, Any] | None = Field(default=None, description="symbol set id → content hash")


class FinishUpload(RequestModel):
    content_hash: str | None = None


class BulkDelete(RequestModel):
    ids: Any = None


class DeletedOut(BaseModel):
    deleted: int


class DownloadOut(BaseModel):
    url: str


class SuccessOut(BaseModel):
    success: bool


class SingleStarted(BaseModel):
    presigned_url: PresignedPostOut
    symbol_set_id: uuid.UUID


class StackFrameOut(BaseModel):
    id: uuid.UUID
    raw_id: str = Field(description='"<hash>/<part>", as frames carry it in $exception_list.')
    created_at: datetime
    contents: dict[str, Any]
    resolved: bool
    context: dict[str, Any] | None
    symbol_set_ref: str | None
    release: ReleaseOut | None


class StackFramesOut(BaseModel):
    results: list[StackFrameOut]


class BatchGet(RequestModel):
    raw_ids: list[str] | None = None
    symbol_set: uuid.UUID | None = None
