"""PostHog's symbol data container: what the CLI uploads for each chunk.

    b"posthog_error_tracking"  u32 LE version (1)  u32 LE type  payload

Type 2 (source and map) is the minified file and its source map, each as u64 LE length +
UTF-8 bytes. Types 3 (Hermes map) and 4 (ProGuard mapping) exist too; Trapline resolves
JavaScript only, so they are refused with a clear reason rather than misread.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["MAGIC", "SOURCE_AND_MAP", "ContainerError", "pack_source_and_map", "unpack_source_and_map"]

MAGIC: Final = b"posthog_error_tracking"
VERSION: Final = 1
SOURCE_AND_MAP: Final = 2
_KINDS: Final = {2: "source and map", 3: "Hermes map", 4: "ProGuard mapping"}
_HEADER: Final = struct.Struct("<II")
_LENGTH: Final = struct.Struct("<Q")


class ContainerError(ValueError):
    """The bytes are not a source-and-map container this version can read; says why."""


def pack_source_and_map(minified: bytes, source_map: bytes) -> bytes:
    return b"".join(
        (MAGIC, _HEADER.pack(VERSION, SOURCE_AND_MAP), _LENGTH.pack(len(minified)), minified),
    ) + b"".join((_LENGTH.pack(len(source_map)), source_map))


def unpack_source_and_map(data: bytes) -> tuple[bytes, bytes]:
    """The minified file and the source map of a type 2 container."""
    if not data.startswith(MAGIC):
        raise ContainerError("not a symbol set: the posthog_error_tracking header is missing")
    offset = len(MAGIC)
    if len(data) < offset + _HEADER.size:
        raise ContainerError("the symbol set is cut short after its header")
    version, kind = _HEADER.unpack_from(data, offset)
    if version != VERSION:
        raise ContainerError(f"symbol set container version {version} is not supported (only {VERSION})")
    if kind != SOURCE_AND_MAP:
        name = _KINDS.get(kind, "unknown")
        raise ContainerError(f"symbol set type {kind} ({name}) is not supported: only type 2, source and map")
    offset += _HEADER.size
    minified, offset = _chunk(data, offset, "minified source")
    source_map, offset = _chunk(data, offset, "source map")
    if offset != len(data):
        raise ContainerError(f"{len(data) - offset} unexpected bytes after the source map")
    return minified, source_map


def _chunk(data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    if len(data) < offset + _LENGTH.size:
        raise ContainerError(f"the symbol set ends before the length of its {what}")
    (length,) = _LENGTH.unpack_from(data, offset)
    start = offset + _LENGTH.size
    if start + length > len(data):
        raise ContainerError(f"the symbol set's {what} says {length} bytes but only {len(data) - start} follow")
    return data[start : start + length], start + length
