"""Web JavaScript frames (``web:javascript``, and ``javascript``, the legacy tag for them), and the
errors cymbal reports when a JavaScript frame cannot be source-mapped (``JsResolveError``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import cast

from trapline.pipeline._wire import WireError, get_str, is_u32
from trapline.pipeline.frames.base import (
    Frame,
    FrameContext,
    Meta,
    ResolvedFrame,
    SymbolLookup,
    build_frame,
    read_meta,
    sha512_hex,
    utf8,
)
from trapline.pipeline.frames.urls import http_url

__all__ = [
    "JsFrame",
    "JsResolveError",
    "JsResolveErrorKind",
    "js_unresolved",
    "parse_js_frame",
    "read_chunk_id",
    "suspicious_source",
]

# JS frames whose column is past this are taken to be minified when no source map exists: "a
# total guess - intuition is people tend not to write lines longer than about 300 chars".
_MINIFIED_COLUMN = 300


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


def read_chunk_id(raw: Mapping[str, object]) -> str | None:
    """A JavaScript frame's ``chunk_id`` (or its alias ``chunkId``)."""
    if "chunk_id" in raw and "chunkId" in raw:
        raise WireError("duplicate field `chunk_id`")
    key = "chunkId" if "chunkId" in raw else "chunk_id"
    return get_str(raw, key)


@dataclass(frozen=True)
class JsFrame:
    """A web frame: a script URL and a position a source map may resolve."""

    location: tuple[int, int] | None  # (lineno, colno), only when both are valid u32s
    source_url: str | None
    function: str
    chunk_id: str | None
    meta: Meta

    def raw_hash(self) -> str:
        # function, then lineno and colno as decimal text when located, then filename or "".
        parts = [utf8(self.function)]
        if self.location is not None:
            parts += [utf8(str(self.location[0])), utf8(str(self.location[1]))]
        parts.append(utf8(self.source_url or ""))
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        return ResolvedFrame(js_unresolved(self, raw_id, None), None)

    def lookup(self) -> SymbolLookup | None:
        if self.location is None or self.chunk_id is None:
            return None
        return SymbolLookup(self.chunk_id, self.location[0], self.location[1])

    def context(self) -> FrameContext | None:
        return None  # web frames carry no source lines


def parse_js_frame(raw: Mapping[str, object]) -> JsFrame:
    lineno, colno = raw.get("lineno"), raw.get("colno")
    # serde(flatten) of an Option<FrameLocation>: anything short of two valid u32s is
    # silently "no location", never an error.
    location = (cast(int, lineno), cast(int, colno)) if is_u32(lineno) and is_u32(colno) else None
    return JsFrame(
        location=location,
        source_url=get_str(raw, "filename"),
        function=cast(str, get_str(raw, "function", required=True)),
        chunk_id=read_chunk_id(raw),
        meta=read_meta(raw),
    )


def _source_url(frame: JsFrame) -> tuple[str, str] | JsResolveError:
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
    parsed = http_url(url)
    if parsed is None:
        return JsResolveError.invalid_source_url(url)
    return parsed


def _default_js_error(frame: JsFrame) -> JsResolveError:
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


def js_unresolved(frame: JsFrame, raw_id: str, error: JsResolveError | None) -> Frame:
    """The frame of a web frame no source map resolved: failed with ``error``, or with the
    failure trapline's lack of a symbol set means when ``error`` is None."""
    url = _source_url(frame)
    source = None if isinstance(url, JsResolveError) else url[1]
    if frame.location is None:
        # No position to map: taken as unminified code, whatever the error was.
        anonymous = frame.source_url == "<anonymous>"
        return build_frame(
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
    return build_frame(
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


def suspicious_source(source: str | None) -> bool:
    """cymbal's ``suspicious`` flag for a source-mapped web frame: its source is PostHog's SDK."""
    return source is not None and "posthog-js@" in source
