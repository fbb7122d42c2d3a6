"""Sentry DSNs and the keys SDKs authenticate with.

A DSN is ``<scheme>://<public key>@<host>/<project id>``. SDKs present the public key in an
``X-Sentry-Auth: Sentry sentry_key=…, sentry_version=7, …`` header (server SDKs), in the
``sentry_key`` query parameter (browser SDKs, which avoid a CORS preflight), in an
``Authorization: Sentry …`` header (some older SDKs), or, when sent through a tunnel, as the
``dsn`` of the envelope header. The secret key of legacy DSNs is ignored, as Sentry does.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["dsn", "key_from_dsn", "key_from_headers"]


def dsn(public_url: str, public_key: str, project_id: int) -> str:
    """The DSN SDKs are configured with, for a server reachable at ``public_url``."""
    parts = urlsplit(public_url.rstrip("/"))
    return f"{parts.scheme}://{public_key}@{parts.netloc}/{project_id}"


def _auth_fields(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "sentry":
        return {}
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field = part.strip().partition("=")
        if sep:
            fields[name.strip().lower()] = field.strip()
    return fields


def key_from_headers(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The public key a request presents in its headers or query, or None."""
    for header in ("x-sentry-auth", "authorization"):
        value = headers.get(header)
        if value:
            key = _auth_fields(value).get("sentry_key")
            if key:
                return key
    key = query.get("sentry_key")
    return key.strip() or None if key else None


def key_from_dsn(value: object) -> tuple[str, str] | None:
    """(public key, project id) of a DSN, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    key = parts.username
    project = parts.path.rstrip("/").rpartition("/")[2]
    if not key or not project:
        return None
    return key, project
