"""Sentry's envelope format, parsed: pure, bounded, no I/O.

An envelope is a JSON header line, then items: a JSON item header line (with ``type`` and,
optionally, the payload's ``length`` in bytes) and the payload, which without a length runs
to the end of its line. See Sentry's SDK developer documentation ("Envelopes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Envelope", "EnvelopeError", "Item", "parse_envelope"]

# No SDK sends more; a body of empty items must not cost a loop per byte.
_MAX_ITEMS = 1000
_JSON_ITEMS = frozenset({"event", "transaction", "session", "sessions", "client_report", "check_in", "feedback"})


class EnvelopeError(Exception):
    """The body is not a valid envelope; the message says why, for the client."""


@dataclass(frozen=True)
class Item:
    type: str
    headers: dict[str, Any]
    payload: bytes


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item]


def _json_line(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"The {what} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"The {what} must be a JSON object.")
    return value


def _line(body: bytes, start: int) -> tuple[bytes, int]:
    """The line starting at ``start`` (without its newline) and where the next one starts."""
    end = body.find(b"\n", start)
    if end < 0:
        return body[start:], len(body)
    return body[start:end], end + 1


def _json_payload(headers: dict[str, Any]) -> bool:
    content_type = headers.get("content_type")
    return headers.get("type") in _JSON_ITEMS or (isinstance(content_type, str) and "json" in content_type)


def parse_envelope(body: bytes) -> Envelope:
    """Parse an envelope; raises ``EnvelopeError`` and nothing else."""
    first, position = _line(body, 0)
    if not first.strip():
        raise EnvelopeError("The envelope is empty: it needs a header line.")
    headers = _json_line(first, "envelope header")
    items: list[Item] = []
    while position < len(body):
        line, after = _line(body, position)
        if not line.strip():  # blank lines between items are tolerated, as Relay does
            position = after
            continue
        if len(items) >= _MAX_ITEMS:
            raise EnvelopeError(f"The envelope has more than {_MAX_ITEMS} items.")
        item_headers = _json_line(line, f"header of item {len(items) + 1}")
        kind = item_headers.get("type")
        if not isinstance(kind, str) or not kind:
            raise EnvelopeError(f"Item {len(items) + 1} has no type.")
        length = item_headers.get("length")
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
            raise EnvelopeError(f"Item {len(items) + 1} has an invalid length: {length!r}.")
        end = None if length is None else after + length
        if end is not None and end <= len(body) and body[end : end + 1] in (b"", b"\n"):
            payload, position = body[after:end], end + 1
        elif end is None or _json_payload(item_headers):
            # No length, or one that does not end at a line break (a re-serialised envelope
            # whose length was left as it was): a JSON payload is its line, as without a length.
            payload, position = _line(body, after)
        else:
            raise EnvelopeError(
                f"Item {len(items) + 1} ({kind}) says it is {length} bytes long, "
                f"but its payload does not end there ({len(body) - after} bytes follow its header)."
            )
        items.append(Item(kind, item_headers, payload))
    return Envelope(headers, items)
