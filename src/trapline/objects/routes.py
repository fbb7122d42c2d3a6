"""The URLs a LocalStore presigns: ``POST /_objects/upload`` and ``GET /_objects/download``.

They behave like S3's presigned POST and GET, which is what PostHog's CLI expects: the upload
is a multipart form, every field a text part and then the file as the part named ``file``; it
answers 204. The signature in the fields or query is the only authentication.

Uploads (up to ``object_upload_max_size``, 100 MiB) are read as they arrive (``form.py``) into
a temporary file next to their destination, off the event loop, and renamed into place only
once complete. Downloads stream from an open file.

Below the disk's free-space watermark uploads are refused before a byte is written, and a disk
that fills up during one removes the temporary file: both are 503 with ``Retry-After``, and
the CLI can upload the same file again later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from trapline.diskspace import disk_full_cause, disk_full_error
from trapline.errors import NotFound, TraplineError, UnsupportedMediaType
from trapline.ingest.pressure import Pressure
from trapline.objects.form import UploadForm
from trapline.objects.local import DOWNLOAD_PATH, UPLOAD_PATH, AtomicWriter, LocalStore
from trapline.objects.store import ObjectStoreError

__all__ = ["router"]

log = logging.getLogger("trapline.objects")
router = APIRouter(include_in_schema=False)

_CHUNK_SIZE = 64 * 1024


def _store(request: Request) -> LocalStore:
    store = request.app.state.objects
    if not isinstance(store, LocalStore):
        # S3 serves its own presigned URLs; these paths exist only for the local store.
        raise NotFound()
    return store


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("The upload must be a multipart/form-data body.")
    return boundary


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


@router.post(UPLOAD_PATH, status_code=204)
async def upload(request: Request) -> Response:
    store = _store(request)
    writer: AtomicWriter | None = None
    try:
        _check_room(request)
        form = UploadForm(_boundary(request), store.check_upload, _content_length(request))
        async for chunk in request.stream():
            data = form.feed(chunk)
            if form.grant is not None and writer is None:
                writer = await run_in_threadpool(store.writer, form.grant.key)
            if data and writer is not None:
                # Disk writes (and the fsync below) off the event loop: other requests go on.
                await run_in_threadpool(writer.write, data)
            if form.done:
                # Anything after the closing boundary is not part of the form.
                break
        grant = form.finish()
        # The writer opened with the file part; finish() has just confirmed there was one.
        if writer is None:
            writer = await run_in_threadpool(store.writer, grant.key)
        await run_in_threadpool(writer.commit)
        writer = None
    except ClientDisconnect:
        # Nobody is left to answer; the temporary file goes below.
        return Response(status_code=400)
    except TraplineError as exc:
        return await _refuse(request, exc)
    except ObjectStoreError as exc:
        full = disk_full_error(exc)
        if full is None:
            raise
        log.error("upload failed: the disk is full", extra={"error": str(disk_full_cause(exc))})
        return await _refuse(request, full)
    finally:
        if writer is not None:
            await run_in_threadpool(writer.abort)
    return Response(status_code=204)


def _check_room(request: Request) -> None:
    # The disk alone decides (a backed-up event queue is no reason to refuse a source map).
    # Without a door (these routes served on their own) nothing is refused.
    pressure: Pressure | None = getattr(request.app.state, "pressure", None)
    refusal = pressure.disk_refusal() if pressure is not None else None
    if refusal is not None:
        raise refusal.error()


async def _refuse(request: Request, exc: TraplineError) -> Response:
    """The app's own error response, and the connection closed.

    The rest of a refused body is unread; on an open connection the server would read (and
    discard) all of it, up to 100 MiB, before the client, still sending, got to see the answer.
    """
    handler = request.app.exception_handlers.get(TraplineError)
    if handler is None:
        raise exc
    response: Response = await handler(request, exc)
    response.headers["Connection"] = "close"
    return response


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK_SIZE):
            yield chunk


@router.get(DOWNLOAD_PATH)
def download(request: Request) -> Response:
    store = _store(request)
    key = store.check_download(request.query_params)
    handle = store.open(key)
    if handle is None:
        raise NotFound()
    size = os.fstat(handle.fileno()).st_size
    return StreamingResponse(
        _chunks(handle), media_type="application/octet-stream", headers={"Content-Length": str(size)}
    )
