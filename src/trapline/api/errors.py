"""Turns errors into PostHog's error body: ``{"type", "code", "detail", "attr"}``.

PostHog renders errors with drf-exceptions-hog: the *first* problem only, its DRF message and
code (``invalid`` becomes ``invalid_input``), and the path to the offending field joined with
``__``. Pydantic reports problems in its own words, so ``_translate`` maps each pydantic
error type onto the message Django REST framework gives for the same mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trapline import errors
from trapline.diskspace import disk_full_cause, disk_full_error

__all__ = ["CatchAllMiddleware", "domain_response", "error_body", "install_error_handlers"]

log = logging.getLogger("trapline.api")

# error class -> (HTTP status, PostHog error type)
_STATUS: dict[type[errors.TraplineError], tuple[int, str]] = {
    errors.InvalidInput: (400, "validation_error"),
    errors.MalformedBody: (400, "invalid_request"),
    errors.UnsupportedMediaType: (415, "invalid_request"),
    errors.PayloadTooLarge: (413, "invalid_request"),
    errors.NotAuthenticated: (401, "authentication_error"),
    errors.AuthenticationFailed: (401, "authentication_error"),
    errors.PermissionDenied: (403, "authentication_error"),
    errors.NotFound: (404, "invalid_request"),
    errors.MethodNotAllowed: (405, "invalid_request"),
    errors.Unavailable: (503, "server_error"),
}

# pydantic error type -> (DRF code, DRF message template over the error's ctx/input)
_DRF_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("required", "This field is required."),
    "int_type": ("invalid_input", "A valid integer is required."),
    "int_parsing": ("invalid_input", "A valid integer is required."),
    "int_from_float": ("invalid_input", "A valid integer is required."),
    "float_type": ("invalid_input", "A valid number is required."),
    "float_parsing": ("invalid_input", "A valid number is required."),
    "finite_number": ("invalid_input", "A valid number is required."),
    "string_type": ("invalid_input", "Not a valid string."),
    "string_unicode": ("invalid_input", "Not a valid string."),
    "bool_type": ("invalid_input", "Must be a valid boolean."),
    "bool_parsing": ("invalid_input", "Must be a valid boolean."),
    "uuid_type": ("invalid_input", "Must be a valid UUID."),
    "uuid_parsing": ("invalid_input", "Must be a valid UUID."),
    "list_type": ("not_a_list", 'Expected a list of items but got type "{input_type}".'),
    "dict_type": ("not_a_dict", 'Expected a dictionary of items but got type "{input_type}".'),
    "model_type": ("invalid_input", "Invalid data. Expected a dictionary, but got {input_type}."),
    "model_attributes_type": ("invalid_input", "Invalid data. Expected a dictionary, but got {input_type}."),
    "literal_error": ("invalid_choice", '"{input}" is not a valid choice.'),
    "enum": ("invalid_choice", '"{input}" is not a valid choice.'),
    "less_than_equal": ("max_value", "Ensure this value is less than or equal to {le}."),
    "less_than": ("max_value", "Ensure this value is less than {lt}."),
    "greater_than_equal": ("min_value", "Ensure this value is greater than or equal to {ge}."),
    "greater_than": ("min_value", "Ensure this value is greater than {gt}."),
    "string_too_long": ("max_length", "Ensure this field has no more than {max_length} characters."),
    "string_too_short": ("blank", "This field may not be blank."),
    "too_long": ("max_length", "Ensure this field has no more than {max_length} elements."),
    "datetime_parsing": ("invalid_input", "Datetime has wrong format."),
    "datetime_type": ("invalid_input", "Datetime has wrong format."),
}
# Type errors whose input was null read "may not be null" in DRF, which checks for null before
# anything else; a choice (Literal) field too, not '"None" is not a valid choice.'.
_NULL_TYPES = {
    "int_type", "float_type", "string_type", "bool_type", "uuid_type", "list_type", "dict_type",
    "model_type", "model_attributes_type", "decimal_type", "literal_error", "enum",
}  # fmt: skip


def error_body(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def _translate(error: dict[str, Any]) -> tuple[str, str, str | None]:
    """One pydantic error → (code, detail, attr)."""
    # "[key]" marks an error in a dict's key rather than its value; DRF names just the key.
    loc = [str(part) for part in error.get("loc", ()) if part != "[key]"]
    if loc and loc[0] in {"body", "query", "path", "header"}:
        loc = loc[1:]
    attr = "__".join(loc) or None
    kind = error["type"]
    value = error.get("input")
    if kind in _NULL_TYPES and value is None:
        return "null", "This field may not be null.", attr
    if kind in _DRF_MESSAGES:
        code, template = _DRF_MESSAGES[kind]
        fields = {**error.get("ctx", {}), "input": value, "input_type": type(value).__name__}
        return code, template.format(**fields), attr
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        return "invalid_input", str(cause) if cause is not None else error["msg"], attr
    # Our own PydanticCustomErrors carry the DRF code as their type and the message as msg.
    return kind, str(error["msg"]), attr


def domain_response(exc: errors.TraplineError) -> JSONResponse:
    """A domain error as PostHog answers it; a 503 says when to retry, as SDKs and the CLI expect."""
    status, type_ = _STATUS.get(type(exc), (400, "validation_error"))
    headers = None
    if isinstance(exc, errors.Unavailable) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(error_body(type_, exc.code, exc.detail, exc.attr), status_code=status, headers=headers)


HtmlErrorPage = Callable[[Request, int, str, str], Response]


def _wants_html(request: Request) -> bool:
    # A person's browser on a page address; the API and SDKs keep PostHog's JSON bodies.
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI, html_page: HtmlErrorPage | None = None) -> None:
    """PostHog's error bodies everywhere; ``html_page`` answers browsers lost off the API."""

    @app.exception_handler(errors.TraplineError)
    async def _domain(request: Request, exc: errors.TraplineError) -> Response:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        code, detail, attr = _translate(exc.errors()[0])
        if attr in {"project_id", "id"} and code != "required":
            # A malformed id in the path names nothing that could exist: DRF answers 404.
            return JSONResponse(error_body("invalid_request", "not_found", "Not found."), status_code=404)
        return JSONResponse(error_body("validation_error", code, detail, attr), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if html_page is not None and exc.status_code in {404, 405} and _wants_html(request):
            return html_page(request, exc.status_code, "Not found", "There is no page at this address.")
        if exc.status_code == 404:
            body = error_body("invalid_request", "not_found", "Not found.")
        elif exc.status_code == 405:
            body = error_body("invalid_request", "method_not_allowed", f'Method "{request.method}" not allowed.')
        else:
            body = error_body("invalid_request", "error", str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


class CatchAllMiddleware:
    """Answers an unexpected exception with PostHog's 500 body and logs it once.

    Starlette's own last-resort handler re-raises after answering, so the server logs every
    crash a second time; this middleware sits inside it and keeps the exception.

    A full disk is no bug: whatever the request wrote was rolled back, so it is a 503 with
    ``Retry-After`` (code ``disk_full``), logged without a traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            where = {"method": scope.get("method"), "path": scope.get("path")}
            full = disk_full_error(exc)
            if full is not None:
                log.error("request failed: the disk is full", extra={**where, "error": str(disk_full_cause(exc))})
            else:
                log.exception("unhandled error", extra=where)
            if started:
                raise
            response = (
                domain_response(full)
                if full is not None
                else JSONResponse(error_body("server_error", "error", "A server error occurred."), status_code=500)
            )
            await response(scope, receive, send)
