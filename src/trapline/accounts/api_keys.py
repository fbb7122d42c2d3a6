"""Personal API keys: generation, hashing and the scope rules.

Keys are 256-bit random strings, so a plain SHA-256 is a safe way to store them (a slow
password hash buys nothing against a guess that has 2^256 candidates) and lets a request be
authenticated with one indexed lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from trapline.ids import new_token

__all__ = [
    "ALL_SCOPES",
    "KNOWN_SCOPES",
    "PERSONAL_API_KEY_PREFIX",
    "generate_key",
    "has_scope",
    "hash_key",
    "mask_key",
]

PERSONAL_API_KEY_PREFIX = "phx_"
ALL_SCOPES = "*"
KNOWN_SCOPES = frozenset({ALL_SCOPES, "error_tracking:read", "error_tracking:write"})


def generate_key() -> str:
    return new_token(PERSONAL_API_KEY_PREFIX)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mask_key(key: str) -> str:
    return f"{key[:4]}...{key[-4:]}"


def has_scope(granted: Iterable[str], required: str) -> bool:
    """Whether ``granted`` covers ``required`` (``object:read`` or ``object:write``).

    As in PostHog, ``*`` covers everything and ``x:write`` also covers ``x:read``.
    """
    granted = set(granted)
    if ALL_SCOPES in granted or required in granted:
        return True
    obj, _, action = required.partition(":")
    return action == "read" and f"{obj}:write" in granted
