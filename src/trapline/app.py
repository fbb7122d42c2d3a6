"""The ASGI application: routers, error handlers and shared state, wired in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from trapline import __version__, ui
from trapline.alerts import make_senders
from trapline.api import (
    alerts,
    assignment_rules,
    autocapture_controls,
    error_tracking_settings,
    fingerprints,
    grouping_rules,
    issues,
    projects,
    query,
    releases,
    spikes,
    stack_frames,
    suppression_rules,
    symbol_sets,
)
from trapline.api.errors import CatchAllMiddleware, error_body, install_error_handlers
from trapline.autocapture.controls import ControlsCache
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.diskspace import DiskSpace
from trapline.health import router as health_router
from trapline.ingest.capture import Capture
from trapline.ingest.decode import Limits
from trapline.ingest.pressure import Pressure
from trapline.ingest.projects import ProjectTokens, SentryKeys
from trapline.ingest.spool import Spool
from trapline.mcp import endpoint as mcp_endpoint
from trapline.objects import routes as object_routes
from trapline.objects.local import LocalStore
from trapline.objects.store import open_store
from trapline.sdk import routes as sdk_routes
from trapline.sdk.routes import ConfigCache
from trapline.sentry.endpoint import SentryIngest, SentryLimits
from trapline.settings import Settings

__all__ = ["PROJECT_PREFIXES", "Trapline", "create_app"]

# PostHog serves the same project-scoped API under both; environments are projects here.
PROJECT_PREFIXES = ("/api/environments/{project_id}", "/api/projects/{project_id}")
_PROJECT_ROUTERS = (
    autocapture_controls.router,
    fingerprints.router,
    grouping_rules.router,
    assignment_rules.router,
    suppression_rules.router,
    releases.router,
    issues.router,
    query.router,
    symbol_sets.router,
    stack_frames.router,
    projects.router,
    alerts.router,
    spikes.config_router,
    spikes.events_router,
    error_tracking_settings.router,
)


def _operation_id(route: APIRoute) -> str:
    # PostHog's schema names environment-scoped operations environments_<name>.
    prefix = "environments_" if route.path_format.startswith("/api/environments/") else ""
    return prefix + route.name


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the personal API key security scheme on every project route."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "PersonalAPIKeyAuth": {"type": "http", "scheme": "bearer", "description": "A personal API key, phx_…"}
        }
        for path, item in schema["paths"].items():
            if path.startswith(PROJECT_PREFIXES):
                for operation in item.values():
                    operation["security"] = [{"PersonalAPIKeyAuth": []}]
        app.openapi_schema = schema
    return app.openapi_schema


_NOT_FOUND = JSONResponse(error_body("invalid_request", "not_found", "Not found."), status_code=404)


class Trapline(FastAPI):
    """The FastAPI application, with the capture endpoints answered ahead of its own stack."""

    capture: Capture
    sentry: SentryIngest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("\n"):
            # Route patterns end in `$`, which also matches before a final newline: without
            # this, `/issues/%0A` would be the issue list rather than nothing.
            await _NOT_FOUND(scope, receive, send)
        elif self.capture.handles(scope):
            await self.capture(scope, receive, send)
        elif self.sentry.handles(scope):
            await self.sentry(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings, database: Database | None = None) -> Trapline:
    """Build the application; ``database`` defaults to one opened from the settings."""
    owns_db = database is None
    db = database or open_database(
        settings.database_url,
        busy_timeout_seconds=settings.database_busy_timeout_seconds,
        pool_size=settings.database_pool_size,
    )

    spool = Spool(db)
    mcp_running: list[Callable[[], AbstractAsyncContextManager[None]]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await spool.start()
        try:
            async with AsyncExitStack() as stack:
                for running in mcp_running:
                    await stack.enter_async_context(running())
                yield
        finally:
            # Requests still waiting for their commit get it before the server stops.
            await spool.stop()
            if owns_db:
                db.dispose()

    app = Trapline(
        title="Trapline",
        version=__version__,
        description="Self-hosted error tracking with PostHog's error tracking API.",
        openapi_url="/api/schema/",
        docs_url="/api/schema/swagger-ui/",
        redoc_url="/api/schema/redoc/",
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.db = db
    app.state.objects = open_store(settings)
    app.state.senders = make_senders(settings)  # alerts' "send a test now"
    install_error_handlers(app, html_page=ui.error_page)
    app.state.sdk_config = ConfigCache(db)
    app.state.pressure = pressure = Pressure(
        db,
        disk=DiskSpace(settings.local_folders, settings.disk_min_free),
        queue_max_events=settings.queue_max_events,
        queue_max_wait_seconds=settings.queue_max_wait_seconds,
        queue_retry_after_seconds=settings.queue_retry_after_seconds,
    )
    app.capture = Capture(
        spool=spool,
        tokens=ProjectTokens(db),
        controls=ControlsCache(db),
        pressure=pressure,
        limits=Limits(
            max_body_bytes=settings.ingest_body_max_size,
            max_decompressed_bytes=settings.ingest_decompressed_max_size,
            max_event_bytes=settings.ingest_event_max_size,
        ),
    )
    app.sentry = SentryIngest(
        spool=spool,
        keys=SentryKeys(db),
        pressure=pressure,
        limits=SentryLimits(
            max_body_bytes=settings.sentry_body_max_size,
            max_envelope_bytes=settings.sentry_envelope_max_size,
            max_event_bytes=settings.sentry_event_max_size,
        ),
    )
    app.add_middleware(CatchAllMiddleware)
    app.include_router(health_router)
    app.include_router(sdk_routes.router)
    if isinstance(app.state.objects, LocalStore):
        # S3 serves its own presigned URLs; a local store's point at these routes.
        app.include_router(object_routes.router)
    for prefix in PROJECT_PREFIXES:
        for router in _PROJECT_ROUTERS:
            app.include_router(router, prefix=prefix)
    ui.install(app)
    # MCP for coding agents at /mcp: its tools call the REST API above in process.
    mcp_running.append(mcp_endpoint.mount(app, settings.base_url))
    return app
