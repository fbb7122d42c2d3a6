"""Route and router classes that give the REST API PostHog's (Django REST framework's) manners.

* Every path answers with and without a trailing slash: PostHog's docs and SDKs use the
  slash, its CLI leaves it off. The slash-less path is the one in the OpenAPI schema.
* Bodies are read the way DRF reads them: JSON, or form-encoded (``curl -d key=value``), with
  form values that look like JSON decoded (DRF's JSONField does that). An empty body is an
  empty object, so a missing field is reported as "This field is required." for that field.
* Bodies over ``api_body_max_size`` are refused with 413 before they are buffered whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from trapline.errors import InvalidInput, MalformedBody, PayloadTooLarge, UnsupportedMediaType

__all__ = ["ApiRoute", "ApiRouter", "QueryRoute", "add_update_routes"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# PostHog's generated API docs show `curl -H 'Content-Type: application/json' -d key=value`,
# which sends a form body under a JSON content type. DRF rejects that; we read it as the form
# the person meant, but only when the body is unmistakably key=value pairs.
_FORM_LIKE = re.compile(rb"^[A-Za-z0-9_.\-%+\[\]]+=[^&{}\[\]]*(&[A-Za-z0-9_.\-%+\[\]]+=[^&{}\[\]]*)*$")


class ApiRoute(APIRoute):
    """An APIRoute whose request body is normalised to JSON before FastAPI parses it.

    A body holding NUL anywhere is refused (400) before its fields are read: DRF's text fields
    refuse NUL, and PostgreSQL can store it neither in text nor in jsonb.
    """

    refuse_nul = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def normalising_handler(request: Request) -> Response:
            if request.method in _BODY_METHODS:
                request = await _with_json_body(request, refuse_nul=self.refuse_nul)
            return await handler(request)

        return normalising_handler


class QueryRoute(ApiRoute):
    """A route whose body only describes what to read (searches): NUL is a character to look
    for there, compared as the U+FFFD it is stored as, not a reason to refuse."""

    refuse_nul = False


class ApiRouter(APIRouter):
    """An APIRouter that uses ``ApiRoute`` and registers each path with and without a slash."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", ApiRoute)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Paths are relative to the router's prefix, so "" is the collection itself.
        path = path.rstrip("/")
        super().add_api_route(path, endpoint, **kwargs)
        # Even "" gets its "/" twin: a router without a prefix is included under one (a
        # project's own URL), where "" and "/" are the two spellings of that URL.
        hidden = {**kwargs, "include_in_schema": False}
        if kwargs.get("operation_id"):
            hidden["operation_id"] = kwargs["operation_id"] + "_slash"
        super().add_api_route(path + "/", endpoint, **hidden)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _with_json_body(request: Request, *, refuse_nul: bool) -> Request:
    limit = int(request.app.state.settings.api_body_max_size)
    body = await _read_limited(request, limit)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    if not body.strip():
        data: Any = {}
    elif media_type == "application/x-www-form-urlencoded":
        data = _form_to_data(body)
    elif media_type in {"", "application/json"} or media_type.endswith("+json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if media_type and _FORM_LIKE.match(body.strip()):
                data = _form_to_data(body.strip())
            else:
                raise MalformedBody(f"JSON parse error - {exc}") from exc
    elif media_type == "multipart/form-data":
        return request  # uploads; the route reads the form itself
    else:
        raise UnsupportedMediaType(f'Unsupported media type "{media_type}" in request.')

    where = _nul_in(data) if refuse_nul else None
    if where is not None:
        raise InvalidInput("Null characters are not allowed.", code="null_characters_not_allowed", attr=where)

    scope = dict(request.scope)
    scope["headers"] = [
        (name, value) for name, value in request.scope["headers"] if name not in (b"content-type", b"content-length")
    ] + [(b"content-type", b"application/json")]
    normalised = Request(scope, request.receive)
    # Hand FastAPI the parsed value as well, so it neither parses nor (for JSON bodies) has
    # us re-encode it: orjson refuses to encode nesting that it accepted when decoding.
    normalised._body = body if media_type != "application/x-www-form-urlencoded" and body.strip() else b"{}"
    normalised._json = data
    return normalised


def _nul_in(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds a NUL character (as DRF's ``attr``), or None.

    DRF's text fields refuse NUL, and neither PostgreSQL's text nor its jsonb can store one, so
    a NUL anywhere in a body is refused before any field is read (JSON fields included).
    """
    if isinstance(value, str):
        return path or "non_field_errors" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}__{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_in(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, f"{path}__{index}" if path else str(index))
            if found is not None:
                return found
    return None


def _form_to_data(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise MalformedBody("Form body is not valid UTF-8.") from exc
    grouped: dict[str, list[Any]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(_form_value(value))
    return {key: values[0] if len(values) == 1 else values for key, values in grouped.items()}


def _form_value(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return value
    return value


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    from trapline.api.schemas.common import ErrorBody  # local: schemas import this module's names

    return {status: {"model": ErrorBody, "description": _STATUS_TEXT[status]} for status in statuses}


_STATUS_TEXT = {
    400: "Invalid input",
    401: "Missing or invalid personal API key",
    403: "The key lacks the required scope",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    503: "The server's disk is low or full: nothing was saved; retry after Retry-After seconds",
}

STANDARD_ERRORS: Sequence[int] = (400, 401, 403, 404, 413, 415)


def add_update_routes(
    router: ApiRouter,
    *,
    resource: str,
    endpoint: Callable[..., Any],
    summary: str | None = None,
    response_model: Any = None,
) -> None:
    """Register ``endpoint`` for PATCH (``partial_update``) and PUT (``update``) on ``/{id}``,
    named as PostHog names them. With a ``response_model`` it answers 200 with the object;
    without, 204 and no body (as rule updates do)."""
    options: dict[str, Any] = (
        {"response_model": response_model, "responses": error_responses(*STANDARD_ERRORS)}
        if response_model is not None
        else {
            "status_code": 204,
            "response_class": Response,
            "responses": {204: {"description": "Updated (no body)"}, **error_responses(*STANDARD_ERRORS)},
        }
    )
    for method, action in (("PATCH", "partial_update"), ("PUT", "update")):
        router.add_api_route(
            "/{id}", endpoint, methods=[method], name=f"error_tracking_{resource}_{action}", summary=summary, **options
        )
