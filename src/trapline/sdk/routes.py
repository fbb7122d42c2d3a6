"""What browsers (and other SDKs) fetch besides capture: remote config, flags, extension scripts.

* ``GET /array/<token>/config.js`` and ``/array/<token>/config``: the project's remote config
  (``sdk/config.py``); public, like the token, so any origin may read it.
* ``POST /flags`` (any ``?v=``) and the older ``/decide``: a valid answer with no flags.
  Trapline has no feature flags; the config rides along where PostHog sends it (``/decide``,
  and ``/flags`` with ``config=true``).
* ``GET /static/[<version>/]<name>.js``: posthog-js's lazily loaded extensions (the exception
  autocapture among them), served from a posthog-js installation when one is configured.

Every answer carries CORS headers: these are called from the pages of other origins.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.autocapture.models import AutocaptureControls
from trapline.db.engine import Database
from trapline.db.types import storable_text
from trapline.ingest.decode import DecodeError, Limits, TooLarge, decode_capture
from trapline.projects.models import Project
from trapline.rules.models import SuppressionRule
from trapline.sdk.config import CaptureSettings, config_script, remote_config, rules_for_browser

__all__ = ["ConfigCache", "router"]

router = APIRouter(include_in_schema=False)
# Config changes (a new rule, autocapture turned off) reach browsers within this many seconds.
CONFIG_TTL_SECONDS = 5.0
# posthog-js's extension bundles are small; anything else under /static is not ours to serve.
_STATIC_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_FLAGS_LIMITS = Limits(max_body_bytes=1024 * 1024, max_decompressed_bytes=4 * 1024 * 1024, max_event_bytes=1024 * 1024)


@dataclass
class _Entry:
    settings: CaptureSettings | None
    expires: float
    # Rendered once per read: the same bytes go to every page view until the entry expires.
    script: bytes = b""
    body: bytes = b""


class ConfigCache:
    """Each project's remote config, read at most every few seconds: pages load it on every view."""

    def __init__(self, db: Database, *, ttl: float = CONFIG_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def fresh(self, token: str) -> _Entry | None:
        """The entry if it can be used without reading the database (callers on the event loop
        read otherwise in a thread)."""
        entry = self._entries.get(token)
        return entry if entry is not None and entry.expires > self._clock() else None

    def entry(self, token: str) -> _Entry:
        now = self._clock()
        entry = self._entries.get(token)
        if entry is None or entry.expires <= now:
            with self._db.session(write=False) as session:
                settings = _load(session, token)
            entry = _Entry(settings, now + self._ttl)
            if settings is not None:
                config = remote_config(settings)
                entry.script = config_script(token, config).encode()
                entry.body = orjson.dumps(config)
            if len(self._entries) > 10_000:
                self._entries.clear()  # bounded; real deployments have few tokens
            self._entries[token] = entry
        return entry

    def get(self, token: str) -> CaptureSettings | None:
        return self.entry(token).settings

    def clear(self) -> None:
        self._entries.clear()


def _load(session: Session, token: str) -> CaptureSettings | None:
    project = session.scalar(select(Project).where(Project.api_token == storable_text(token)))
    if project is None:
        return None
    rules = session.execute(
        select(SuppressionRule.filters, SuppressionRule.sampling_rate)
        .where(SuppressionRule.project_id == project.id, SuppressionRule.disabled_data.is_(None))
        .order_by(SuppressionRule.order_key, SuppressionRule.created_at)
    ).all()
    controls = session.scalar(
        select(AutocaptureControls).where(
            AutocaptureControls.project_id == project.id, AutocaptureControls.library == "web"
        )
    )
    return CaptureSettings(
        token=token,
        autocapture_exceptions=project.autocapture_exceptions_opt_in,
        suppression_rules=rules_for_browser((filters, rate) for filters, rate in rules),
        controls=None
        if controls is None
        else {
            "match_type": controls.match_type,
            "sample_rate": controls.sample_rate,
            "linked_feature_flag": controls.linked_feature_flag,
            "event_triggers": controls.event_triggers,
            "url_triggers": controls.url_triggers,
            "url_blocklist": controls.url_blocklist,
        },
    )


def _cache(request: Request) -> ConfigCache:
    cache: ConfigCache = request.app.state.sdk_config
    return cache


async def _entry(request: Request, token: str) -> _Entry:
    # Async with a memory fast path: page views ask for config all the time, and a thread
    # pool round trip per cached answer would cost more than the answer.
    cache = _cache(request)
    entry = cache.fresh(token)
    if entry is None:
        entry = await asyncio.to_thread(cache.entry, token)
    return entry


def _cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    if origin:
        response.headers["access-control-allow-origin"] = origin
        response.headers["access-control-allow-credentials"] = "true"
        response.headers["vary"] = "Origin"
    else:
        response.headers["access-control-allow-origin"] = "*"
    return response


def _json(request: Request, body: Any, status: int = 200) -> Response:
    return _cors(request, Response(orjson.dumps(body), status_code=status, media_type="application/json"))


def _error(request: Request, status: int, type_: str, code: str, detail: str) -> Response:
    return _json(request, {"type": type_, "code": code, "detail": detail, "attr": None}, status)


def _not_found(request: Request, what: str) -> Response:
    return _error(request, 404, "invalid_request", "not_found", what)


_UNKNOWN_TOKEN = "Project API key invalid. You can find your project API key in your project settings."


async def _config(request: Request, token: str, *, script: bool) -> Response:
    entry = await _entry(request, token)
    if entry.settings is None:
        return _not_found(request, _UNKNOWN_TOKEN)
    if script:
        response = Response(entry.script, media_type="application/javascript")
    else:
        response = Response(entry.body, media_type="application/json")
    response.headers["cache-control"] = f"public, max-age={int(CONFIG_TTL_SECONDS)}"
    return _cors(request, response)


@router.get("/array/{token}/config.js")
async def config_js(token: str, request: Request) -> Response:
    return await _config(request, token, script=True)


@router.get("/array/{token}/config")
async def config_json(token: str, request: Request) -> Response:
    return await _config(request, token, script=False)


async def _flags(request: Request, *, with_config: bool) -> Response:
    body = await request.body()
    try:
        decoded = decode_capture(
            body,
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
            query=dict(request.query_params),
            limits=_FLAGS_LIMITS,
        )
    except TooLarge as exc:
        return _json(
            request, {"type": "invalid_request", "code": "payload_too_large", "detail": str(exc), "attr": None}, 413
        )
    except DecodeError as exc:
        return _json(
            request, {"type": "validation_error", "code": "invalid_payload", "detail": str(exc), "attr": None}, 400
        )
    token = decoded.token
    settings = (await _entry(request, token)).settings if token else None
    if settings is None:
        detail = _UNKNOWN_TOKEN if token else "API key is required: send the project API token (phc_…) as token."
        return _json(
            request, {"type": "authentication_error", "code": "invalid_api_key", "detail": detail, "attr": None}, 401
        )
    answer: dict[str, Any] = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "requestId": str(uuid.uuid4()),
    }
    if with_config:
        answer.update(remote_config(settings))
    return _json(request, answer)


@router.post("/flags")
@router.post("/flags/")
async def flags(request: Request, config: Annotated[str | None, Query()] = None) -> Response:
    return await _flags(request, with_config=(config or "").lower() in ("true", "1"))


@router.post("/decide")
@router.post("/decide/")
async def decide(request: Request) -> Response:
    return await _flags(request, with_config=True)


@router.options("/flags")
@router.options("/flags/")
@router.options("/decide")
@router.options("/decide/")
def preflight(request: Request) -> Response:
    response = Response(status_code=200)
    response.headers["access-control-allow-methods"] = "POST, OPTIONS"
    response.headers["access-control-allow-headers"] = request.headers.get(
        "access-control-request-headers", "content-type"
    )
    response.headers["access-control-max-age"] = "86400"
    return _cors(request, response)


@router.get("/static/{name}")
@router.get("/static/{version}/{name}")
def static(name: str, request: Request, version: str | None = None) -> Response:
    root: Path | None = request.app.state.settings.posthog_js_dist
    if root is None:
        return _not_found(request, "No posthog-js is installed with this server (TRAPLINE_POSTHOG_JS_DIST).")
    if not name.endswith(".js") or not set(name) <= _STATIC_NAME or name.startswith("."):
        return _not_found(request, "Not found.")
    path = root / name
    if not path.is_file():
        return _not_found(request, f"{name} is not part of the installed posthog-js.")
    response = Response(path.read_bytes(), media_type="application/javascript")
    # Versioned paths never change; the unversioned one follows upgrades.
    response.headers["cache-control"] = "public, max-age=31536000, immutable" if version else "public, max-age=3600"
    return _cors(request, response)
