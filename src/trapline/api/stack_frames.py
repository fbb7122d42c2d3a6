"""``/error_tracking/stack_frames``: resolved frames as cached, with their source context (read-only)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.api.deps import ReadProject, SessionDep
from trapline.api.pagination import PageParamsDep, paginate
from trapline.api.releases import serialize as release_out
from trapline.api.routing import STANDARD_ERRORS, ApiRouter, error_responses
from trapline.api.schemas.common import Page
from trapline.api.schemas.symbol_sets import BatchGet, StackFrameOut, StackFramesOut
from trapline.errors import InvalidInput, NotFound
from trapline.symbols.models import StackFrame, SymbolSet

__all__ = ["router"]

router = ApiRouter(prefix="/error_tracking/stack_frames", tags=["error_tracking"])
RESOURCE = "stack_frames"
_ERRORS = error_responses(*STANDARD_ERRORS)
_BATCH_MAX = 1000


def _rows(session: Session, stmt: Any) -> list[tuple[StackFrame, SymbolSet | None]]:
    joined = stmt.outerjoin(SymbolSet, SymbolSet.id == StackFrame.symbol_set_id)
    return [(frame, symbol_set) for frame, symbol_set in session.execute(joined)]


def serialize(row: tuple[StackFrame, SymbolSet | None]) -> dict[str, Any]:
    frame, symbol_set = row
    return {
        "id": frame.id,
        "raw_id": f"{frame.raw_id}/{frame.part}",
        "created_at": frame.created_at,
        "contents": frame.contents,
        "resolved": frame.resolved,
        "context": frame.context,
        "symbol_set_ref": symbol_set.ref if symbol_set is not None else None,
        "release": release_out(symbol_set.release) if symbol_set is not None and symbol_set.release else None,
    }


def _query(project_id: int) -> Any:
    return select(StackFrame, SymbolSet).where(StackFrame.project_id == project_id)


@router.get("", name=f"error_tracking_{RESOURCE}_list", response_model=Page[StackFrameOut], responses=_ERRORS)
def list_(project: ReadProject, session: SessionDep, page: PageParamsDep) -> dict[str, Any]:
    stmt = _query(project.id).outerjoin(SymbolSet, SymbolSet.id == StackFrame.symbol_set_id)
    stmt = stmt.order_by(StackFrame.created_at.desc(), StackFrame.id)
    count_and_page = paginate(session, stmt.with_only_columns(StackFrame.id), page, lambda frame_id: frame_id)
    ids = count_and_page["results"]
    rows = {frame.id: (frame, s) for frame, s in _rows(session, _query(project.id).where(StackFrame.id.in_(ids)))}
    count_and_page["results"] = [serialize(rows[i]) for i in ids if i in rows]
    return count_and_page


@router.post(
    "/batch_get", name=f"error_tracking_{RESOURCE}_batch_get_create", response_model=StackFramesOut, responses=_ERRORS,
    summary="Frames by raw id",
    description='raw_ids are "<hash>/<part>" as in $exception_list (a bare hash means part 0).',
)  # fmt: skip
def batch_get(project: ReadProject, session: SessionDep, body: BatchGet) -> dict[str, Any]:
    raw_ids = body.raw_ids or []
    if len(raw_ids) > _BATCH_MAX:
        raise InvalidInput(f"At most {_BATCH_MAX} raw_ids at a time", attr="raw_ids")
    wanted = set()
    for raw_id in raw_ids:
        digest, _, part = raw_id.partition("/")
        if not digest or (part and not part.isdigit()):
            raise InvalidInput(f"Invalid raw id: {raw_id}", attr="raw_ids")
        wanted.add((digest, int(part or 0)))
    stmt = _query(project.id).where(StackFrame.raw_id.in_(sorted({d for d, _ in wanted})))
    if body.symbol_set is not None:
        stmt = stmt.where(StackFrame.symbol_set_id == body.symbol_set)
    rows = [row for row in _rows(session, stmt) if (row[0].raw_id, row[0].part) in wanted]
    return {"results": [serialize(row) for row in rows]}


@router.get("/{id}", name=f"error_tracking_{RESOURCE}_retrieve", response_model=StackFrameOut, responses=_ERRORS)
def retrieve(id: str, project: ReadProject, session: SessionDep) -> dict[str, Any]:
    try:
        frame_id = uuid.UUID(id)
    except ValueError:
        raise NotFound() from None
    found = _rows(session, _query(project.id).where(StackFrame.id == frame_id))
    if not found:
        raise NotFound()
    return serialize(found[0])
