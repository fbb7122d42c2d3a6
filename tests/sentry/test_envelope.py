"""parse_envelope: the real sentry-sdk envelopes, every item layout, every error."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.sentry.envelope import EnvelopeError, parse_envelope

PAYLOADS = Path(__file__).parent.parent / "ingest" / "payloads"


@pytest.mark.parametrize("name", ["exception", "message"])
def test_the_captured_envelopes(name: str):
    envelope = parse_envelope((PAYLOADS / f"sentry-python-2.75.0_envelope_{name}_event.envelope.txt").read_bytes())
    assert envelope.headers["sent_at"].startswith("2026-11-23T")
    [item] = envelope.items
    assert item.type == "event"
    event = orjson.loads(item.payload)
    assert event["event_id"] == envelope.headers["event_id"]


def test_items_with_and_without_length():
    attachment = b"\x00binary\nwith newlines\n"
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n'
        b'{"type":"attachment","length":%d,"filename":"a.bin"}\n%s\n'
        b'{"type":"event"}\n{"message":"hi"}\n'
        b'{"type":"session","length":2}\n{}'
    ) % (len(attachment), attachment)
    envelope = parse_envelope(body)
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("attachment", attachment),
        ("event", b'{"message":"hi"}'),
        ("session", b"{}"),
    ]
    assert envelope.items[0].headers["filename"] == "a.bin"


def test_blank_lines_and_a_missing_final_newline_are_fine():
    envelope = parse_envelope(b'{}\n\n{"type":"event"}\n{"a":1}')
    assert [i.payload for i in envelope.items] == [b'{"a":1}']
    assert parse_envelope(b"{}\n").items == []
    assert parse_envelope(b"{}").items == []


def test_an_empty_payload_without_length():
    [item] = parse_envelope(b'{}\n{"type":"client_report"}\n').items
    assert item.payload == b""


def test_a_json_item_whose_length_is_stale_is_read_as_its_line():
    # A re-serialised envelope keeps the old length; the payload is still its own line.
    [item] = parse_envelope(b'{}\n{"type":"event","length":999}\n{"a":1}\n').items
    assert item.payload == b'{"a":1}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The envelope is empty"),
        (b"   \n", "The envelope is empty"),
        (b"not json\n", "The envelope header is not valid JSON"),
        (b"[1]\n", "The envelope header must be a JSON object"),
        (b'{}\n{"length":2}\n{}', "Item 1 has no type"),
        (b'{}\n{"type":""}\n{}', "Item 1 has no type"),
        (b"{}\nnope\n", "The header of item 1 is not valid JSON"),
        (b'{}\n{"type":"event","length":-1}\n', "Item 1 has an invalid length: -1"),
        (b'{}\n{"type":"event","length":"3"}\n', "Item 1 has an invalid length: '3'"),
        (b'{}\n{"type":"attachment","length":50}\nshort', "says it is 50 bytes long, but its payload does not end"),
    ],
)
def test_errors_say_what_is_wrong(body: bytes, message: str):
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(body)


def test_the_number_of_items_is_bounded():
    body = b"{}\n" + b'{"type":"session"}\n{}\n' * 1001
    with pytest.raises(EnvelopeError, match="more than 1000 items"):
        parse_envelope(body)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_with_envelope_error(body: bytes):
    with contextlib.suppress(EnvelopeError):
        parse_envelope(body)
