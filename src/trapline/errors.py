"""Domain errors, raised by services and turned into HTTP responses only in ``api/errors.py``.

::

    TraplineError
    ├── InvalidInput            a request or command carries a bad value (400)
    ├── MalformedBody           the body could not be parsed at all (400)
    ├── UnsupportedMediaType    the body's Content-Type is not one we read (415)
    ├── PayloadTooLarge         the body is over a configured size limit (413)
    ├── NotAuthenticated        no credentials were given (401)
    ├── AuthenticationFailed    credentials were given but are not valid (401)
    ├── PermissionDenied        valid credentials without the needed scope (403)
    ├── NotFound                the object does not exist or is not visible to the caller (404)
    ├── MethodNotAllowed        the resource exists but not this verb (405)
    └── Unavailable             the server cannot take this now (its disk is low or full); the
                                same request may succeed later, after ``retry_after`` seconds (503)

Every error carries the PostHog wire fields: a stable ``code`` and a human ``detail``;
``InvalidInput`` also names the offending ``attr`` (nested fields joined with ``__``).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "InvalidInput",
    "MalformedBody",
    "MethodNotAllowed",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "TraplineError",
    "Unavailable",
    "UnsupportedMediaType",
]


class TraplineError(Exception):
    """Base of every error a caller can cause; ``code`` and ``detail`` go on the wire."""

    default_code = "error"
    default_detail = "A server error occurred."

    def __init__(self, detail: str | None = None, *, code: str | None = None, attr: str | None = None):
        self.detail = detail if detail is not None else self.default_detail
        self.code = code or self.default_code
        self.attr = attr
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(detail={self.detail!r}, code={self.code!r}, attr={self.attr!r})"


class InvalidInput(TraplineError):
    default_code = "invalid_input"
    default_detail = "Invalid input."


class MalformedBody(TraplineError):
    default_code = "parse_error"
    default_detail = "Malformed request."


class UnsupportedMediaType(TraplineError):
    default_code = "unsupported_media_type"
    default_detail = "Unsupported media type in request."


class PayloadTooLarge(TraplineError):
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


class NotAuthenticated(TraplineError):
    default_code = "not_authenticated"
    default_detail = "Authentication credentials were not provided."


class AuthenticationFailed(TraplineError):
    default_code = "authentication_failed"
    default_detail = "Incorrect authentication credentials."


class PermissionDenied(TraplineError):
    default_code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFound(TraplineError):
    default_code = "not_found"
    default_detail = "Not found."


class MethodNotAllowed(TraplineError):
    default_code = "method_not_allowed"
    default_detail = "Method not allowed."


class Unavailable(TraplineError):
    default_code = "unavailable"
    default_detail = "The server cannot take this now; retry later."

    def __init__(self, detail: str | None = None, *, code: str | None = None, retry_after: int | None = None):
        super().__init__(detail, code=code)
        self.retry_after = retry_after  # seconds the caller should wait, when known
