"""PostHog's symbol data container: what the CLI uploads for each symbol set.

    version 1:  b"posthog_error_tracking"  u32 LE version  u32 LE kind  payload
    version 2:  b"posthog_error_tracking"  u32 LE version  u32 LE kind  u8 compression  payload

Version 2 is what PostHog's CLI writes since 0.7.3; compression 1 means the payload is zstd
(one or more frames), 0 that it is stored as is. Version 1 is still read. The request that
uploads a set never names its kind: the container's kind field is the only place it is said,
so a reader checks it against the kind the frame asks for.

Payloads by kind: 2, the minified file and its source map, each as u64 LE length + UTF-8
bytes; 3, a Hermes composed source map (JSON); 4, a ProGuard/R8 mapping file (text); 5 and 6,
a ZIP holding the debug file (``dwarf``) of an Apple dSYM or an ELF object, with optional
sources under ``__source/``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import zstandard

__all__ = [
    "HEADER_BYTES",
    "MAGIC",
    "MAX_UNPACKED",
    "Container",
    "ContainerError",
    "Kind",
    "header_kind",
    "pack",
    "pack_source_and_map",
    "unpack",
    "unpack_source_and_map",
]

MAGIC: Final = b"posthog_error_tracking"
_VERSIONS: Final = (1, 2)
_HEADER: Final = struct.Struct("<II")
_LENGTH: Final = struct.Struct("<Q")
_NO_COMPRESSION: Final = 0
_ZSTD: Final = 1
# What one symbol set may unpack to (zstd payload, or the files of a debug-file ZIP): far above
# real maps and debug files, far below what would hurt a worker or API process.
MAX_UNPACKED: Final = 512 * 1024 * 1024
# Enough of a container to read its kind (and, for version 2, its compression).
HEADER_BYTES: Final = len(MAGIC) + _HEADER.size + 1


class Kind(IntEnum):
    SOURCE_AND_MAP = 2
    HERMES_MAP = 3
    PROGUARD_MAPPING = 4
    APPLE_DSYM = 5
    ELF_DEBUG_INFO = 6

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {
    Kind.SOURCE_AND_MAP: "source and map",
    Kind.HERMES_MAP: "Hermes map",
    Kind.PROGUARD_MAPPING: "ProGuard mapping",
    Kind.APPLE_DSYM: "Apple dSYM",
    Kind.ELF_DEBUG_INFO: "ELF debug info",
}


class ContainerError(ValueError):
    """The bytes are not a container this version can read; says why."""


@dataclass(frozen=True)
class Container:
    kind: Kind
    payload: bytes  # decompressed


def pack(kind: Kind, payload: bytes, *, compress: bool = True) -> bytes:
    """A version 2 container, zstd-compressed (level 3, size in the frame) unless told not to."""
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=True)
    body = compressor.compress(payload) if compress else payload
    flag = _ZSTD if compress else _NO_COMPRESSION
    return b"".join((MAGIC, _HEADER.pack(2, int(kind)), bytes((flag,)), body))


def pack_source_and_map(minified: bytes, source_map: bytes) -> bytes:
    """A version 1 source-and-map container (what older CLIs, and trapline's, upload)."""
    payload = b"".join((_LENGTH.pack(len(minified)), minified, _LENGTH.pack(len(source_map)), source_map))
    return b"".join((MAGIC, _HEADER.pack(1, int(Kind.SOURCE_AND_MAP)), payload))


def header_kind(head: bytes) -> Kind:
    """The kind a container's first bytes declare (at least ``HEADER_BYTES`` of them, or the
    whole container); raises ``ContainerError`` saying what is wrong with the header."""
    version, kind = _read_header(head)
    if version == 2 and len(head) > len(MAGIC) + _HEADER.size:
        _compression(head[len(MAGIC) + _HEADER.size])
    return kind


def unpack(data: bytes, *, max_size: int | None = None) -> Container:
    """The container's kind and decompressed payload. ``max_size`` bounds the decompressed
    size, so a small upload cannot inflate into gigabytes in the worker."""
    version, kind = _read_header(data)
    offset = len(MAGIC) + _HEADER.size
    if version == 1:
        return Container(kind, data[offset:])
    if len(data) <= offset:
        raise ContainerError("the symbol set is cut short before its compression byte")
    compression = _compression(data[offset])
    body = data[offset + 1 :]
    if compression == _NO_COMPRESSION:
        return Container(kind, body)
    return Container(kind, _decompress(body, max_size))


def unpack_source_and_map(data: bytes) -> tuple[bytes, bytes]:
    """The minified file and the source map of a source-and-map container."""
    container = unpack(data)
    if container.kind is not Kind.SOURCE_AND_MAP:
        raise ContainerError(f"the symbol set is a {container.kind.label}, not a source and map")
    payload = container.payload
    minified, offset = _chunk(payload, 0, "minified source")
    source_map, offset = _chunk(payload, offset, "source map")
    if offset != len(payload):
        raise ContainerError(f"{len(payload) - offset} unexpected bytes after the source map")
    return minified, source_map


def _read_header(data: bytes) -> tuple[int, Kind]:
    if not data.startswith(MAGIC):
        raise ContainerError("not a symbol set: the posthog_error_tracking header is missing")
    offset = len(MAGIC)
    if len(data) < offset + _HEADER.size:
        raise ContainerError("the symbol set is cut short after its header")
    version, kind = _HEADER.unpack_from(data, offset)
    if version not in _VERSIONS:
        raise ContainerError(f"symbol set container version {version} is not supported (only 1 and 2)")
    try:
        return version, Kind(kind)
    except ValueError:
        known = ", ".join(f"{k.value} ({k.label})" for k in Kind)
        raise ContainerError(f"symbol set type {kind} is unknown; known types: {known}") from None


def _compression(flag: int) -> int:
    if flag not in (_NO_COMPRESSION, _ZSTD):
        raise ContainerError(f"symbol set compression {flag} is unknown (0 none, 1 zstd)")
    return flag


def _decompress(body: bytes, max_size: int | None) -> bytes:
    """The frames of a zstd payload, one after another. A frame must say its size (the CLI's
    encoder pledges it), which is checked against the limit before anything is inflated, and
    must be whole: a cut upload is refused, not read as a shorter file."""
    limit = max_size if max_size is not None else -1
    out: list[bytes] = []
    total = 0
    rest = body
    try:
        while rest:
            declared = zstandard.frame_content_size(rest)
            if declared < 0:
                raise ContainerError("the symbol set's zstd frame does not say its size")
            total += declared
            if 0 <= limit < total:
                raise ContainerError(f"the symbol set decompresses to more than {limit} bytes")
            frame = zstandard.ZstdDecompressor().decompressobj()
            out.append(frame.decompress(rest))
            if not frame.eof:
                raise ContainerError("the symbol set's zstd payload is corrupt: it is cut short")
            rest = frame.unused_data
    except zstandard.ZstdError as exc:
        raise ContainerError(f"the symbol set's zstd payload is corrupt: {exc}") from None
    return b"".join(out)


def _chunk(data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    if len(data) < offset + _LENGTH.size:
        raise ContainerError(f"the symbol set ends before the length of its {what}")
    (length,) = _LENGTH.unpack_from(data, offset)
    start = offset + _LENGTH.size
    if start + length > len(data):
        raise ContainerError(f"the symbol set's {what} says {length} bytes but only {len(data) - start} follow")
    return data[start : start + length], start + length
