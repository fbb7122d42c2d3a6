"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from trapline.db import migrate
from trapline.db.engine import Database

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/_health")
def health() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/_readyz")
def ready(request: Request) -> JSONResponse:
    """The database answers and its schema is the one this code expects."""
    db: Database = request.app.state.db
    checks: dict[str, Any] = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = migrate.current_revision(db.engine), migrate.head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, expected {head}"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values()) and "migrations" in checks
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)
