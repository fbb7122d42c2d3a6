"""Turn a raw PostHog capture request into events: pure and synchronous, no I/O.

The unmodified SDKs wrap the same JSON in up to three layers, undone here from the outside in:

1. HTTP ``Content-Encoding``: gzip, deflate (zlib or raw), zstd or br. posthog-python sets it
   when built with ``gzip=True`` and in its v1 protocol; sentry-sdk sends br or gzip.
2. PostHog's own gzip. posthog-js 1.449 posts a gzip stream as ``text/plain`` with no header and
   no hint, so gzip is recognised by its magic bytes ``1f 8b``; older posthog-js said
   ``?compression=gzip-js`` instead.
3. An urlencoded form ``data=<base64 of JSON>`` (posthog-js ``base64`` mode, ``sendBeacon``), or
   ``data=<lz-string>`` with ``?compression=lz64`` (legacy posthog-js).

What is left is JSON: one event, ``{"batch": [...], "api_key": ..., "sent_at": ...}``
(posthog-js, posthog-python v0), ``{"created_at": ..., "batch": [...]}`` (posthog-python v1,
token in the ``Authorization`` header), or a bare array of events.

Every step is bounded by ``Limits``: nothing is inflated past ``max_decompressed_bytes``, so a
compression bomb costs at most that much memory and the time it takes to produce it. Failures
raise ``DecodeError`` (answer 400) or ``TooLarge`` (answer 413) with a message meant for the
client; no other exception escapes, whatever the input.

Events are checked only for being JSON objects; what they mean is the pipeline's business.
"""

from __future__ import annotations

import binascii
import importlib
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias
from urllib.parse import unquote_to_bytes

import brotli
import orjson

from trapline.ingest.lzstring import LZStringError, LZStringTooLarge, decompress_from_base64

__all__ = ["DecodeError", "DecodedBatch", "DroppedEvent", "Limits", "TooLarge", "decode_capture", "decompress"]

_Buffer: TypeAlias = bytes | bytearray

_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOM: Final = b"\xef\xbb\xbf"
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
_BODY: Final = "the request body"
# Decompressors hand out at most this much per call: small enough that a bomb is caught within
# one chunk of the limit, large enough that a typical body inflates in a single call.
_OUTPUT_CHUNK: Final = 256 * 1024
_INPUT_SLICE: Final = 64 * 1024
# Every SDK sends one gzip member. Each extra one costs a new inflater, so thousands of empty
# members in one body would be a cheap way to burn CPU.
_MAX_GZIP_MEMBERS: Final = 64
# A zstd frame names the window its decoder must allocate before producing a byte (libzstd
# allows 128 MiB by default). Level 19 without --long needs 8 MiB; refuse frames that want more.
_ZSTD_MAX_WINDOW: Final = 8 * 1024 * 1024
# "gzip, gzip, gzip, ..." would make us decompress once per layer; SDKs use one.
_MAX_CODINGS: Final = 2
# Re-encoding only ever grows numbers, by at most 4.5 times (orjson writes 1e15 as
# 1000000000000000.0), so an event can only be over the limit if its body is over a fifth of it:
# smaller bodies, the usual case, skip measuring their events.
_MAX_REENCODING_GROWTH: Final = 5

_GZIP: Final = "gzip"
_BASE64: Final = "base64"
_LZ64: Final = "lz64"
# Values of ?compression= (and of the form's compression field) that PostHog's capture accepts.
_HINTS: Final = {"gzip": _GZIP, "gzip-js": _GZIP, "base64": _BASE64, "b64": _BASE64, "lz64": _LZ64, "lz-string": _LZ64}

_URLSAFE_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_LEADING_WHITESPACE: Final = re.compile(rb"[ \t\r\n]*")
# One JSON escape at a time, so that an escaped backslash is never mistaken for the start of a
# \u escape: a backslash pair, a valid surrogate pair, or a lone surrogate (the only one replaced).
_SURROGATE_ESCAPE: Final = re.compile(
    rb"\\(?:\\|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_JSON_TYPES: Final[dict[type, str]] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class DecodeError(Exception):
    """The body cannot be read; ``str(exc)`` is a clear client-facing reason (answer 400)."""


class TooLarge(Exception):
    """A size limit was exceeded; the message says which (answer 413)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits for one capture request, in bytes."""

    # The body as received, before any decompression.
    max_body_bytes: int
    # The JSON text after every decompression and unwrapping: the bomb guard.
    max_decompressed_bytes: int
    # One event's compact JSON. Larger events are dropped, not the request: see DecodedBatch.
    max_event_bytes: int

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_event_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be a positive number of bytes, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class DroppedEvent:
    """An event left out of a batch, and why (for posthog-python v1's per-uuid ``results``)."""

    index: int  # position in the request's list of events
    uuid: str | None
    reason: str


@dataclass(slots=True)  # not frozen: a frozen init sets each field the slow way, per request
class DecodedBatch:
    """The events of one capture request, with the request-level fields PostHog defines.

    An event whose compact JSON is over ``Limits.max_event_bytes`` is moved to ``dropped``
    instead of failing the request. PostHog does the same (a ``drop`` result in v1 replies), and
    an error status would cost the SDK the whole batch: both SDKs discard a batch answered with
    413. posthog-python never sends an event over 900 KiB, so with a limit at least that large
    only hand-made requests lose events.
    """

    events: list[dict[str, Any]]
    # The project token: the body's api_key or token, else the one token the events carry,
    # else the bearer token. None means the request named no project (answer 401).
    token: str | None
    # The client's clock when it sent the batch, as it wrote it (ISO 8601): the body's sent_at,
    # v1's created_at, or the ?_= milliseconds of old posthog-js. None if absent.
    sent_at: str | None
    historical_migration: bool
    dropped: list[DroppedEvent] = field(default_factory=list)


def decode_capture(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    query: Mapping[str, str],
    limits: Limits,
    bearer_token: str | None = None,
) -> DecodedBatch:
    """Decode one capture request into its events, project token and batch fields.

    ``query`` is the URL's query parameters; ``bearer_token`` the token of an
    ``Authorization: Bearer`` header (posthog-python v1), used when the body names no project.
    Raises ``DecodeError`` or ``TooLarge``, and nothing else.
    """
    if len(body) > limits.max_body_bytes:
        raise TooLarge(f"The request body is {len(body)} bytes, over the {limits.max_body_bytes}-byte limit.")
    limit = limits.max_decompressed_bytes
    hint = _HINTS.get(query.get("compression", "").strip().lower())

    payload: _Buffer = body
    what = _BODY
    if content_encoding:
        payload, what = _undo_content_encoding(payload, content_encoding, limit)
    if payload.startswith(_GZIP_MAGIC):
        payload = _inflate(payload, 31, limit, what, "gzip")
        what = f"{what} (gunzipped)"
    elif hint == _GZIP and what == _BODY and not (_looks_like_json(payload) or payload.startswith(b"data=")):
        # Without the magic bytes the hint can only be wrong: say so in gzip's words, unless the
        # body is plainly JSON or a form (a stale hint, as after a Content-Encoding).
        payload = _inflate(payload, 31, limit, f"{what} (?compression=gzip)", "gzip")

    if _is_form(content_type, payload):
        data, form_hint = _form_fields(payload)
        payload, what = _unwrap(data, hint or form_hint, limit, "the form field data")
    elif not payload and "data" in query:
        # Old posthog-js could send a GET with the whole payload in ?data=.
        data = query["data"].encode("utf-8", "replace")
        if len(data) > limits.max_body_bytes:
            raise TooLarge(f"The data parameter is {len(data)} bytes, over the {limits.max_body_bytes}-byte limit.")
        payload, what = _unwrap(data, hint, limit, "the query parameter data")
    elif hint in (_BASE64, _LZ64):
        payload, what = _unwrap(payload, hint, limit, what)
    if len(payload) > limit:
        # Inflating stops at the limit by itself; this catches plain bodies under a limit that
        # is set lower than max_body_bytes.
        raise TooLarge(f"{_capitalised(what)} is {len(payload)} bytes, over the {limit}-byte limit.")

    return _batch(_parse_json(payload, what), len(payload), query, limits.max_event_bytes, bearer_token)


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo a request's ``Content-Encoding`` (bounded by ``limit``); the body as is without one.

    Raises ``DecodeError`` or ``TooLarge``, and nothing else.
    """
    if not content_encoding:
        return body
    payload, _ = _undo_content_encoding(body, content_encoding, limit)
    return bytes(payload)


# --- layers -----------------------------------------------------------------------------------


def _undo_content_encoding(payload: _Buffer, header: str, limit: int) -> tuple[_Buffer, str]:
    codings = [
        coding for coding in (part.strip().lower() for part in header.split(",")) if coding not in ("", "identity")
    ]
    if not codings:
        return payload, _BODY
    if len(codings) > _MAX_CODINGS:
        raise DecodeError(
            f"Content-Encoding {_clip(header)} stacks {len(codings)} encodings; at most {_MAX_CODINGS} are undone."
        )
    # Codings are listed in the order they were applied, so they are undone last first.
    for coding in reversed(codings):
        what = f"the request body (Content-Encoding: {coding})"
        if coding in ("gzip", "x-gzip"):
            payload = _inflate(payload, 31, limit, what, "gzip")
        elif coding == "deflate":
            payload = _inflate_deflate(payload, limit, what)
        elif coding == "zstd":
            payload = _unzstd(payload, limit, what)
        elif coding == "br":
            payload = _unbrotli(payload, limit, what)
        else:
            raise DecodeError(
                f"Content-Encoding {_clip(coding)} is not supported; send gzip, deflate, zstd, br or none."
            )
    return payload, "the decompressed request body"


def _inflate_deflate(payload: _Buffer, limit: int, what: str) -> _Buffer:
    # HTTP's "deflate" means zlib-wrapped (RFC 9110), but some clients send a raw deflate
    # stream; a zlib header is recognisable (method 8 in the low nibble, header checksum).
    if len(payload) >= 2 and payload[0] & 0x0F == 8 and (payload[0] << 8 | payload[1]) % 31 == 0:
        return _inflate(payload, 15, limit, what, "deflate (zlib)")
    if payload.startswith(_GZIP_MAGIC):
        return _inflate(payload, 31, limit, what, "gzip")
    return _inflate(payload, -15, limit, what, "raw deflate")


def _inflate(data: _Buffer, wbits: int, limit: int, what: str, fmt: str) -> _Buffer:
    """Undo gzip (wbits 31, several members allowed), zlib (15) or raw deflate (-15), to at most ``limit`` bytes."""
    if not data:
        raise DecodeError(f"{_capitalised(what)} is empty, so it is not valid {fmt}.")
    source = memoryview(data)
    inflater = zlib.decompressobj(wbits)
    members = 1
    fed = 0  # bytes of `source` handed to the inflater so far
    pending: bytes | memoryview = b""
    out: _Buffer = b""
    try:
        while True:
            if not pending and fed < len(source):
                # Input goes in slices: zlib copies whatever it leaves unconsumed on every call,
                # which on the whole body would make large bodies cost quadratic time.
                pending = source[fed : fed + _INPUT_SLICE]
                fed += len(pending)
            # One byte more than allowed, so that going over the limit is seen.
            want = min(_OUTPUT_CHUNK, limit - len(out) + 1)
            chunk = inflater.decompress(pending, want)
            if len(out) + len(chunk) > limit:
                raise TooLarge(f"{_capitalised(what)} decompresses to more than the {limit}-byte limit.")
            if not out:
                out = chunk  # the usual case ends here: one call, no copy
            else:
                if isinstance(out, bytes):
                    out = bytearray(out)
                out += chunk
            if inflater.eof:
                end = fed - len(inflater.unused_data)  # where this stream (or gzip member) ends
                if wbits == 31 and data.startswith(_GZIP_MAGIC, end):
                    members += 1
                    if members > _MAX_GZIP_MEMBERS:
                        raise DecodeError(f"{_capitalised(what)} has more than {_MAX_GZIP_MEMBERS} gzip members.")
                    inflater = zlib.decompressobj(wbits)
                    fed, pending = end, b""
                    continue
                if data.count(b"\0", end) != len(data) - end:  # gzip(1) tolerates zero padding, so do we
                    raise DecodeError(
                        f"{_capitalised(what)} has {len(source) - end} bytes of unexpected data "
                        f"after the end of the {fmt} stream."
                    )
                return out
            pending = inflater.unconsumed_tail
            # A short chunk with all input consumed: inflate waits for bytes that never come.
            if not pending and fed >= len(source) and len(chunk) < want:
                raise DecodeError(f"{_capitalised(what)} is not valid {fmt}: the stream is truncated.")
    except zlib.error as exc:
        raise DecodeError(f"{_capitalised(what)} is not valid {fmt}: {exc}.") from None


def _unzstd(data: _Buffer, limit: int, what: str) -> _Buffer:
    try:
        # Optional: posthog-python only sends zstd when configured to.
        zstandard = importlib.import_module("zstandard")
    except ImportError:
        raise DecodeError(
            "Content-Encoding zstd is not supported by this server (the Python package zstandard is not installed); "
            "send gzip or deflate."
        ) from None
    out = bytearray()
    try:
        decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
        with decompressor.stream_reader(data, read_across_frames=True) as reader:
            while chunk := reader.read(min(_OUTPUT_CHUNK, limit - len(out) + 1)):
                out += chunk
                if len(out) > limit:
                    raise TooLarge(f"{_capitalised(what)} decompresses to more than the {limit}-byte limit.")
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{_capitalised(what)} is not valid zstd: {exc}.") from None
    if not out:
        # The reader stops quietly at the end of the input, even inside a frame: a frame cut in
        # its first block yields nothing, a later cut yields JSON that fails to parse.
        raise DecodeError(f"{_capitalised(what)} is not valid zstd: the stream is truncated or empty.")
    return out


def _unbrotli(data: _Buffer, limit: int, what: str) -> _Buffer:
    if not data:
        raise DecodeError(f"{_capitalised(what)} is empty, so it is not valid brotli.")
    decompressor = brotli.Decompressor()
    out = bytearray()
    pending: bytes | bytearray = data
    try:
        while True:
            # Bounded output per call: a bomb is caught within one chunk of the limit.
            chunk = decompressor.process(pending, output_buffer_limit=_OUTPUT_CHUNK)
            out += chunk
            fed, pending = bool(pending), b""
            if len(out) > limit:
                raise TooLarge(f"{_capitalised(what)} decompresses to more than the {limit}-byte limit.")
            if decompressor.is_finished():
                return out
            if decompressor.can_accept_more_data() or (not chunk and not fed):
                # All input consumed and more wanted: the stream stops short.
                raise DecodeError(f"{_capitalised(what)} is not valid brotli: the stream is truncated.")
    except brotli.error as exc:
        raise DecodeError(f"{_capitalised(what)} is not valid brotli: {exc}.") from None


def _is_form(content_type: str | None, payload: _Buffer) -> bool:
    if payload.startswith(b"data="):
        return True
    if content_type is None or content_type.partition(";")[0].strip().lower() != _FORM_TYPE:
        return False
    # A JSON body sent under the form content type is still JSON.
    return not _looks_like_json(payload)


def _form_fields(payload: _Buffer) -> tuple[bytes, str | None]:
    """The ``data`` and ``compression`` fields of an urlencoded form body."""
    data: bytes | None = None
    hint: str | None = None
    for pair in bytes(payload).split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"data" and data is None:
            data = _unquote_plus(value)
        elif name == b"compression" and hint is None:
            hint = _HINTS.get(_unquote_plus(value).decode("latin-1").strip().lower())
    if data is None:
        raise DecodeError("The form body has no data field; send data=<base64 of the JSON payload>.")
    return data, hint


def _unquote_plus(value: bytes) -> bytes:
    # Bytes in, bytes out: the payload need not be valid UTF-8 to get as far as its own check.
    return unquote_to_bytes(value.replace(b"+", b" "))


def _unwrap(data: _Buffer, hint: str | None, limit: int, what: str) -> tuple[_Buffer, str]:
    """Undo base64 or lz-string on a ``data`` value (or a hinted body); JSON passes through."""
    if _looks_like_json(data) or not data.strip():
        return data, what  # neither base64 nor lz-string output can start with { or [
    if hint == _LZ64:
        return _lz64(data, limit, what), f"{what} (lz64-decompressed)"
    decoded = _b64decode(data, what)
    what = f"{what} (base64-decoded)"
    if decoded.startswith(_GZIP_MAGIC):
        return _inflate(decoded, 31, limit, what, "gzip"), f"{what} (gunzipped)"
    return decoded, what


def _b64decode(data: _Buffer, what: str) -> bytes:
    # Lenient like PostHog: a '+' that was not percent-encoded arrives as a space, the URL-safe
    # alphabet is accepted and missing padding is restored. Each repair is skipped when not
    # needed: this is posthog-js's sendBeacon path, taken on every page unload.
    cleaned = bytes(data).strip(b"\r\n\t")
    if b" " in cleaned:
        cleaned = cleaned.replace(b" ", b"+")
    if b"-" in cleaned or b"_" in cleaned:
        cleaned = cleaned.translate(_URLSAFE_TO_STANDARD)
    if len(cleaned) % 4:
        cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned, strict_mode=True)
    except binascii.Error as exc:
        raise DecodeError(f"{_capitalised(what)} is neither JSON nor valid base64: {exc}.") from None


def _lz64(data: _Buffer, limit: int, what: str) -> bytes:
    try:
        # The limit counts UTF-16 code units, each at least one byte of UTF-8: nothing that fits
        # in `limit` bytes is refused here, and the byte count is checked again below.
        text = decompress_from_base64(bytes(data).strip().replace(b" ", b"+"), max_length=limit)
    except LZStringTooLarge:
        raise TooLarge(f"{_capitalised(what)} decompresses (lz64) to more than the {limit}-byte limit.") from None
    except LZStringError as exc:
        raise DecodeError(f"{_capitalised(what)} is not valid lz64 (lz-string base64): {exc}.") from None
    decoded = text.encode("utf-8")
    if len(decoded) > limit:
        raise TooLarge(f"{_capitalised(what)} decompresses (lz64) to more than the {limit}-byte limit.")
    return decoded


def _looks_like_json(data: _Buffer) -> bool:
    match = _LEADING_WHITESPACE.match(data)
    start = match.end() if match else 0
    return data[start : start + 1] in (b"{", b"[")


# --- JSON -------------------------------------------------------------------------------------


def _parse_json(payload: _Buffer, what: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        error = exc
    # Only bodies that failed to parse get here; the usual path pays nothing for these repairs.
    if not payload.strip():
        raise DecodeError(f"{_capitalised(what)} is empty; send a JSON event or batch.")
    text = bytes(payload)
    if text.startswith(_BOM):  # a byte order mark some HTTP libraries prepend; orjson refuses it
        text = text[len(_BOM) :]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            error = exc
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"{_capitalised(what)} is not valid UTF-8 (byte {exc.start} is {text[exc.start]:#04x})."
        ) from None
    if b"\\u" in text:
        # JavaScript strings may hold a lone surrogate (a string cut in the middle of an emoji),
        # which JSON.stringify writes as an escape that orjson refuses. PostHog keeps such events
        # with U+FFFD in place of the surrogate; so do we.
        try:
            return orjson.loads(_SURROGATE_ESCAPE.sub(_replace_lone_surrogate, text))
        except orjson.JSONDecodeError:
            pass
    raise DecodeError(f"{_capitalised(what)} is not valid JSON: {error}.")


def _replace_lone_surrogate(match: re.Match[bytes]) -> bytes:
    escape = match.group()
    return b"\\ufffd" if len(escape) == 6 else escape


def _batch(
    document: Any, size: int, query: Mapping[str, str], max_event_bytes: int, bearer_token: str | None
) -> DecodedBatch:
    body_token: str | None = None
    sent_at: str | None = None
    historical_migration = False
    if type(document) is dict:
        if "batch" in document:
            events = document["batch"]
            if type(events) is not list:
                raise DecodeError(f"batch must be an array of events, not {_json_type(events)}.")
            _check_objects(events, "batch")
            body_token = _first_string(document, ("api_key", "token"))
            sent_at = _first_string(document, ("sent_at", "created_at"))  # created_at: posthog-python v1
            historical_migration = document.get("historical_migration") is True
        else:
            events = [document]
    elif type(document) is list:
        _check_objects(document, "body")
        events = document
    else:
        raise DecodeError(
            f"The request body must be a JSON object (an event or a batch) or an array of events, "
            f"not {_json_type(document)}."
        )
    token = body_token or _events_token(events) or bearer_token or None
    if sent_at is None:
        sent_at = _query_sent_at(query)
    dropped: list[DroppedEvent] = []
    if size * _MAX_REENCODING_GROWTH > max_event_bytes:
        events, dropped = _drop_oversized(events, max_event_bytes)
    return DecodedBatch(
        events=events, token=token, sent_at=sent_at, historical_migration=historical_migration, dropped=dropped
    )


def _check_objects(events: list[Any], name: str) -> None:
    for index, event in enumerate(events):
        if type(event) is not dict:
            raise DecodeError(
                f"{name}[{index}] is not an object (it is {_json_type(event)}); each event is a JSON object."
            )


def _events_token(events: list[dict[str, Any]]) -> str | None:
    """The project token the events carry (posthog-js puts it in every event's properties)."""
    found: str | None = None
    found_at = 0
    for index, event in enumerate(events):
        token = _first_string(event, ("api_key", "token", "$token"))
        if token is None:
            properties = event.get("properties")
            if type(properties) is dict:
                token = _first_string(properties, ("token", "$token"))
        if token is None:
            continue
        if found is None:
            found, found_at = token, index
        elif token != found:
            # As PostHog: one request, one project. Guessing which token wins would file some
            # events under the wrong project.
            raise DecodeError(
                f"Events {found_at} and {index} carry different project tokens; send each project's events "
                "in its own request, or put api_key on the batch."
            )
    return found


def _first_string(mapping: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if type(value) is str and value:
            return value
    return None


def _query_sent_at(query: Mapping[str, str]) -> str | None:
    # Old posthog-js appended _=<Date.now()>, which PostHog reads as sent_at.
    raw = query.get("_") or query.get("sent_at") or ""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 15):
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return None


def _drop_oversized(events: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], list[DroppedEvent]]:
    kept: list[dict[str, Any]] = []
    dropped: list[DroppedEvent] = []
    for index, event in enumerate(events):
        try:
            size = len(orjson.dumps(event))
        except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes (254 levels)
            reason = f"The event cannot be stored as JSON: {exc}."
        else:
            if size <= limit:
                kept.append(event)
                continue
            reason = f"The event is {size} bytes of JSON, over the {limit}-byte limit."
        uuid = event.get("uuid")
        dropped.append(DroppedEvent(index=index, uuid=uuid if type(uuid) is str else None, reason=reason))
    return kept, dropped


# --- messages ---------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
