"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from trapline.db import migrate
from trapline.db.engine import Database
from trapline.ingest.pressure import Pressure

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/_health")
def health() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/_readyz")
def ready(request: Request) -> JSONResponse:
    """The database answers and its schema is the one this code expects (else 503).

    It also says whether capture takes events in now (``accepting_events``), and if not why:
    the queue is backed up or the disk is low. That is still "ready" (200): the server answers
    SDKs with 503 + Retry-After itself, which a load balancer's own 502 would not.
    """
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
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", **checks}
    pressure: Pressure | None = getattr(request.app.state, "pressure", None)
    if ok and pressure is not None:
        body.update(_intake(pressure))
    return JSONResponse(body, status_code=200 if ok else 503)


def _intake(pressure: Pressure) -> dict[str, Any]:
    backlog = pressure.read_backlog()
    refusal = pressure.installation()
    disk = pressure.disk.low() if pressure.disk is not None else None
    return {
        "accepting_events": refusal is None,
        "refusing": None if refusal is None else {"reason": refusal.reason, "detail": refusal.detail},
        "queue": {"events_waiting": backlog.events, "oldest_wait_seconds": round(backlog.oldest_wait_seconds, 1)},
        "disk": "ok" if disk is None else f"low: {disk}",
    }
