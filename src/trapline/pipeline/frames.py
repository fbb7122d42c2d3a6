"""Raw stack frames in, cymbal's resolved ``Frame`` JSON out, for frames that need no symbols.

SDKs send ``{"type": "raw", "frames": [...]}`` stacks whose frames are tagged by ``platform``;
cymbal turns each raw frame into one or more resolved frames (``rust/cymbal/src/frames/mod.rs``
and ``langs/*.rs``). This module does that for every platform that passes through without a
symbol set, byte for byte, so that the frames, and the fingerprints built from them, match
PostHog's:

===================== =========================================================================
platform              resolved frame
===================== =========================================================================
``python``            as sent: source=filename, line=lineno, resolved_name=function, lang python
``ruby``              like python, lang ruby, no module
``node:javascript``   without ``chunk_id`` (or without lineno+colno): as sent, column dropped,
                      lang javascript. With a ``chunk_id`` a symbol set is needed; with none
                      uploaded the frame fails with "No sourcemap uploaded for chunk id: ..."
                      and counts as minified when its context lines average over 300 bytes.
``web:javascript``,   without lineno+colno: as sent (resolved). Otherwise a source map is
``javascript``        needed; without one the frame carries the error in ``resolve_failure``
                      and cymbal's "was minified" guess decides ``resolved`` (see
                      ``js_frame_without_symbols``).
``go``                as sent, lang go
``custom``            as sent, lang = ``lang``, resolved = ``resolved`` (default false)
anything else         trapline's fallback, see below
===================== =========================================================================

Facts taken from cymbal's source: ``in_app`` defaults to true when absent (``langs/mod.rs``,
``default_in_app``), so posthog-python's stdlib frames, which omit it, count as in-app;
``synthetic`` defaults to false. ``suspicious`` is set only when a source map resolves a web
frame into a source containing ``posthog-js@`` (``suspicious_source``); every frame built here
has it false, as in cymbal. Fields cymbal skips when None (``line``, ``column``, ``source``,
``module``, ``resolved_name``, ``resolve_failure``, ``code_variables``) are omitted, and keys
come in the order of cymbal's ``Frame`` struct. ``junk_drawer`` (debug data) is never emitted;
``context``, ``release`` and ``exception_type`` are ``#[serde(skip)]`` and never serialised.

Each frame's ``raw_id`` is ``"<hash>/<part>"``: the SHA-512 hex digest of the raw frame's
identifying bytes (per platform, see ``raw_frame_hash``) and the index of the resolved frame
among those its raw frame produced (always 0 here; a symbol set can expand one raw frame into
several). Frames with equal raw ids are the same frame to cymbal: it caches the first
resolution by raw id, so a later duplicate gets the first one's fields (in_app included).

Source context (the lines around the frame) is returned beside the frame, never inside it:
cymbal stores it with the frame record and keeps it off the event. Lines are cut at 300
characters plus "...✂️". ``before`` lists the nearest line first, as current cymbal does.

Unknown platforms: cymbal fails the whole event ("Invalid properties: ... unknown variant").
Trapline keeps the event and degrades the one frame: ``resolved`` false, ``resolve_failure``
"Unsupported platform: <platform>", ``lang`` the platform, ``raw_id`` the SHA-512 of the frame's
canonical JSON. The same holds for platforms cymbal reads only with symbol stores
(hermes, java, dart, apple, native, php) until trapline grows a resolver for them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import NamedTuple, NotRequired, TypedDict, cast

import orjson

from trapline.pipeline._wire import (
    U32_MAX,
    WireError,
    get_bool,
    get_str,
    get_str_list,
    get_u32,
    invalid_type,
    is_u32,
)

__all__ = [
    "CONTEXT_LINE_MAX_CHARS",
    "STACK_MEMO_MAX_BYTES",
    "ContextLine",
    "Frame",
    "FrameContext",
    "JsResolveError",
    "JsResolveErrorKind",
    "RawFrame",
    "ResolvedFrame",
    "ResolvedStack",
    "Resolver",
    "SymbolLookup",
    "WireError",
    "context_line",
    "js_frame_without_symbols",
    "mapped_frame",
    "node_frame_without_symbols",
    "normalize_resolved_frame",
    "raw_frame_context",
    "raw_frame_hash",
    "resolve_frame",
    "resolve_stack",
    "stack_lookups",
    "suspicious_source",
    "symbol_lookup",
    "unmapped_frame",
    "validate_raw_frame",
    "validate_raw_frames",
]

# Context lines longer than this (in characters) are cut and marked; cymbal's ContextLine::new.
CONTEXT_LINE_MAX_CHARS = 300
_CUT_MARK = "...✂️"
# Custom frames keep at most this many context lines each side (langs/custom.rs).
_CUSTOM_CONTEXT_LINES = 10
# JS frames whose column is past this are taken to be minified when no source map exists: "a
# total guess - intuition is people tend not to write lines longer than about 300 chars".
_MINIFIED_COLUMN = 300
# Node frames are taken to be minified when their context lines average more bytes than this.
_MINIFIED_AVERAGE_LINE = 300.0

_SENTRY_LIKE = ("python", "ruby", "node:javascript")
_WEB_JS = ("web:javascript", "javascript")  # "javascript" is the legacy tag for web frames
# Platforms cymbal knows but resolves only through symbol stores trapline does not have yet.
_SYMBOL_STORE_PLATFORMS = ("hermes", "java", "dart", "apple", "native", "rust", "php")


class RawFrame(TypedDict, total=False):
    """A raw frame as SDKs send it; which keys matter depends on ``platform``."""

    platform: str
    filename: str
    abs_path: str
    function: str
    lineno: int
    colno: int
    module: str
    context_line: str
    pre_context: list[str]
    post_context: list[str]
    in_app: bool
    synthetic: bool
    chunk_id: str
    chunkId: str  # posthog-js's old spelling; cymbal accepts it as an alias
    lang: str
    resolved: bool
    code_variables: object


class Frame(TypedDict):
    """cymbal's resolved frame, exactly as it serialises into ``$exception_list``."""

    raw_id: str
    mangled_name: str
    line: NotRequired[int]
    column: NotRequired[int]
    source: NotRequired[str]
    module: NotRequired[str]
    in_app: bool
    resolved_name: NotRequired[str]
    lang: str
    resolved: bool
    resolve_failure: NotRequired[str]
    synthetic: bool
    suspicious: bool
    code_variables: NotRequired[object]


class ContextLine(TypedDict):
    """One numbered source line."""

    number: int
    line: str


class FrameContext(TypedDict):
    """The source around a frame, as cymbal stores it with the frame record."""

    before: list[ContextLine]
    line: ContextLine
    after: list[ContextLine]


class ResolvedFrame(NamedTuple):
    """A resolved frame and, separately, its source context."""

    frame: Frame
    context: FrameContext | None


@dataclass(frozen=True)
class ResolvedStack:
    """The resolved frames of one raw stack, and their contexts keyed by frame ``raw_id``."""

    frames: list[Frame]
    contexts: dict[str, FrameContext]


# A symbol-set resolver: returns the resolved frames (with their contexts) for a raw frame it
# handles, their raw_id overwritten by resolve_stack, or None for the pass-through resolution.
Resolver = Callable[[RawFrame], "list[ResolvedFrame] | None"]


class JsResolveErrorKind(Enum):
    """The variants of cymbal's ``JsResolveErr`` (``error.rs``)."""

    NO_URL_OR_CHUNK_ID = "NoUrlOrChunkId"
    NO_SOURCE_URL = "NoSourceUrl"
    INVALID_SOURCE_MAP = "InvalidSourceMap"
    TOKEN_NOT_FOUND = "TokenNotFound"
    INVALID_SOURCE_URL = "InvalidSourceUrl"
    NO_SOURCEMAP = "NoSourcemap"
    INVALID_SOURCE_MAP_HEADER = "InvalidSourceMapHeader"
    INVALID_SOURCE_MAP_URL = "InvalidSourceMapUrl"
    TIMEOUT = "Timeout"
    HTTP_STATUS = "HttpStatus"
    NETWORK_ERROR = "NetworkError"
    REDIRECT_ERROR = "RedirectError"
    JS_DATA_ERROR = "JSDataError"
    INVALID_SOURCE_AND_MAP = "InvalidSourceAndMap"
    INVALID_DATA_URL = "InvalidDataUrl"
    NO_SOURCEMAP_UPLOADED = "NoSourcemapUploaded"


@dataclass(frozen=True)
class JsResolveError:
    """Why a JS frame could not be source-mapped; ``message`` is cymbal's exact Display text,
    which becomes the frame's ``resolve_failure``."""

    kind: JsResolveErrorKind
    message: str

    def __str__(self) -> str:
        return self.message

    def was_minified(self, column: int) -> bool:
        """cymbal's guess, for a failed web frame at ``column``, whether the code was minified."""
        if self.kind in (JsResolveErrorKind.NO_SOURCE_URL, JsResolveErrorKind.NO_URL_OR_CHUNK_ID):
            return False  # there was no script to map, so nothing says it was minified
        if self.kind is JsResolveErrorKind.NO_SOURCEMAP:
            return column > _MINIFIED_COLUMN
        return True

    @classmethod
    def no_url_or_chunk_id(cls) -> JsResolveError:
        return cls(JsResolveErrorKind.NO_URL_OR_CHUNK_ID, "This frame had no source url or chunk id")

    @classmethod
    def no_source_url(cls) -> JsResolveError:
        return cls(JsResolveErrorKind.NO_SOURCE_URL, "No source url found")

    @classmethod
    def invalid_source_map(cls, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_SOURCE_MAP, f"Invalid source map: {detail}")

    @classmethod
    def token_not_found(cls, function: str, line: int, column: int) -> JsResolveError:
        return cls(JsResolveErrorKind.TOKEN_NOT_FOUND, f"Token not found for frame: {function}:{line}:{column}")

    @classmethod
    def invalid_source_url(cls, url: str) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_SOURCE_URL, f"Invalid source url: {url}")

    @classmethod
    def no_sourcemap(cls, url: str) -> JsResolveError:
        return cls(JsResolveErrorKind.NO_SOURCEMAP, f"Could not find sourcemap for source url: {url}")

    @classmethod
    def invalid_source_map_header(cls, url: str) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_SOURCE_MAP_HEADER, f"Could not parse source-map header from url {url}")

    @classmethod
    def invalid_source_map_url(cls, url: str) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_SOURCE_MAP_URL, f"Invalid source url: {url}")

    @classmethod
    def timeout(cls, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.TIMEOUT, f"Request timed out while fetching: {detail}")

    @classmethod
    def http_status(cls, status: int, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.HTTP_STATUS, f"HTTP error {status} while fetching: {detail}")

    @classmethod
    def network_error(cls, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.NETWORK_ERROR, f"Network error while fetching: {detail}")

    @classmethod
    def redirect_error(cls, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.REDIRECT_ERROR, f"Redirect error while fetching: {detail}")

    @classmethod
    def js_data_error(cls, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.JS_DATA_ERROR, f"JSDataError: {detail}")

    @classmethod
    def invalid_source_and_map(cls) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_SOURCE_AND_MAP, "Invalid Source and Map")

    @classmethod
    def invalid_source_and_map_because(cls, detail: str) -> JsResolveError:
        """Trapline's: cymbal's message, with why the uploaded container could not be read."""
        return cls(JsResolveErrorKind.INVALID_SOURCE_AND_MAP, f"Invalid Source and Map: {detail}")

    @classmethod
    def from_message(cls, message: str) -> JsResolveError:
        """A failure stored as text (a symbol set's ``failure_reason``), to be reported again."""
        return cls(JsResolveErrorKind.INVALID_SOURCE_AND_MAP, message)

    @classmethod
    def invalid_data_url(cls, url: str, detail: str) -> JsResolveError:
        return cls(JsResolveErrorKind.INVALID_DATA_URL, f"Invalid data url found at {url}. {detail}")

    @classmethod
    def no_sourcemap_uploaded(cls, chunk_id: str) -> JsResolveError:
        return cls(JsResolveErrorKind.NO_SOURCEMAP_UPLOADED, f"No sourcemap uploaded for chunk id: {chunk_id}")


# --- parsed raw frames ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meta:
    in_app: bool
    synthetic: bool


@dataclass(frozen=True)
class _SentryLikeFrame:
    """python, ruby and node:javascript frames: Sentry's shape with context lines."""

    platform: str
    filename: str
    function: str
    lineno: int | None
    colno: int | None
    module: str | None
    context_line: str | None
    pre_context: list[str]
    post_context: list[str]
    chunk_id: str | None
    code_variables: object
    meta: _Meta


@dataclass(frozen=True)
class _JsFrame:
    location: tuple[int, int] | None  # (lineno, colno), only when both are valid u32s
    source_url: str | None
    function: str
    chunk_id: str | None
    meta: _Meta


@dataclass(frozen=True)
class _GoFrame:
    filename: str
    function: str
    lineno: int
    meta: _Meta


@dataclass(frozen=True)
class _CustomFrame:
    lang: str
    function: str
    filename: str | None
    lineno: int | None
    colno: int | None
    module: str | None
    context_line: str | None
    pre_context: list[str]
    post_context: list[str]
    resolved: bool
    meta: _Meta


@dataclass(frozen=True)
class _UnknownFrame:
    platform: str | None
    raw: Mapping[str, object]


_Parsed = _SentryLikeFrame | _JsFrame | _GoFrame | _CustomFrame | _UnknownFrame


def _meta(raw: Mapping[str, object]) -> _Meta:
    in_app = get_bool(raw, "in_app", default=True)
    synthetic = get_bool(raw, "synthetic", default=False)
    assert in_app is not None and synthetic is not None
    return _Meta(in_app=in_app, synthetic=synthetic)


def _chunk_id(raw: Mapping[str, object]) -> str | None:
    if "chunk_id" in raw and "chunkId" in raw:
        raise WireError("duplicate field `chunk_id`")
    key = "chunkId" if "chunkId" in raw else "chunk_id"
    return get_str(raw, key)


def _parse(raw: object) -> _Parsed:
    if not isinstance(raw, Mapping):
        raise invalid_type(raw, "internally tagged enum RawFrame")
    platform = raw.get("platform")
    if platform in _SENTRY_LIKE:
        assert isinstance(platform, str)
        node = platform == "node:javascript"
        if platform != "node:javascript":
            get_str(raw, "abs_path")  # read (and type-checked) by cymbal, otherwise unused
        return _SentryLikeFrame(
            platform=platform,
            filename=cast(str, get_str(raw, "filename", required=True)),
            function=cast(str, get_str(raw, "function", required=True)),
            lineno=get_u32(raw, "lineno"),
            colno=get_u32(raw, "colno") if node else None,
            # Ruby frames have no module in cymbal: it is neither hashed nor kept.
            module=get_str(raw, "module") if platform != "ruby" else None,
            context_line=get_str(raw, "context_line"),
            pre_context=get_str_list(raw, "pre_context"),
            post_context=get_str_list(raw, "post_context"),
            chunk_id=_chunk_id(raw) if node else None,
            # Only python frames carry code variables; null means none (Option<Value>).
            code_variables=raw.get("code_variables") if platform == "python" else None,
            meta=_meta(raw),
        )
    if platform in _WEB_JS:
        lineno, colno = raw.get("lineno"), raw.get("colno")
        # serde(flatten) of an Option<FrameLocation>: anything short of two valid u32s is
        # silently "no location", never an error.
        location = (cast(int, lineno), cast(int, colno)) if is_u32(lineno) and is_u32(colno) else None
        return _JsFrame(
            location=location,
            source_url=get_str(raw, "filename"),
            function=cast(str, get_str(raw, "function", required=True)),
            chunk_id=_chunk_id(raw),
            meta=_meta(raw),
        )
    if platform == "go":
        return _GoFrame(
            filename=cast(str, get_str(raw, "filename", required=True)),
            function=cast(str, get_str(raw, "function", required=True)),
            lineno=cast(int, get_u32(raw, "lineno", required=True)),
            meta=_meta(raw),
        )
    if platform == "custom":
        resolved = get_bool(raw, "resolved", default=False)
        assert resolved is not None
        return _CustomFrame(
            lang=cast(str, get_str(raw, "lang", required=True)),
            function=cast(str, get_str(raw, "function", required=True)),
            filename=get_str(raw, "filename"),
            lineno=get_u32(raw, "lineno"),
            colno=get_u32(raw, "colno"),
            module=get_str(raw, "module"),
            context_line=get_str(raw, "context_line"),
            pre_context=get_str_list(raw, "pre_context"),
            post_context=get_str_list(raw, "post_context"),
            resolved=resolved,
            meta=_meta(raw),
        )
    return _UnknownFrame(platform=platform if isinstance(platform, str) else None, raw=raw)


def validate_raw_frame(raw: object) -> str | None:
    """Why cymbal would refuse to deserialise ``raw`` (a serde-style message), or None.

    A refused frame fails its whole event in cymbal, so the exception normaliser turns this
    message into the event's rejection. Frames of unknown platforms pass: trapline degrades
    them instead (see the module docstring).
    """
    try:
        _resolved(raw)
    except WireError as error:
        return str(error)
    return None


# The same raw frames arrive again and again (every event of an issue has its stack), and a
# frame's pass-through resolution depends on nothing but the frame: resolve each distinct
# frame once. Keyed by the frame's JSON text; a few thousand frames of a few KB each.
_MEMO_SIZE = 4096


class _Facts(NamedTuple):
    """What is known of a raw frame without any symbols."""

    hash_id: str
    resolved: ResolvedFrame
    lookup: SymbolLookup | None


@lru_cache(maxsize=_MEMO_SIZE)
def _facts_by_json(text: bytes) -> _Facts:
    return _facts_of(orjson.loads(text))


def _facts_of(raw: object) -> _Facts:
    parsed = _parse(raw)
    hash_id = _hash(parsed)
    return _Facts(hash_id, _resolve_parsed(parsed, f"{hash_id}/0"), _lookup(parsed))


def _facts(raw: object) -> _Facts:
    """The frame's facts (cached); raises ``WireError``."""
    try:
        text = orjson.dumps(raw)
    except TypeError:  # not plain JSON (a caller's own object): no cache
        return _facts_of(raw)
    return _facts_by_json(text)


def _resolved(raw: object) -> tuple[str, ResolvedFrame]:
    """The frame's hash and pass-through resolution (cached); raises ``WireError``."""
    facts = _facts(raw)
    return facts.hash_id, facts.resolved


# Whole stacks repeat as well (every event of an issue carries the same one): a stack's facts
# are found with one JSON dump and one lookup instead of one of each per frame. The values are
# the frame cache's own objects (shared, not copied); the keys are the stacks' JSON texts, each
# at most STACK_MEMO_MAX_BYTES (a longer stack goes frame by frame), so the keys hold at most
# 512 x 64 KB = 32 MB, and a few MB for the usual stacks of a few KB.
STACK_MEMO_MAX_BYTES = 64 * 1024
_STACK_MEMO_SIZE = 512


class _StackFacts(NamedTuple):
    """The facts of a raw stack's frames, in order, or why cymbal would refuse one of them."""

    facts: tuple[_Facts, ...] | None
    problem: str | None  # the first refused frame's message (then facts is None)
    # (lookup, raw_frame_hash) of the frames a symbol set resolves, in order.
    lookups: tuple[tuple[SymbolLookup, str], ...]


def _stack_facts_of(raw_frames: Sequence[object]) -> _StackFacts:
    facts: list[_Facts] = []
    for raw in raw_frames:
        try:
            facts.append(_facts(raw))
        except WireError as error:
            return _StackFacts(None, str(error), ())
    lookups = tuple((fact.lookup, fact.hash_id) for fact in facts if fact.lookup is not None)
    return _StackFacts(tuple(facts), None, lookups)


@lru_cache(maxsize=_STACK_MEMO_SIZE)
def _stack_facts_by_json(text: bytes) -> _StackFacts:
    return _stack_facts_of(orjson.loads(text))


def _stack_facts(raw_frames: Sequence[object]) -> _StackFacts:
    """The stack's facts (cached per stack)."""
    try:
        text = orjson.dumps(raw_frames)
    except TypeError:  # not plain JSON: frame by frame
        return _stack_facts_of(raw_frames)
    if len(text) > STACK_MEMO_MAX_BYTES:
        return _stack_facts_of(raw_frames)
    return _stack_facts_by_json(text)


def validate_raw_frames(raw_frames: Sequence[object]) -> str | None:
    """``validate_raw_frame`` of each frame of a stack, in order: the first problem, or None."""
    return _stack_facts(raw_frames).problem


def stack_lookups(raw_frames: Sequence[RawFrame | Mapping[str, object]]) -> Sequence[tuple[SymbolLookup, str]]:
    """``(symbol_lookup(raw), raw_frame_hash(raw))`` of each frame of the stack that has a
    lookup, in order (cached per stack). Raises ``WireError`` for a frame cymbal would refuse."""
    stack = _stack_facts(raw_frames)
    if stack.problem is not None:
        raise WireError(stack.problem)
    return stack.lookups


# --- raw ids ------------------------------------------------------------------------------------


def _sha512(parts: Sequence[bytes]) -> str:
    hasher = hashlib.sha512()
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def _u32_be(value: int | None) -> bytes:
    return struct.pack(">I", value or 0)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _hash(parsed: _Parsed) -> str:
    if isinstance(parsed, _SentryLikeFrame):
        # context_line?, filename, function, lineno (u32 BE, 0 if absent), module?, pre, post.
        parts = [_utf8(parsed.context_line)] if parsed.context_line is not None else []
        parts += [_utf8(parsed.filename), _utf8(parsed.function), _u32_be(parsed.lineno)]
        if parsed.module is not None:
            parts.append(_utf8(parsed.module))
        parts += [_utf8(line) for line in (*parsed.pre_context, *parsed.post_context)]
        return _sha512(parts)
    if isinstance(parsed, _JsFrame):
        # function, then lineno and colno as decimal text when located, then filename or "".
        parts = [_utf8(parsed.function)]
        if parsed.location is not None:
            parts += [_utf8(str(parsed.location[0])), _utf8(str(parsed.location[1]))]
        parts.append(_utf8(parsed.source_url or ""))
        return _sha512(parts)
    if isinstance(parsed, _GoFrame):
        return _sha512([_utf8(parsed.filename), _utf8(parsed.function), _u32_be(parsed.lineno)])
    if isinstance(parsed, _CustomFrame):
        parts = [_utf8(parsed.context_line)] if parsed.context_line is not None else []
        if parsed.filename is not None:
            parts.append(_utf8(parsed.filename))
        parts += [_utf8(parsed.function), _u32_be(parsed.lineno), _u32_be(parsed.colno), _utf8(parsed.lang)]
        parts.append(b"true" if parsed.resolved else b"false")
        if parsed.module is not None:
            parts.append(_utf8(parsed.module))
        parts += [_utf8(line) for line in (*parsed.pre_context, *parsed.post_context)]
        return _sha512(parts)
    # Trapline's own id for frames cymbal cannot read: the frame's canonical JSON.
    canonical = json.dumps(parsed.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return _sha512([_utf8(canonical)])


def raw_frame_hash(raw: RawFrame | Mapping[str, object]) -> str:
    """The SHA-512 hex digest cymbal identifies ``raw`` by (the ``raw_id`` column, no part).

    Bytes hashed, in order, all strings as UTF-8 and integers as 4-byte big-endian u32s:

    * python, node:javascript: context_line (if any), filename, function, lineno (0 if
      absent), module (if any), every pre_context line, every post_context line;
    * ruby: the same without module;
    * web:javascript / javascript: function, then lineno and colno as decimal text (only when
      both are present), then filename or "";
    * go: filename, function, lineno;
    * custom: context_line (if any), filename (if any), function, lineno (0), colno (0), lang,
      "true" or "false" (resolved), module (if any), pre_context lines, post_context lines;
    * anything else (trapline only): the frame as JSON with sorted keys and no spaces.

    Raises ``WireError`` for a frame cymbal would not deserialise.
    """
    return _facts(raw).hash_id


# --- context ------------------------------------------------------------------------------------


def context_line(number: int, line: str) -> ContextLine:
    """A numbered source line as cymbal stores it (cut at 300 characters), without its line end."""
    return _context_line(number, line.rstrip("\r\n"))


def _context_line(number: int, line: str) -> ContextLine:
    cut = line[:CONTEXT_LINE_MAX_CHARS]
    if len(cut) < len(line):
        cut += _CUT_MARK
    # Only NULs are replaced: indentation in source lines is meaningful (sanitize_source_line).
    return {"number": number, "line": cut.replace("\x00", "\ufffd")}


def _offset(base: int, offset: int) -> int:
    # cymbal's ContextLine::new_rel saturates at both ends of u32.
    return min(max(base + offset, 0), U32_MAX)


def _sentry_context(frame: _SentryLikeFrame) -> FrameContext | None:
    if frame.context_line is None or frame.lineno is None:
        return None
    lineno = frame.lineno
    # pre_context arrives in file order, the line just above the frame last.
    before = [_context_line(_offset(lineno, -i - 1), line) for i, line in enumerate(reversed(frame.pre_context))]
    after = [_context_line(_offset(lineno, i + 1), line) for i, line in enumerate(frame.post_context)]
    return {"before": before, "line": _context_line(lineno, frame.context_line), "after": after}


def _custom_context(frame: _CustomFrame) -> FrameContext | None:
    if frame.context_line is None or frame.lineno is None:
        return None
    lineno = frame.lineno
    # Custom frames put the line just above the frame at index 0 of pre_context.
    pre = frame.pre_context[:_CUSTOM_CONTEXT_LINES]
    post = frame.post_context[:_CUSTOM_CONTEXT_LINES]
    before = [_context_line(_offset(lineno, -i - 1), line) for i, line in enumerate(pre)]
    after = [_context_line(_offset(lineno, i + 1), line) for i, line in enumerate(post)]
    return {"before": before, "line": _context_line(lineno, frame.context_line), "after": after}


def raw_frame_context(raw: RawFrame | Mapping[str, object]) -> FrameContext | None:
    """The source context a raw frame carries (python, ruby, node, custom), or None.

    There is context only when the frame has both ``context_line`` and ``lineno``.
    """
    parsed = _parse(raw)
    if isinstance(parsed, _SentryLikeFrame):
        return _sentry_context(parsed)
    if isinstance(parsed, _CustomFrame):
        return _custom_context(parsed)
    return None


def _context_likely_minified(context: FrameContext) -> bool:
    lines = [*context["before"], *context["after"]]
    if not lines:
        return False  # cymbal divides 0 by 0 here; NaN > 300 is false
    total = sum(len(line["line"].encode("utf-8")) for line in lines)
    return total / len(lines) > _MINIFIED_AVERAGE_LINE


# --- URLs (web frames) --------------------------------------------------------------------------

_FORBIDDEN_HOST = frozenset("\x00\t\n\r #%/:<>?@[\\]^|\x7f")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_PATH_ENCODE = frozenset(' "#<>?`{}')
_QUERY_ENCODE = frozenset(" \"#<>'")
_FRAGMENT_ENCODE = frozenset(' "<>`')
_USERINFO_ENCODE = _PATH_ENCODE | frozenset("/:;=@[\\]^|")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _percent_encode(text: str, encode: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in encode or ord(char) < 0x20 or ord(char) > 0x7E:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def _ipv4_number(part: str) -> int | None:
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def _host(text: str) -> str | None:
    """WHATWG host parsing for special URLs, as the Rust url crate does it, or None."""
    if text.startswith("["):
        if not text.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        decoded = re.sub(
            "(%[0-9A-Fa-f]{2})+",
            lambda match: bytes.fromhex(match.group().replace("%", "")).decode("utf-8"),
            text,
        )
        domain = decoded.lower() if decoded.isascii() else decoded.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return None
    if not domain or any(char in _FORBIDDEN_HOST or ord(char) < 0x20 for char in domain):
        return None
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]
    if not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
        return domain
    # The host ends in a number, so it must be an IPv4 address (in any of its spellings).
    numbers = [_ipv4_number(label) for label in labels]
    if len(numbers) > 4 or any(number is None for number in numbers):
        return None
    values = cast(list[int], numbers)
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))


def _path(text: str) -> str:
    text = text.replace("\\", "/")
    if text.startswith("/"):
        text = text[1:]
    segments = text.split("/")
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(_percent_encode(segment, _PATH_ENCODE))
    return "/" + "/".join(out)


def _http_url(text: str) -> tuple[str, str] | None:
    """Parse an http(s) URL like the Rust url crate: (serialisation, path), or None."""
    text = text.strip(_C0_OR_SPACE)
    text = re.sub("[\t\n\r]", "", text)
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    rest = rest.lstrip("/\\")
    authority = re.match(r"[^/\\?#]*", rest)
    assert authority is not None
    tail = rest[authority.end() :]
    userinfo, at, hostport = authority.group().rpartition("@")
    if not at:
        userinfo = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host_text, port_text = (hostport, "") if end == -1 else (hostport[: end + 1], hostport[end + 1 :])
        if port_text and not port_text.startswith(":"):
            return None
        port_text = port_text[1:]
    else:
        host_text, _, port_text = hostport.partition(":")
    host = _host(host_text) if host_text else None
    if host is None:
        return None
    port = ""
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            return None
        if int(port_text) != _DEFAULT_PORTS[scheme]:
            port = f":{int(port_text)}"
    user = ""
    if userinfo:
        name, colon, password = userinfo.partition(":")
        user = _percent_encode(name, _USERINFO_ENCODE)
        if colon and password:
            user += ":" + _percent_encode(password, _USERINFO_ENCODE)
        user = f"{user}@" if user else ""
    path_end = re.match(r"[^?#]*", tail)
    assert path_end is not None
    path = _path(path_end.group())
    serialised = f"{scheme}://{user}{host}{port}{path}"
    after = tail[path_end.end() :]
    if after.startswith("?"):
        query, fragment_mark, fragment = after[1:].partition("#")
        serialised += "?" + _percent_encode(query, _QUERY_ENCODE)
        if fragment_mark:
            serialised += "#" + _percent_encode(fragment, _FRAGMENT_ENCODE)
    elif after.startswith("#"):
        serialised += "#" + _percent_encode(after[1:], _FRAGMENT_ENCODE)
    return serialised, path


def _source_url(frame: _JsFrame) -> tuple[str, str] | JsResolveError:
    """cymbal's ``RawJSFrame::source_url``: the script URL as (serialisation, path)."""
    if frame.source_url is None:
        return JsResolveError.no_source_url()
    url = frame.source_url
    if not url.startswith(("http://", "https://")):
        return JsResolveError.invalid_source_url(url)
    # Strip a trailing ":line:col": a colon after the last slash ends the URL, checked twice.
    for _ in range(2):
        colon, slash = url.rfind(":"), url.rfind("/")
        if colon != -1 and slash != -1 and colon > slash:
            url = url[:colon]
    parsed = _http_url(url)
    if parsed is None:
        return JsResolveError.invalid_source_url(url)
    return parsed


def _default_js_error(frame: _JsFrame) -> JsResolveError:
    """The failure a web frame gets when no symbol set resolves it.

    Trapline fetches nothing from the network, so a frame with a chunk id fails as cymbal's
    chunk-id-only lookup does ("No sourcemap uploaded"), one with only a script URL as a fetched
    script without a sourcemap reference does ("Could not find sourcemap"), and one with
    neither as cymbal's ``NoUrlOrChunkId``.
    """
    if frame.chunk_id is not None:
        return JsResolveError.no_sourcemap_uploaded(frame.chunk_id)
    url = _source_url(frame)
    if isinstance(url, JsResolveError):
        return JsResolveError.no_url_or_chunk_id()
    return JsResolveError.no_sourcemap(url[0])


# --- resolved frames ----------------------------------------------------------------------------


def _frame(
    *,
    raw_id: str,
    mangled_name: str,
    line: int | None,
    column: int | None,
    source: str | None,
    module: str | None,
    in_app: bool,
    resolved_name: str | None,
    lang: str,
    resolved: bool,
    resolve_failure: str | None = None,
    synthetic: bool,
    suspicious: bool = False,
    code_variables: object = None,
) -> Frame:
    # Key order and the None-skipping follow cymbal's Frame struct and its serde attributes.
    out: dict[str, object] = {"raw_id": raw_id, "mangled_name": mangled_name}
    if line is not None:
        out["line"] = line
    if column is not None:
        out["column"] = column
    if source is not None:
        out["source"] = source
    if module is not None:
        out["module"] = module
    out["in_app"] = in_app
    if resolved_name is not None:
        out["resolved_name"] = resolved_name
    out["lang"] = lang
    out["resolved"] = resolved
    if resolve_failure is not None:
        out["resolve_failure"] = resolve_failure
    out["synthetic"] = synthetic
    out["suspicious"] = suspicious
    if code_variables is not None:
        out["code_variables"] = code_variables
    return cast(Frame, out)


def _js_unresolved(frame: _JsFrame, raw_id: str, error: JsResolveError | None) -> Frame:
    url = _source_url(frame)
    source = None if isinstance(url, JsResolveError) else url[1]
    if frame.location is None:
        # No position to map: taken as unminified code, whatever the error was.
        anonymous = frame.source_url == "<anonymous>"
        return _frame(
            raw_id=raw_id,
            mangled_name=frame.function,
            line=None,
            column=None,
            source=source,
            module=None,
            in_app=frame.meta.in_app and not anonymous,
            resolved_name=frame.function,
            lang="javascript",
            resolved=True,
            synthetic=frame.meta.synthetic,
        )
    if error is None:
        error = _default_js_error(frame)
    line, column = frame.location
    minified = error.was_minified(column)
    return _frame(
        raw_id=raw_id,
        mangled_name=frame.function,
        line=line,
        column=column,
        source=source,
        module=None,
        in_app=frame.meta.in_app,
        resolved_name=None if minified else frame.function,
        lang="javascript",
        resolved=not minified,
        # The error is kept even when the frame counts as resolved, to explain that guess.
        resolve_failure=error.message,
        synthetic=frame.meta.synthetic,
    )


def _node_unresolved(frame: _SentryLikeFrame, raw_id: str, error: JsResolveError) -> ResolvedFrame:
    context = _sentry_context(frame)
    minified = context is not None and _context_likely_minified(context)
    resolved = _frame(
        raw_id=raw_id,
        mangled_name=frame.function,
        line=frame.lineno,
        column=frame.colno,
        source=None,  # cymbal drops the filename on this path
        module=frame.module,
        in_app=frame.meta.in_app,
        resolved_name=None if minified else frame.function,
        lang="javascript",
        resolved=not minified,
        resolve_failure=error.message,
        synthetic=frame.meta.synthetic,
    )
    return ResolvedFrame(resolved, context)


def _pass_through(frame: _SentryLikeFrame, raw_id: str) -> ResolvedFrame:
    lang = "javascript" if frame.platform == "node:javascript" else frame.platform
    resolved = _frame(
        raw_id=raw_id,
        mangled_name=frame.function,
        line=frame.lineno,
        column=None,  # cymbal drops colno of unmapped node frames
        source=frame.filename,
        module=frame.module,
        in_app=frame.meta.in_app,
        resolved_name=frame.function,
        lang=lang,
        resolved=True,
        synthetic=frame.meta.synthetic,
        code_variables=frame.code_variables,
    )
    return ResolvedFrame(resolved, _sentry_context(frame))


def _resolve_parsed(parsed: _Parsed, raw_id: str) -> ResolvedFrame:
    if isinstance(parsed, _SentryLikeFrame):
        located = parsed.lineno is not None and parsed.colno is not None
        if parsed.platform == "node:javascript" and parsed.chunk_id is not None and located:
            return _node_unresolved(parsed, raw_id, JsResolveError.no_sourcemap_uploaded(parsed.chunk_id))
        return _pass_through(parsed, raw_id)
    if isinstance(parsed, _JsFrame):
        return ResolvedFrame(_js_unresolved(parsed, raw_id, None), None)
    if isinstance(parsed, _GoFrame):
        frame = _frame(
            raw_id=raw_id,
            mangled_name=parsed.function,
            line=parsed.lineno,
            column=None,
            source=parsed.filename,
            module=None,
            in_app=parsed.meta.in_app,
            resolved_name=parsed.function,
            lang="go",
            resolved=True,
            synthetic=parsed.meta.synthetic,
        )
        return ResolvedFrame(frame, None)
    if isinstance(parsed, _CustomFrame):
        frame = _frame(
            raw_id=raw_id,
            mangled_name=parsed.function,
            line=parsed.lineno,
            column=parsed.colno,
            source=parsed.filename,
            module=parsed.module,
            in_app=parsed.meta.in_app,
            # cymbal names custom frames after their function even when resolved is false.
            resolved_name=parsed.function,
            lang=parsed.lang,
            resolved=parsed.resolved,
            synthetic=parsed.meta.synthetic,
        )
        return ResolvedFrame(frame, _custom_context(parsed))
    return ResolvedFrame(_fallback(parsed, raw_id), None)


def _fallback(parsed: _UnknownFrame, raw_id: str) -> Frame:
    raw = parsed.raw

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    def number(key: str) -> int | None:
        value = raw.get(key)
        return value if isinstance(value, int) and is_u32(value) else None

    in_app, synthetic = raw.get("in_app"), raw.get("synthetic")
    platform = parsed.platform
    return _frame(
        raw_id=raw_id,
        mangled_name=text("function") or "",
        line=number("lineno"),
        column=number("colno"),
        source=text("filename") or text("abs_path"),
        module=text("module"),
        in_app=in_app if isinstance(in_app, bool) else True,
        resolved_name=None,
        lang=platform if platform else "unknown",
        resolved=False,
        resolve_failure=f"Unsupported platform: {platform}" if platform else "Frame has no platform",
        synthetic=synthetic if isinstance(synthetic, bool) else False,
    )


def resolve_frame(raw: RawFrame | Mapping[str, object]) -> ResolvedFrame:
    """Resolve one raw frame the way cymbal does when no symbol set is involved.

    Trapline fetches nothing, so a web frame with a position fails as having no symbol set: with
    a chunk id "No sourcemap uploaded for chunk id" (minified), with only an http(s) URL "Could
    not find sourcemap for source url" (minified past column 300), with neither cymbal's
    "This frame had no source url or chunk id" (not minified). A node frame with a chunk id and
    a position fails as having no symbol set uploaded. Raises ``WireError`` for a frame cymbal
    would not deserialise (see ``validate_raw_frame``).
    """
    parsed = _parse(raw)
    return _resolve_parsed(parsed, f"{_hash(parsed)}/0")


def js_frame_without_symbols(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> Frame:
    """The frame cymbal emits when a web (``web:javascript``/``javascript``) frame could not be
    source-mapped because of ``error``.

    For resolvers: call it with your own error. cymbal's "was minified" guess decides the rest:
    ``NoSourceUrl``/``NoUrlOrChunkId`` mean not minified; ``NoSourcemap`` means minified only
    past column 300; every other error means minified. A minified frame is ``resolved`` false
    with no ``resolved_name``; otherwise it keeps its function name and counts as resolved. Both
    keep ``resolve_failure`` = the error text, line/column = lineno/colno, source = the URL's
    path, and the raw frame's ``in_app``. A frame without lineno+colno ignores the error and
    passes through resolved, as in cymbal.
    """
    parsed = _parse(raw)
    if not isinstance(parsed, _JsFrame):
        raise ValueError("js_frame_without_symbols takes web:javascript or javascript frames")
    return _js_unresolved(parsed, f"{_hash(parsed)}/0", error)


def node_frame_without_symbols(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> Frame:
    """The frame cymbal emits when a ``node:javascript`` frame with a chunk id could not be
    source-mapped because of ``error``: no ``source``, line/column as sent, minified (so
    unresolved and unnamed) when its context lines average more than 300 bytes. Its context is
    ``raw_frame_context(raw)``."""
    parsed = _parse(raw)
    if not isinstance(parsed, _SentryLikeFrame) or parsed.platform != "node:javascript":
        raise ValueError("node_frame_without_symbols takes node:javascript frames")
    return _node_unresolved(parsed, f"{_hash(parsed)}/0", error).frame


@dataclass(frozen=True)
class SymbolLookup:
    """What a symbol-set resolver looks up for a raw frame: the chunk's symbols at a position.

    ``line`` and ``column`` are as the SDK sent them: 1-based, as JavaScript engines count.
    """

    chunk_id: str
    line: int
    column: int


def symbol_lookup(raw: RawFrame | Mapping[str, object]) -> SymbolLookup | None:
    """The lookup a ``web:javascript``/``javascript``/``node:javascript`` frame needs, or None
    for frames cymbal resolves without symbols (other platforms, no chunk id, no position)."""
    return _facts(raw).lookup


def _lookup(parsed: _Parsed) -> SymbolLookup | None:
    if isinstance(parsed, _JsFrame):
        if parsed.location is None or parsed.chunk_id is None:
            return None
        return SymbolLookup(parsed.chunk_id, parsed.location[0], parsed.location[1])
    if isinstance(parsed, _SentryLikeFrame) and parsed.platform == "node:javascript":
        if parsed.chunk_id is None or parsed.lineno is None or parsed.colno is None:
            return None
        return SymbolLookup(parsed.chunk_id, parsed.lineno, parsed.colno)
    return None


def mapped_frame(
    raw: RawFrame | Mapping[str, object],
    *,
    line: int,
    column: int,
    source: str | None,
    resolved_name: str | None,
) -> Frame:
    """The frame of a JavaScript raw frame a source map resolved (cymbal's ``From<(RawJSFrame,
    SourceLocation)>``): the original position, file and function (None when the map knows no
    scope; ``"<anonymous>"`` for an anonymous one); in-app unless the file is under
    ``node_modules``; web frames from PostHog's own SDK are ``suspicious``."""
    parsed = _parse(raw)
    if not isinstance(parsed, _JsFrame | _SentryLikeFrame):
        raise ValueError("mapped_frame takes JavaScript frames")
    source = None if source is None else source.replace("\x00", "\ufffd")
    return _frame(
        raw_id=f"{_hash(parsed)}/0",
        mangled_name=parsed.function,
        line=line,
        column=column,
        source=source,
        module=None,
        in_app=parsed.meta.in_app if source is None else "node_modules" not in source,
        resolved_name=None if resolved_name is None else resolved_name.replace("\x00", "\ufffd"),
        lang="javascript",
        resolved=True,
        synthetic=parsed.meta.synthetic,
        suspicious=isinstance(parsed, _JsFrame) and suspicious_source(source),
    )


def unmapped_frame(raw: RawFrame | Mapping[str, object], error: JsResolveError) -> ResolvedFrame:
    """The frame (and context) of a JavaScript raw frame whose symbols failed with ``error``."""
    parsed = _parse(raw)
    if isinstance(parsed, _JsFrame):
        return ResolvedFrame(_js_unresolved(parsed, f"{_hash(parsed)}/0", error), None)
    if isinstance(parsed, _SentryLikeFrame) and parsed.platform == "node:javascript":
        return _node_unresolved(parsed, f"{_hash(parsed)}/0", error)
    raise ValueError("unmapped_frame takes JavaScript frames")


def suspicious_source(source: str | None) -> bool:
    """cymbal's ``suspicious`` flag for a source-mapped web frame: its source is PostHog's SDK."""
    return source is not None and "posthog-js@" in source


def resolve_stack(
    raw_frames: Sequence[RawFrame | Mapping[str, object]], resolver: Resolver | None = None
) -> ResolvedStack:
    """Resolve a raw stack frame by frame, in order.

    ``resolver`` is asked first for every frame; when it returns a list, those frames replace
    the raw frame (their ``raw_id`` set to ``"<hash>/<index>"``, as cymbal does after any
    resolution), and when it returns None the frame passes through ``resolve_frame``. A resolver
    should return None for frames ``symbol_lookup`` gives nothing for: cymbal never looks
    those up.
    """
    frames: list[Frame] = []
    contexts: dict[str, FrameContext] = {}
    stack = _stack_facts(raw_frames)
    if stack.facts is None:  # a refused frame: raise where frame by frame raises
        facts: Sequence[_Facts | None] = [None] * len(raw_frames)
    else:
        facts = stack.facts
        if resolver is None:
            for facts_of_frame in stack.facts:
                cached, cached_context = facts_of_frame.resolved
                # A copy: the cached frame is shared by every event with this frame.
                frames.append(cast(Frame, dict(cached)))
                if cached_context is not None:
                    contexts[cached["raw_id"]] = cached_context
            return ResolvedStack(frames=frames, contexts=contexts)
    for raw, fact in zip(raw_frames, facts, strict=True):
        hash_id, (frame, context) = _resolved(raw) if fact is None else (fact.hash_id, fact.resolved)
        replaced = resolver(cast(RawFrame, raw)) if resolver is not None else None
        if replaced is not None:
            if not replaced:
                raise ValueError("a resolver must return at least one frame, or None")
            for index, (mapped, mapped_context) in enumerate(replaced):
                rest = {key: value for key, value in mapped.items() if key != "raw_id"}
                frames.append(cast(Frame, {"raw_id": f"{hash_id}/{index}", **rest}))
                if mapped_context is not None:
                    contexts[f"{hash_id}/{index}"] = mapped_context
            continue
        # A copy: the cached frame is shared by every event with this frame.
        frames.append(cast(Frame, dict(frame)))
        if context is not None:
            contexts[frame["raw_id"]] = context
    return ResolvedStack(frames=frames, contexts=contexts)


# --- frames that arrive already resolved --------------------------------------------------------


def normalize_resolved_frame(obj: object) -> Frame:
    """A frame from a stack the client sent as ``"type": "resolved"``, re-serialised the way
    cymbal re-serialises it: unknown keys dropped, None fields omitted, ``synthetic`` and
    ``suspicious`` defaulting to false, ``raw_id`` written as ``"<hash>/<part>"``.

    Raises ``WireError`` where cymbal's deserialisation would fail.
    """
    if not isinstance(obj, Mapping):
        raise invalid_type(obj, "struct Frame")
    raw_id = cast(str, get_str(obj, "raw_id", required=True))
    # FrameId's deserialiser: "<hash>/<part>", the part an i32, a bare hash meaning part 0.
    hash_id, slash, rest = raw_id.partition("/")
    part = rest.split("/")[0] if slash else "0"
    if not part:
        raise WireError("cannot parse integer from empty string")
    if not re.fullmatch(r"[+-]?[0-9]+", part):
        raise WireError("invalid digit found in string")
    if not -(2**31) <= int(part) < 2**31:
        raise WireError("number too large to fit in target type")
    synthetic = get_bool(obj, "synthetic", default=False)
    suspicious = get_bool(obj, "suspicious", default=False)
    return _frame(
        raw_id=f"{hash_id}/{int(part)}",
        mangled_name=cast(str, get_str(obj, "mangled_name", required=True)),
        line=get_u32(obj, "line"),
        column=get_u32(obj, "column"),
        source=get_str(obj, "source"),
        module=get_str(obj, "module"),
        in_app=_required_bool(obj, "in_app"),
        resolved_name=get_str(obj, "resolved_name"),
        lang=cast(str, get_str(obj, "lang", required=True)),
        resolved=_required_bool(obj, "resolved"),
        resolve_failure=get_str(obj, "resolve_failure"),
        synthetic=bool(synthetic),
        suspicious=bool(suspicious),
        code_variables=obj.get("code_variables"),
    )


def _required_bool(obj: Mapping[str, object], key: str) -> bool:
    if key not in obj:
        raise WireError(f"missing field `{key}`")
    value = obj[key]
    if not isinstance(value, bool):
        raise invalid_type(value, "a boolean")
    return value
