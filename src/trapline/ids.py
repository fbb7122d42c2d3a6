"""Identifier generation: time-ordered UUIDs and random secret tokens."""

from __future__ import annotations

import os
import secrets
import string
import time
import uuid

__all__ = ["new_token", "uuid7"]

_TOKEN_ALPHABET = string.ascii_letters + string.digits
# 43 characters from a 62-letter alphabet carry ~256 bits, the same length PostHog's tokens have.
_TOKEN_LENGTH = 43


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.

    Time-ordered ids keep B-tree inserts local and make "newest first" a cheap sort, which is
    why PostHog uses them for issues and fingerprints too.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 random bits; 74 are used
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)


def new_token(prefix: str) -> str:
    """A random secret with a recognisable prefix, such as ``phc_`` or ``phx_``."""
    return prefix + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_LENGTH))
