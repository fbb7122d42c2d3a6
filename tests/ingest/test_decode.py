"""decode_capture: real SDK payloads, every encoding path, every error, the limits, and fuzzing."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trapline.ingest.decode import DecodedBatch, DecodeError, DroppedEvent, Limits, TooLarge, decode_capture
from trapline.ingest.lzstring import LZStringError, LZStringTooLarge, decompress_from_base64

PAYLOADS = sorted((Path(__file__).parent / "payloads").glob("posthog-*.json"))
TOKEN = "phc_testtoken123"
FORM = "application/x-www-form-urlencoded"
LIMITS = Limits(max_body_bytes=1 << 20, max_decompressed_bytes=4 << 20, max_event_bytes=1 << 20)
EVENT = {"event": "$exception", "uuid": "0190f3b2-0000-7000-8000-000000000001", "properties": {"$lib": "web"}}
SENT_AT = "2026-11-23T18:44:04.272Z"
BATCH = {"api_key": TOKEN, "batch": [EVENT], "sent_at": SENT_AT}
BATCH_JSON = orjson.dumps(BATCH)


def decode(
    body: bytes,
    *,
    content_type: str | None = "application/json",
    content_encoding: str | None = None,
    query: dict[str, str] | None = None,
    limits: Limits = LIMITS,
    bearer_token: str | None = None,
) -> DecodedBatch:
    return decode_capture(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        query=query or {},
        limits=limits,
        bearer_token=bearer_token,
    )


def form(data: bytes | str) -> bytes:
    text = data.decode() if isinstance(data, bytes) else data
    return b"data=" + quote(text, safe="").encode() + b"&ver=1.449.2"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


# --- the SDKs' own requests -------------------------------------------------------------------


def reconstruct(recording: dict[str, Any]) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """The recorded request's body (re-encoded as its SDK encodes it), headers and query."""
    body = recording["body_decoded"]
    headers = {name.lower(): value for name, value in recording["headers"].items()}
    if headers.get("user-agent", "").startswith("posthog-python"):
        text = json.dumps(body).encode()  # the Python SDK: json.dumps with default separators
    else:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()  # JSON.stringify
    gzipped = recording["raw_body_first_bytes_hex"].startswith("1f8b")
    raw = gzip.compress(text) if gzipped else text
    if not gzipped:
        assert raw[:16].hex() == recording["raw_body_first_bytes_hex"]
    return raw, headers, dict(parse_qsl(urlsplit(recording["path"]).query))


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda path: path.stem)
def test_real_sdk_request_decodes_to_its_events_and_token(path: Path) -> None:
    recording = json.loads(path.read_text())
    raw, headers, query = reconstruct(recording)
    scheme, _, credentials = headers.get("authorization", "").partition(" ")

    batch = decode(
        raw,
        content_type=headers.get("content-type"),
        content_encoding=headers.get("content-encoding"),
        query=query,
        bearer_token=credentials if scheme == "Bearer" else None,
    )

    body = recording["body_decoded"]
    assert batch.events == body.get("batch", [body])
    assert batch.token == TOKEN
    # A lone object is one event (the flags requests decode so too), and only a batch has sent_at.
    assert batch.sent_at == (body.get("sent_at", body.get("created_at")) if "batch" in body else None)
    assert batch.historical_migration is False
    assert batch.dropped == []


def test_the_payload_files_cover_every_sdk_upload_shape() -> None:
    paths = {json.loads(path.read_text())["path"] for path in PAYLOADS}
    assert {"/batch/", "/e/", "/i/v0/e/", "/i/v1/analytics/events"} <= paths


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "content_encoding", "query"),
    [
        pytest.param(BATCH_JSON, "application/json", None, {}, id="plain-json"),
        pytest.param(BATCH_JSON, None, None, {}, id="plain-no-content-type"),
        pytest.param(b" \r\n" + BATCH_JSON + b"\n", "text/plain", None, {}, id="plain-whitespace"),
        pytest.param(gzip.compress(BATCH_JSON), "text/plain", None, {}, id="gzip-magic-text-plain"),
        pytest.param(gzip.compress(BATCH_JSON), "application/json", "gzip", {}, id="content-encoding-gzip"),
        pytest.param(gzip.compress(BATCH_JSON), "application/json", "X-Gzip", {}, id="content-encoding-x-gzip"),
        pytest.param(gzip.compress(BATCH_JSON), None, "identity, gzip", {}, id="content-encoding-identity-gzip"),
        pytest.param(
            gzip.compress(gzip.compress(BATCH_JSON)), None, "gzip, gzip", {}, id="content-encoding-gzip-twice"
        ),
        pytest.param(zlib.compress(BATCH_JSON), "application/json", "deflate", {}, id="deflate-zlib"),
        pytest.param(raw_deflate(BATCH_JSON), "application/json", "deflate", {}, id="deflate-raw"),
        pytest.param(gzip.compress(BATCH_JSON), "application/json", "deflate", {}, id="deflate-that-is-gzip"),
        pytest.param(BATCH_JSON, "application/json", "identity", {}, id="identity"),
        pytest.param(BATCH_JSON, "application/json", "", {}, id="empty-content-encoding"),
        pytest.param(gzip.compress(BATCH_JSON), "text/plain", None, {"compression": "gzip-js"}, id="query-gzip-js"),
        pytest.param(gzip.compress(BATCH_JSON), "text/plain", None, {"compression": "gzip"}, id="query-gzip"),
        pytest.param(
            gzip.compress(BATCH_JSON), None, "gzip", {"compression": "gzip-js"}, id="query-gzip-stale-after-header"
        ),
        pytest.param(BATCH_JSON, "text/plain", None, {"compression": "gzip-js"}, id="query-gzip-stale-on-json"),
        pytest.param(
            form(base64.b64encode(BATCH_JSON)), FORM, None, {"compression": "gzip-js"}, id="query-gzip-stale-on-form"
        ),
        pytest.param(gzip.compress(BATCH_JSON) + b"\0\0\0", None, None, {}, id="gzip-zero-padding"),
        pytest.param(
            gzip.compress(BATCH_JSON[:20]) + gzip.compress(BATCH_JSON[20:]), None, None, {}, id="gzip-two-members"
        ),
        pytest.param(gzip.compress(b"") + gzip.compress(BATCH_JSON), None, None, {}, id="gzip-empty-member-first"),
        pytest.param(
            form(base64.b64encode(BATCH_JSON)), FORM, None, {"compression": "base64"}, id="form-base64-with-param"
        ),
        pytest.param(form(base64.b64encode(BATCH_JSON)), FORM, None, {}, id="form-base64-without-param"),
        pytest.param(
            form(base64.b64encode(BATCH_JSON)), FORM + "; charset=UTF-8", None, {}, id="form-content-type-params"
        ),
        pytest.param(form(base64.b64encode(BATCH_JSON)), None, None, {}, id="form-without-content-type"),
        pytest.param(
            b"ver=1&compression=base64&data=" + quote(base64.b64encode(BATCH_JSON)).encode(),
            FORM,
            None,
            {},
            id="form-compression-field",
        ),
        pytest.param(
            b"data=" + base64.b64encode(BATCH_JSON).replace(b"+", b" "), FORM, None, {}, id="form-unescaped-plus"
        ),
        pytest.param(
            form(base64.urlsafe_b64encode(BATCH_JSON).rstrip(b"=")), FORM, None, {}, id="form-urlsafe-unpadded"
        ),
        pytest.param(form(BATCH_JSON), FORM, None, {}, id="form-urlencoded-json"),
        pytest.param(form(base64.b64encode(gzip.compress(BATCH_JSON))), FORM, None, {}, id="form-base64-gzip"),
        pytest.param(BATCH_JSON, FORM, None, {}, id="json-under-form-content-type"),
        pytest.param(
            gzip.compress(form(base64.b64encode(BATCH_JSON))), FORM, "gzip", {}, id="form-under-content-encoding"
        ),
        pytest.param(base64.b64encode(BATCH_JSON), "text/plain", None, {"compression": "base64"}, id="raw-base64"),
        pytest.param(BATCH_JSON, "text/plain", None, {"compression": "base64"}, id="base64-param-on-json"),
        pytest.param(BATCH_JSON, "text/plain", None, {"compression": "something-new"}, id="unknown-param"),
    ],
)
def test_encoding(body: bytes, content_type: str | None, content_encoding: str | None, query: dict[str, str]) -> None:
    batch = decode(body, content_type=content_type, content_encoding=content_encoding, query=query)
    assert batch == DecodedBatch(events=[EVENT], token=TOKEN, sent_at=SENT_AT, historical_migration=False)


def test_get_request_with_the_payload_in_the_query() -> None:
    batch = decode(b"", content_type=None, query={"data": base64.b64encode(BATCH_JSON).decode(), "ver": "1.2"})
    assert batch.events == [EVENT]
    assert batch.token == TOKEN


def test_zstd() -> None:
    zstandard = pytest.importorskip("zstandard")
    body = zstandard.ZstdCompressor().compress(BATCH_JSON)
    assert decode(body, content_encoding="zstd").events == [EVENT]
    # posthog-python streams into several frames when a batch is large; frames concatenate.
    half = len(BATCH_JSON) // 2
    frames = zstandard.ZstdCompressor().compress(BATCH_JSON[:half]) + zstandard.ZstdCompressor().compress(
        BATCH_JSON[half:]
    )
    assert decode(frames, content_encoding="zstd").events == [EVENT]


def test_brotli() -> None:
    import brotli

    assert decode(brotli.compress(BATCH_JSON), content_encoding="br").events == [EVENT]
    with pytest.raises(DecodeError, match=r"\(Content-Encoding: br\) is not valid brotli: the stream is truncated"):
        decode(brotli.compress(BATCH_JSON)[:-3], content_encoding="br")
    with pytest.raises(DecodeError, match=r"is not valid brotli"):
        decode(b"not brotli at all", content_encoding="br")
    with pytest.raises(DecodeError, match=r"is empty, so it is not valid brotli"):
        decode(b"", content_encoding="br")


def test_brotli_bomb_is_refused_in_bounded_memory() -> None:
    import brotli

    bomb = brotli.compress(bytes(256 << 20), quality=5)  # 256 MiB of zeros in a few KB
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=r"\(Content-Encoding: br\) decompresses to more than the 1048576-byte"):
            decode(bomb, content_encoding="br", limits=limits(decompressed=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_zstd_without_the_zstandard_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` fail
    with pytest.raises(DecodeError, match=r"zstd is not supported by this server \(the Python package zstandard"):
        decode(b"\x28\xb5\x2f\xfd\x00", content_encoding="zstd")


# --- LZ-string (legacy lz64) ------------------------------------------------------------------

# Generated with the npm package lz-string 1.5.0: [text, LZString.compressToBase64(text)].
LZ_VECTORS = [
    ("", "Q==="),
    ("a", "IZA="),
    ("hello", "BYUwNmD2Q==="),
    ("hello hello hello hello", "BYUwNmD2AEoTcq3FIA=="),
    ("a" * 84, "IY18ZXTtxQ=="),
    ("héllo wörld ✓ — Ünïcödé ½ €", "BYS4NmD2AEDuBvAnMATahkcmoFAJoB2B2A9wMbwojQC90gNQRA=="),
    ("emoji 😀🎉 and CJK 漢字", "KYWw9gVglgBIvBuAA9wPBuEj9mBDAdgExgYQCkBpGQIntB1bSA=="),
    (
        "TOBEORNOTTOBEORTOBEORNOT#" * 20,
        "CoeQQgoiBKByLFJGSpwQYlTejxu3WC3xwUMNxOSItKOrVzpqsvPveK5acx8702QjjS6MyeMSO4zekibUGt+c5X1kqpBGYubqFA6Vr2id"
        "Jo+Y2ntKXZbsmgA=",
    ),
    ("\x00\x01\xff\u0100\uffff", "AAQA/4AICP//Q==="),
    ("x\ufffdy", "B6AA2J5A"),  # "x\ud800y": a lone surrogate comes back as U+FFFD
]
LZ_BATCH = (
    '{"api_key":"phc_testtoken123","batch":[{"event":"$exception","properties":{"token":"phc_testtoken123",'
    '"distinct_id":"u1","$exception_list":[{"type":"Error","value":"order failed"}]}}]}'
)
LZ_BATCH_COMPRESSED = (
    "N4IghgDglg+g1gUwJ4gFwggCwMYwC4IDOeeA9ogHYCMATAMwgA0IARmHtpmgNqgIBuCCnjQgAJAgAe2BBDxRSFJhgBOpCAhXyiaUGUqisuAsX1D"
    "aDZgBMoxKBWx4YUK6ICuVZROmz5imAA2tiKovCB4SBqiAKIqairK/GABbgiipCpWmgAEAGZgUAEIrgC+ALol5SVAA"
)
# LZString.compressToBase64("A".repeat(100000)): 596 characters that expand 168 times.
LZ_BOMB = (
    "II18ZXTt/DFOS1b0c17Pd/wYUcSaWeRZVdTbXfQ408y62+x519z73/wMFDhI0WPETJU6TNlz5CxUuUrVa9Rs1btO3Xv0HDR4ydNnzFy1es3bd+w8"
    "dPnL12/cfPX7z99//AYFBwSGhYeERkVHRMbFx8QmJSckpqWnpGZlZ2Tm5efkFhUXFJaVl5RWVVdU1tXX1DY1NzS2tbe0dnV3dPb19/QODQ8Mjo2P"
    "jE5NT0zOzc/MLi0vLK6tr6xubW9s7u3v7B4dHxyenZ+cXl1fXN7d39w+PT88vr2/vH59f3z+/f/8AwFA4Eg0Fg8EQyFQ6Ew2Fw+EIxFI5Eo1Fo"
    "9EYzFY7E43F4/EEwlE4kk0lk8kUylU6k02l0+kMxlM5ks1ls9kczlc7k83l8/kCwVC4Ui0Vi8USyVS6Uy2Vy+UKxVK5Uq1Vq9UazVa7U63V6/U"
    "Gw1G40m01m80Wy1W602212+0Ox1O50u11u90ez1e70+31+/0BwNB4Mh0Nh8MRyNR6Mx2Nx+MJxNJ5Mp1Np9MZzNZ7M53N5/MFwtF4sl0tl8sVy"
    "tV6s12t1+sNxtN5st1tt9sdztd7s93t9/sDwVAA==="
)


@pytest.mark.parametrize(("text", "compressed"), LZ_VECTORS)
def test_lzstring_matches_the_npm_package(text: str, compressed: str) -> None:
    assert decompress_from_base64(compressed, max_length=1000) == text
    assert decompress_from_base64(compressed.encode(), max_length=1000) == text


def test_lzstring_output_is_bounded() -> None:
    assert decompress_from_base64(LZ_BOMB, max_length=100_000) == "A" * 100_000
    with pytest.raises(LZStringTooLarge, match="longer than 99999 characters"):
        decompress_from_base64(LZ_BOMB, max_length=99_999)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "the input is empty"),
        ("IZA*", r"character b'\*' at offset 3 is not base64"),
        ("héllo", r"character b'\?' at offset 1 is not base64"),
        ("BYUwNmD2", "the input ends before the end-of-stream code"),
        ("w===", "the stream does not start with a character code"),
        ("AAs", r"code 6 refers past the end of the dictionary \(5 entries\)"),
    ],
)
def test_lzstring_rejects_malformed_input(data: str, message: str) -> None:
    with pytest.raises(LZStringError, match=message):
        decompress_from_base64(data, max_length=1000)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(form(LZ_BATCH_COMPRESSED), FORM, id="form"),
        pytest.param(LZ_BATCH_COMPRESSED.encode(), "text/plain", id="raw"),
        pytest.param(b"data=" + LZ_BATCH_COMPRESSED.replace("+", " ").encode(), FORM, id="form-unescaped-plus"),
    ],
)
def test_lz64_bodies(body: bytes, content_type: str) -> None:
    batch = decode(body, content_type=content_type, query={"compression": "lz64"})
    assert batch.events == json.loads(LZ_BATCH)["batch"]
    assert batch.token == TOKEN


# --- body shapes, token, batch fields ---------------------------------------------------------


def test_single_event_object() -> None:
    event = {"event": "$exception", "properties": {"token": TOKEN, "distinct_id": "u1"}}
    batch = decode(orjson.dumps(event))
    assert batch == DecodedBatch(events=[event], token=TOKEN, sent_at=None, historical_migration=False)


def test_bare_array_of_events() -> None:
    events = [{"event": "a", "properties": {"token": TOKEN}}, {"event": "b", "properties": {"token": TOKEN}}]
    assert decode(orjson.dumps(events)) == DecodedBatch(
        events=events, token=TOKEN, sent_at=None, historical_migration=False
    )


def test_v1_body_takes_the_bearer_token_and_created_at() -> None:
    body = {"created_at": "2026-11-23T18:41:49.018828+00:00", "batch": [EVENT], "historical_migration": True}
    batch = decode(gzip.compress(orjson.dumps(body)), content_encoding="gzip", bearer_token=TOKEN)
    assert batch == DecodedBatch(
        events=[EVENT], token=TOKEN, sent_at="2026-11-23T18:41:49.018828+00:00", historical_migration=True
    )


def test_empty_batch_is_not_an_error() -> None:
    assert decode(b'{"api_key": "t", "batch": []}') == DecodedBatch(
        events=[], token="t", sent_at=None, historical_migration=False
    )


@pytest.mark.parametrize(
    ("body", "bearer", "token"),
    [
        ({"api_key": "a", "token": "b", "batch": [{"properties": {"token": "c"}}]}, "d", "a"),
        ({"token": "b", "batch": [{"properties": {"token": "c"}}]}, "d", "b"),
        ({"api_key": "", "token": 7, "batch": [{"properties": {"token": "c"}}]}, "d", "c"),
        ({"batch": [{"properties": {"$token": "c"}}]}, None, "c"),
        ({"batch": [{"api_key": "c"}, {"token": "c"}, {"$token": "c"}, {"properties": {}}]}, None, "c"),
        ({"batch": [{"event": "no token"}, {"properties": {"token": "c"}}]}, None, "c"),
        ({"batch": [{"properties": "not an object"}]}, "d", "d"),
        ({"batch": [{"event": "x"}]}, None, None),
        ({"batch": [{"event": "x"}]}, "", None),
        ({"event": "x", "api_key": "c"}, None, "c"),
        ([{"event": "x", "properties": {"token": "c"}}], "d", "c"),
    ],
)
def test_token_precedence(body: Any, bearer: str | None, token: str | None) -> None:
    assert decode(orjson.dumps(body), bearer_token=bearer).token == token


def test_events_with_different_tokens_are_refused() -> None:
    body = {"batch": [{"properties": {"token": "a"}}, {"event": "x"}, {"properties": {"token": "b"}}]}
    with pytest.raises(DecodeError, match="Events 0 and 2 carry different project tokens"):
        decode(orjson.dumps(body))
    # A batch-level api_key settles it, as in PostHog.
    assert decode(orjson.dumps({"api_key": "a", **body})).token == "a"


@pytest.mark.parametrize(
    ("query", "sent_at"),
    [
        ({"_": "1795459444272"}, "2026-11-23T18:44:04.272+00:00"),
        ({"sent_at": "1795459444272"}, "2026-11-23T18:44:04.272+00:00"),
        ({"_": "soon"}, None),
        ({"_": "²"}, None),
        ({"_": "999999999999999"}, None),
        ({"_": "9" * 5000}, None),
    ],
)
def test_sent_at_from_the_query_of_old_posthog_js(query: dict[str, str], sent_at: str | None) -> None:
    assert decode(b'{"batch": []}', query=query).sent_at == sent_at
    # The body's own sent_at wins.
    assert decode(b'{"batch": [], "sent_at": "body"}', query=query).sent_at == "body"


def test_historical_migration_must_be_true_exactly() -> None:
    assert decode(b'{"batch": [], "historical_migration": true}').historical_migration is True
    assert decode(b'{"batch": [], "historical_migration": "true"}').historical_migration is False


def test_events_are_not_validated_beyond_being_objects() -> None:
    events = [{}, {"event": 5, "properties": []}, {"uuid": None, "timestamp": {"not": "a time"}}]
    assert decode(orjson.dumps(events)).events == events


def test_byte_order_mark_is_ignored() -> None:
    assert decode(b"\xef\xbb\xbf" + BATCH_JSON).events == [EVENT]


def test_lone_surrogate_escapes_become_replacement_characters() -> None:
    # JSON.stringify("boom \ud83d") from a message cut in the middle of an emoji.
    body = b'{"batch": [{"event": "$exception", "properties": {"m": "boom \\ud83d", "ok": "\\ud83d\\ude00"}}]}'
    properties = decode(body).events[0]["properties"]
    assert properties == {"m": "boom \ufffd", "ok": "😀"}


def test_escaped_backslash_before_u_is_left_alone() -> None:
    body = b'{"batch": [{"a": "C:\\\\ud800", "b": "\\udc00"}]}'
    assert decode(body).events == [{"a": "C:\\ud800", "b": "\ufffd"}]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        (b"", {}, "The request body is empty; send a JSON event or batch."),
        (b" \n", {}, "The request body is empty; send a JSON event or batch."),
        (b'{"batch": [', {}, "The request body is not valid JSON: unexpected end of data"),
        (b"{'batch': []}", {}, "The request body is not valid JSON: "),
        (b'{"batch": [NaN]}', {}, "The request body is not valid JSON: "),
        (b'{"a": "\xff"}', {}, r"The request body is not valid UTF-8 \(byte 7 is 0xff\)."),
        (b'{"a": "\xed\xa0\x80"}', {}, r"The request body is not valid UTF-8 \(byte 7 is 0xed\)."),
        (b'"phc_x"', {}, "must be a JSON object .* or an array of events, not a string."),
        (b"42", {}, "not a number."),
        (b"null", {}, "not null."),
        (b"true", {}, "not a boolean."),
        (b'{"batch": {"event": "x"}}', {}, "batch must be an array of events, not an object."),
        (b'{"batch": "[]"}', {}, "batch must be an array of events, not a string."),
        (b'{"batch": [{}, {}, {}, "x"]}', {}, r"batch\[3\] is not an object \(it is a string\)"),
        (b"[{}, null]", {}, r"body\[1\] is not an object \(it is null\)"),
        (b"[[{}]]", {}, r"body\[0\] is not an object \(it is an array\)"),
        (
            b"x",
            {"content_encoding": "compress"},
            "Content-Encoding 'compress' is not supported; send gzip, deflate, zstd, br or none.",
        ),
        (b"x", {"content_encoding": "gzip, gzip, gzip"}, "stacks 3 encodings; at most 2 are undone."),
        (
            b"{}",
            {"content_encoding": "gzip"},
            "The request body \\(Content-Encoding: gzip\\) is not valid gzip: Error -3 .*incorrect header check.",
        ),
        (b"", {"content_encoding": "gzip"}, r"\(Content-Encoding: gzip\) is empty, so it is not valid gzip."),
        (
            gzip.compress(BATCH_JSON)[:-9],
            {},
            "The request body is not valid gzip: the stream is truncated.",
        ),
        (gzip.compress(BATCH_JSON)[:12], {}, "The request body is not valid gzip: the stream is truncated."),
        (b"\x1f\x8bnot gzip", {}, "The request body is not valid gzip: Error -3 .*unknown compression method."),
        (
            gzip.compress(BATCH_JSON) + b"trailing",
            {},
            "The request body has 8 bytes of unexpected data after the end of the gzip stream.",
        ),
        (
            b"not deflate at all",
            {"content_encoding": "deflate"},
            r"\(Content-Encoding: deflate\) is not valid raw deflate: Error -3",
        ),
        (zlib.compress(BATCH_JSON)[:-6], {"content_encoding": "deflate"}, r"not valid deflate \(zlib\): .*truncated"),
        (b"garbage", {"query": {"compression": "gzip-js"}}, r"\(\?compression=gzip\) is not valid gzip: Error -3"),
        (
            b"ver=1&compression=base64",
            {"content_type": FORM},
            "The form body has no data field; send data=<base64 of the JSON payload>.",
        ),
        (b"data=%%%", {"content_type": FORM}, "The form field data is neither JSON nor valid base64: "),
        (
            b"data=" + base64.b64encode(b"not json"),
            {"content_type": FORM},
            r"The form field data \(base64-decoded\) is not valid JSON: ",
        ),
        (
            b"data=" + base64.b64encode(b"\x1f\x8b\x08\x00broken"),
            {"content_type": FORM},
            r"The form field data \(base64-decoded\) is not valid gzip: ",
        ),
        (
            b"data=*not-lz*",
            {"content_type": FORM, "query": {"compression": "lz64"}},
            r"The form field data is not valid lz64 \(lz-string base64\): character b'\*' at offset 0 is not base64.",
        ),
        (
            b"data=BYUwNmD2",
            {"content_type": FORM, "query": {"compression": "lz64"}},
            "is not valid lz64 .*: the input ends before the end-of-stream code.",
        ),
        (
            b"data=" + LZ_VECTORS[2][1].encode(),
            {"content_type": FORM, "query": {"compression": "lz64"}},
            r"The form field data \(lz64-decompressed\) is not valid JSON: ",
        ),
        (b"   ", {"query": {"compression": "base64"}}, "The request body is empty"),
    ],
)
def test_decode_errors(body: bytes, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(body, **kwargs)


def test_zstd_errors() -> None:
    zstandard = pytest.importorskip("zstandard")
    frame = zstandard.ZstdCompressor().compress(BATCH_JSON)
    with pytest.raises(DecodeError, match=r"\(Content-Encoding: zstd\) is not valid zstd: .*Unknown frame descriptor"):
        decode(b"definitely not zstd", content_encoding="zstd")
    with pytest.raises(DecodeError, match=r"is not valid zstd: .*Unknown frame descriptor"):
        decode(frame + b"junk", content_encoding="zstd")
    # zstandard's reader does not report a cut frame: it yields the complete blocks and stops.
    with pytest.raises(DecodeError, match=r"is not valid zstd: the stream is truncated or empty."):
        decode(frame[:-3], content_encoding="zstd")
    long_batch = orjson.dumps({"batch": [{"event": str(i), "uuid": str(i * 7919)} for i in range(20_000)]})
    cut = zstandard.ZstdCompressor().compress(long_batch)[:-100]
    with pytest.raises(DecodeError, match="The decompressed request body is not valid JSON: unexpected end of data"):
        decode(cut, content_encoding="zstd")


def test_zstd_frame_asking_for_a_huge_window_is_refused() -> None:
    zstandard = pytest.importorskip("zstandard")
    params = zstandard.ZstdCompressionParameters(window_log=27)
    # Streamed, so the frame cannot shrink its window to the content size.
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = compressor.compress(BATCH_JSON) + compressor.flush()
    with pytest.raises(DecodeError, match=r"is not valid zstd: .*(memory|window)"):
        decode(body, content_encoding="zstd")


def test_the_error_names_every_layer_it_went_through() -> None:
    body = gzip.compress(form(base64.b64encode(b"{oops")))
    with pytest.raises(DecodeError, match=r"^The form field data \(base64-decoded\) is not valid JSON: "):
        decode(body, content_type=FORM, content_encoding="gzip")
    with pytest.raises(DecodeError, match=r"^The decompressed request body is not valid JSON: "):
        decode(gzip.compress(b"{oops"), content_encoding="gzip")
    with pytest.raises(DecodeError, match=r"^The request body \(gunzipped\) is not valid JSON: "):
        decode(gzip.compress(b"{oops"))


def test_long_content_encoding_is_clipped_in_the_message() -> None:
    with pytest.raises(DecodeError) as raised:
        decode(b"x", content_encoding="x" * 10_000)
    assert len(str(raised.value)) < 120


# --- limits -----------------------------------------------------------------------------------


def limits(body: int = 1 << 20, decompressed: int = 4 << 20, event: int = 1 << 20) -> Limits:
    return Limits(max_body_bytes=body, max_decompressed_bytes=decompressed, max_event_bytes=event)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"Limits.max_event_bytes must be a positive number of bytes, got 0"):
        limits(event=0)


def test_body_over_the_limit() -> None:
    with pytest.raises(TooLarge, match=f"The request body is {len(BATCH_JSON)} bytes, over the 100-byte limit."):
        decode(BATCH_JSON, limits=limits(body=100))
    assert decode(BATCH_JSON, limits=limits(body=len(BATCH_JSON))).events == [EVENT]


def test_plain_body_over_a_lower_decompressed_limit() -> None:
    with pytest.raises(TooLarge, match=r"The request body is .* bytes, over the 100-byte limit."):
        decode(BATCH_JSON, limits=limits(decompressed=100))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "magic"])
def test_decompressed_size_is_exact(encoding: str) -> None:
    compress: Callable[[bytes], bytes] = zlib.compress if encoding == "deflate" else gzip.compress
    header = None if encoding == "magic" else encoding
    size = len(BATCH_JSON)
    assert decode(compress(BATCH_JSON), content_encoding=header, limits=limits(decompressed=size)).events == [EVENT]
    with pytest.raises(TooLarge, match=f"decompresses to more than the {size - 1}-byte limit."):
        decode(compress(BATCH_JSON), content_encoding=header, limits=limits(decompressed=size - 1))


def gzip_of_zeros(mebibytes: int) -> bytes:
    """A valid gzip stream of `mebibytes` MiB of zeros, built without allocating them.

    Each segment is 1 MiB of zeros deflated and ended with a full flush, which resets the
    compressor; so the same bytes, repeated, continue the stream.
    """
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final_empty_block = b"\x03\x00"
    return header + segment * mebibytes + final_empty_block + struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF)


def test_the_bomb_builder_makes_valid_gzip() -> None:
    assert gzip.decompress(gzip_of_zeros(3)) == bytes(3 << 20)


def test_gzip_bomb_is_refused_quickly_in_bounded_memory() -> None:
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 1_100_000
    limit = 8 << 20
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(TooLarge, match=f"^The request body decompresses to more than the {limit}-byte limit.$"):
            decode(bomb, content_type="text/plain", limits=limits(body=2 << 20, decompressed=limit))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < limit + (3 << 20), f"peak {peak / 2**20:.1f} MiB for a {limit / 2**20:.0f} MiB limit"


def test_gzip_bomb_under_content_encoding_and_inside_a_form() -> None:
    bomb = gzip_of_zeros(64)
    with pytest.raises(TooLarge, match=r"\(Content-Encoding: gzip\) decompresses to more than"):
        decode(bomb, content_encoding="gzip", limits=limits(decompressed=1 << 20))
    with pytest.raises(TooLarge, match=r"The form field data \(base64-decoded\) decompresses to more than"):
        decode(form(base64.b64encode(bomb)), content_type=FORM, limits=limits(body=2 << 20, decompressed=1 << 20))


def test_multi_member_gzip_counts_every_member() -> None:
    member = gzip.compress(bytes(600_000))
    with pytest.raises(TooLarge, match=r"decompresses to more than the 1048576-byte limit."):
        decode(member * 2, limits=limits(decompressed=1 << 20))


def test_too_many_gzip_members() -> None:
    body = gzip.compress(b"[") + gzip.compress(b" ") * 63 + gzip.compress(b"]")
    with pytest.raises(DecodeError, match=r"has more than 64 gzip members."):
        decode(body)
    assert decode(gzip.compress(b"[") + gzip.compress(b" ") * 62 + gzip.compress(b"]")).events == []


def test_zstd_bomb() -> None:
    zstandard = pytest.importorskip("zstandard")
    compressor = zstandard.ZstdCompressor().compressobj()
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()
    with pytest.raises(TooLarge, match=r"\(Content-Encoding: zstd\) decompresses to more than the 1048576-byte limit."):
        decode(bomb, content_encoding="zstd", limits=limits(decompressed=1 << 20))


def test_lz64_bomb() -> None:
    with pytest.raises(TooLarge, match=r"The form field data decompresses \(lz64\) to more than the 50000-byte limit."):
        decode(form(LZ_BOMB), content_type=FORM, query={"compression": "lz64"}, limits=limits(decompressed=50_000))


def test_lz64_limit_counts_utf8_bytes() -> None:
    text, compressed = LZ_VECTORS[6]
    assert len(text.encode("utf-16-le")) // 2 == 21
    assert len(text.encode()) == 29
    with pytest.raises(TooLarge, match="to more than the 28-byte limit"):
        decode(form(compressed), content_type=FORM, query={"compression": "lz64"}, limits=limits(decompressed=28))


def test_oversized_events_are_dropped_and_reported() -> None:
    small = {"event": "$exception", "uuid": "u-small", "properties": {}}
    large = {"event": "$exception", "uuid": "u-large", "properties": {"blob": "x" * 2000}}
    anonymous = {"event": "$exception", "properties": {"blob": "y" * 2000}}
    body = orjson.dumps({"api_key": TOKEN, "batch": [small, large, small, anonymous]})

    batch = decode(body, limits=limits(event=1000))

    assert batch.events == [small, small]
    assert batch.token == TOKEN
    size = len(orjson.dumps(large))
    assert batch.dropped == [
        DroppedEvent(index=1, uuid="u-large", reason=f"The event is {size} bytes of JSON, over the 1000-byte limit."),
        DroppedEvent(
            index=3,
            uuid=None,
            reason=f"The event is {len(orjson.dumps(anonymous))} bytes of JSON, over the 1000-byte limit.",
        ),
    ]


def test_event_exactly_at_the_limit_is_kept() -> None:
    event = {"event": "$exception", "properties": {"blob": "x" * 500}}
    size = len(orjson.dumps(event))
    assert decode(orjson.dumps([event]), limits=limits(event=size)).events == [event]
    assert decode(orjson.dumps([event]), limits=limits(event=size - 1)).events == []


def test_event_limit_is_measured_on_the_compact_reencoding() -> None:
    # 1e15 is written back as 1000000000000000.0: the stored event is larger than the wire's.
    body = b'[{"n": [' + b",".join([b"1e15"] * 50) + b"]}]"
    stored = len(orjson.dumps(orjson.loads(body)[0]))
    assert stored > len(body) * 3
    batch = decode(body, limits=limits(event=stored - 1))
    assert batch.events == []
    assert batch.dropped[0].reason == f"The event is {stored} bytes of JSON, over the {stored - 1}-byte limit."


def test_event_too_deep_to_store_is_dropped_when_measured() -> None:
    deep = b"[" * 300 + b'"bottom"' + b"]" * 300  # orjson reads 1024 levels but writes only 254
    body = b'{"batch": [{"event": "deep", "properties": {"v": ' + deep + b'}}, {"event": "ok"}]}'
    batch = decode(body, limits=limits(event=100))
    assert batch.events == [{"event": "ok"}]
    assert batch.dropped[0].index == 0
    assert batch.dropped[0].reason.startswith("The event cannot be stored as JSON: ")


# --- fuzzing ----------------------------------------------------------------------------------

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "text/plain", FORM, FORM + "; charset=utf-8", "multipart/form-data", "", ";"]),
    st.text(max_size=40),
)
CONTENT_ENCODINGS = st.one_of(
    st.none(),
    st.sampled_from(["", "gzip", "x-gzip", "deflate", "zstd", "identity", "br", "gzip, deflate", "GZIP", ",,"]),
    st.text(max_size=40),
)
QUERY_VALUES = st.one_of(
    st.sampled_from(["gzip", "gzip-js", "base64", "b64", "lz64", "lz-string", "", "1795459444272"]),
    st.text(max_size=40),
)
QUERIES = st.dictionaries(
    st.one_of(st.sampled_from(["compression", "_", "sent_at", "data", "ver"]), st.text(max_size=10)),
    QUERY_VALUES,
    max_size=4,
)
SMALL_LIMITS = st.builds(
    Limits,
    max_body_bytes=st.integers(1, 1 << 16),
    max_decompressed_bytes=st.integers(1, 1 << 16),
    max_event_bytes=st.integers(1, 1 << 16),
)
ANY_LIMITS = st.one_of(st.just(LIMITS), SMALL_LIMITS)


def must_decode_or_refuse(
    body: bytes, content_type: str | None, content_encoding: str | None, query: Any, lim: Limits
) -> None:
    try:
        batch = decode_capture(
            body, content_type=content_type, content_encoding=content_encoding, query=query, limits=lim
        )
    except (DecodeError, TooLarge) as exc:
        message = str(exc)
    else:
        assert all(type(event) is dict for event in batch.events)
        assert batch.token is None or (type(batch.token) is str and batch.token)
        return
    assert message


@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=2048),
    content_type=CONTENT_TYPES,
    content_encoding=CONTENT_ENCODINGS,
    query=QUERIES,
    lim=ANY_LIMITS,
)
def test_fuzz_arbitrary_bytes(
    body: bytes, content_type: str | None, content_encoding: str | None, query: dict[str, str], lim: Limits
) -> None:
    must_decode_or_refuse(body, content_type, content_encoding, query, lim)


def wrap(inner: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(inner)
    if how == "form-base64":
        return form(base64.b64encode(inner))
    if how == "form-raw":
        return b"data=" + inner
    if how == "base64":
        return base64.b64encode(inner)
    return inner


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    inner=st.one_of(st.binary(max_size=512), JSONISH.map(orjson.dumps)),
    how=st.sampled_from(["gzip", "form-base64", "form-raw", "base64", "plain"]),
    content_type=CONTENT_TYPES,
    content_encoding=CONTENT_ENCODINGS,
    query=QUERIES,
    lim=ANY_LIMITS,
)
def test_fuzz_wrapped_bytes_reach_the_inner_layers(
    inner: bytes, how: str, content_type: str | None, content_encoding: str | None, query: dict[str, str], lim: Limits
) -> None:
    must_decode_or_refuse(wrap(inner, how), content_type, content_encoding, query, lim)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_lzstring(data: bytes) -> None:
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    text = bytes(alphabet[b % len(alphabet)] for b in data)
    try:
        result = decompress_from_base64(text, max_length=10_000)
    except LZStringError:
        return
    result.encode("utf-8")  # never a lone surrogate
    assert len(result) <= 10_000


EVENTS = st.lists(
    st.dictionaries(st.text(max_size=8), JSONISH, max_size=4).map(lambda e: {"event": "$exception", **e}),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    events=EVENTS,
    how=st.sampled_from(["plain", "gzip-magic", "content-encoding-gzip", "deflate", "form-base64", "form-json"]),
)
def test_round_trip(events: list[dict[str, Any]], how: str) -> None:
    text = orjson.dumps({"api_key": TOKEN, "batch": events})
    bodies = {
        "plain": (text, "application/json", None),
        "gzip-magic": (gzip.compress(text), "text/plain", None),
        "content-encoding-gzip": (gzip.compress(text), "application/json", "gzip"),
        "deflate": (zlib.compress(text), "application/json", "deflate"),
        "form-base64": (form(base64.b64encode(text)), FORM, None),
        "form-json": (form(text), FORM, None),
    }
    body, content_type, content_encoding = bodies[how]
    batch = decode(body, content_type=content_type, content_encoding=content_encoding)
    assert batch.events == orjson.loads(text)["batch"]
    assert batch.token == TOKEN
