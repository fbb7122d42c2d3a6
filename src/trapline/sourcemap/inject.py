"""Chunk ids into a minified file and its source map; pure functions over bytes and dicts.

What ``inject`` does to a file, in PostHog's CLI's format (so posthog-js and PostHog's own
servers read it):

1. prepends a snippet that records ``globalThis._posthogChunkIds[new Error().stack] = <id>``
   (and, in event mode with a release, ``globalThis._posthogReleaseId``): posthog-js parses the
   stack's file name out of that key to attach ``chunk_id`` to frames of this file;
2. appends ``\\n//# chunkId=<id>``, which ``upload`` (ours and PostHog's) reads back;
3. shifts the source map for the prepended text and adds ``"chunk_id"`` (and, in symbol-set
   mode, ``"release_id"``) to it.

The snippet is not always placed at byte 0: a ``#!`` line is only valid as the very first line,
and a directive (``"use strict";``, ``"use client";``) only counts as one before any other
statement. Prepending code there would turn a shebang into a syntax error and silently take a
script out of strict mode, so the snippet goes after both.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trapline.sourcemap.mappings import insert_columns, insert_lines
from trapline.sourcemap.maps import SourceMapError, flatten, is_index_map

__all__ = [
    "CHUNK_ID_NAMESPACE",
    "AlreadyInjected",
    "Injected",
    "ReleaseMode",
    "adopted_debug_id",
    "chunk_id_comment",
    "content_chunk_id",
    "debug_id_comment",
    "inject",
    "random_chunk_id",
    "release_neutral",
    "snippet",
]

CHUNK_ID_NAMESPACE = uuid.UUID("0e9b3c7a-5d1f-42a8-b6c4-e2d0f8a17593")

_GLOBAL = (
    'var e="undefined"!=typeof window?window:"undefined"!=typeof global?global:'
    '"undefined"!=typeof globalThis?globalThis:"undefined"!=typeof self?self:{}'
)
_RELEASE = "e._posthogReleaseId=e._posthogReleaseId||{release};"
_RECORD = "n&&(e._posthogChunkIds=e._posthogChunkIds||{{}},e._posthogChunkIds[n]={chunk})"

_CHUNK_ID_COMMENT = re.compile(rb"^[ \t]*//# chunkId=(\S+)[ \t]*\r?$", re.MULTILINE)
_DEBUG_ID_COMMENT = re.compile(rb"^[ \t]*//[#@] debugId=(\S+)[ \t]*\r?$", re.MULTILINE)
# The release assignment as ``snippet`` writes it, and what it replaces in the release-less form.
_RELEASE_IN_SNIPPET = re.compile(rb';e\._posthogReleaseId=e\._posthogReleaseId\|\|"[^"\\\r\n]*";var n=')

_BOM = b"\xef\xbb\xbf"
_SPACE = frozenset(b" \t\v\f\r\n")
_LINE_TERMINATOR = re.compile("\r\n|[\n\r\u2028\u2029]")


class ReleaseMode(StrEnum):
    """How a release reaches events (PostHog's ``--release-mode``)."""

    # The release id goes into the snippet and onto every event (``$release_id``); chunk ids
    # derive from the content, so the same chunk in two releases is one symbol set.
    EVENT = "event"
    # The release id goes into the map and binds the symbol set; chunk ids are random.
    SYMBOL_SET = "symbol-set"


class AlreadyInjected(ValueError):
    """Injecting twice would register a second chunk id and shift the map twice."""


@dataclass(frozen=True)
class Injected:
    source: bytes
    source_map: dict[str, Any]
    chunk_id: str


def snippet(chunk_id: str, release_id: str | None = None) -> str:
    """The statement prepended to a chunk, byte for byte as PostHog's CLI writes it."""
    record = _RECORD.format(chunk=json.dumps(chunk_id))
    if release_id is None:
        return f"!function(){{try{{{_GLOBAL},n=(new e.Error).stack;{record}}}catch(e){{}}}}();"
    release = _RELEASE.format(release=json.dumps(release_id))
    return f"!function(){{try{{{_GLOBAL};{release}var n=(new e.Error).stack;{record}}}catch(e){{}}}}();"


def release_neutral(source: bytes) -> bytes:
    """The injected file as it would be without the release id in its snippet.

    In event mode the same chunk gets the same chunk id in every release, but each release's
    snippet names a different release: hashing this form instead lets the server see "same
    content" and skip the upload, where the real bytes would be a ``content_hash_mismatch``.
    """
    return _RELEASE_IN_SNIPPET.sub(b",n=", source, count=1)


def content_chunk_id(source: bytes) -> str:
    """UUIDv5 of the minified file's bytes: a rebuild of the same file gets the same id."""
    digest = hashlib.sha1(CHUNK_ID_NAMESPACE.bytes + source, usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def random_chunk_id(now: Callable[[], float] = time.time, entropy: Callable[[int], bytes] = os.urandom) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    millis = int(now() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(entropy(10), "big")
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


def adopted_debug_id(source_map: dict[str, Any], source: bytes) -> str | None:
    """An ECMA-426 debug id already given to the file, if it is a UUID (canonical form)."""
    candidates: list[object] = [source_map.get("debugId"), source_map.get("debug_id")]
    comment = debug_id_comment(source)
    if comment is not None:
        candidates.append(comment)
    for candidate in candidates:
        if isinstance(candidate, str):
            try:
                return str(uuid.UUID(candidate))
            except ValueError:
                continue
    return None


def chunk_id_comment(source: bytes) -> str | None:
    """The chunk id of an already injected file (its last ``//# chunkId=`` comment)."""
    return _last_match(_CHUNK_ID_COMMENT, source)


def debug_id_comment(source: bytes) -> str | None:
    return _last_match(_DEBUG_ID_COMMENT, source)


def inject(
    source: bytes,
    source_map: dict[str, Any],
    chunk_id: str,
    *,
    release_id: str | None = None,
    mode: ReleaseMode = ReleaseMode.EVENT,
) -> Injected:
    """The injected file and its rewritten map; ``source_map`` is not modified."""
    if chunk_id_comment(source) is not None:
        raise AlreadyInjected("the file already has a //# chunkId= comment")
    text = snippet(chunk_id, release_id if mode is ReleaseMode.EVENT else None).encode()
    document = flatten(source_map) if is_index_map(source_map) else dict(source_map)
    if not isinstance(document.get("mappings"), str):
        raise SourceMapError('no "mappings" string')
    offset, shebang_only = _insertion_offset(source)
    line, column = _position(source[:offset])

    if shebang_only:
        # The file is a shebang without a line break: the snippet needs a line of its own,
        # and there is nothing mapped after it.
        injected = source + b"\n" + text + b"\n"
    elif offset == 0 or source[offset - 1] in b"\r\n":
        injected = source[:offset] + text + b"\n" + source[offset:]
        document["mappings"] = insert_lines(document["mappings"], line)
    else:
        # After a directive that shares its line with code: same line, columns move right.
        injected = source[:offset] + text + source[offset:]
        document["mappings"] = insert_columns(document["mappings"], line, column, len(text))

    document["chunk_id"] = chunk_id
    if mode is ReleaseMode.SYMBOL_SET and release_id is not None:
        document["release_id"] = release_id
    return Injected(source=injected + b"\n//# chunkId=" + chunk_id.encode(), source_map=document, chunk_id=chunk_id)


def _insertion_offset(source: bytes) -> tuple[int, bool]:
    """Where the snippet goes: after a BOM, a ``#!`` line and the directive prologue.

    Returns the offset and whether the file ends inside its shebang line.
    """
    offset = len(_BOM) if source.startswith(_BOM) else 0
    if source.startswith(b"#!", offset):
        end = _line_end(source, offset)
        if end == len(source):
            return end, True
        offset = end + (2 if source.startswith(b"\r\n", end) else 1)

    # Directives may be separated by comments and line breaks; those are only skipped when a
    # directive follows them, so a leading licence comment stays above the snippet otherwise.
    after = offset
    while True:
        start = _skip_trivia(source, after)
        literal_end = _string_literal_end(source, start)
        if literal_end is None:
            return after, False
        semicolon = literal_end
        while semicolon < len(source) and source[semicolon] in b" \t":
            semicolon += 1
        # Without the ";" the literal might continue as an expression on the next line (ASI
        # is not certain), so it is not taken for a directive: bundlers always write the ";".
        if semicolon >= len(source) or source[semicolon] != ord(";"):
            return after, False
        after = semicolon + 1


def _skip_trivia(source: bytes, offset: int) -> int:
    while offset < len(source):
        if source[offset] in _SPACE:
            offset += 1
        elif source.startswith(b"//", offset):
            offset = _line_end(source, offset)
        elif source.startswith(b"/*", offset):
            end = source.find(b"*/", offset + 2)
            if end == -1:
                return offset
            offset = end + 2
        else:
            return offset
    return offset


def _string_literal_end(source: bytes, offset: int) -> int | None:
    """The offset after a one-line string literal starting at ``offset``, if there is one."""
    if offset >= len(source) or source[offset] not in b"'\"":
        return None
    quote = source[offset]
    index = offset + 1
    while index < len(source):
        byte = source[index]
        if byte == quote:
            return index + 1
        if byte in b"\r\n":
            return None
        index += 2 if byte == ord("\\") else 1
    return None


def _line_end(source: bytes, offset: int) -> int:
    ends = [found for found in (source.find(b"\n", offset), source.find(b"\r", offset)) if found != -1]
    return min(ends) if ends else len(source)


def _position(prefix: bytes) -> tuple[int, int]:
    """Generated (line, column) at the end of ``prefix``, as source maps count them.

    Lines break at every ECMAScript line terminator; columns count UTF-16 code units.
    """
    text = prefix.decode("utf-8", errors="replace")
    breaks = list(_LINE_TERMINATOR.finditer(text))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks), len(text[line_start:].encode("utf-16-le")) // 2


def _last_match(pattern: re.Pattern[bytes], source: bytes) -> str | None:
    last: re.Match[bytes] | None = None
    for last in pattern.finditer(source):  # noqa: B007 - only the last one counts
        pass
    return last.group(1).decode("utf-8", errors="replace") if last else None
