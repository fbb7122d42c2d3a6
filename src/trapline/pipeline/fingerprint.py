"""Fingerprints: the hash cymbal groups exceptions by, and the record that explains it.

Grouping is versioned data. An algorithm is registered in ``GROUPING_VERSIONS`` under a name
that is stored beside every fingerprint it produced; a new algorithm gets a new name and the
old one stays, unchanged, so that existing issues keep matching. Never edit a registered
algorithm: a changed fingerprint opens a new issue for every old one it touches.

``cymbal-v1`` is PostHog's automatic fingerprint (cymbal's ``FingerprintVersion::V1``, the
algorithm pinned bit for bit by cymbal's ``tests/fingerprint_golden.rs``). One SHA-512 hasher
is fed UTF-8 bytes, with no separators, and the digest is written as 128 lowercase hex digits.
For each exception, in list order:

1. feed ``type``; if the exception has no *resolved* stack (none, or still raw), also feed
   ``value``. Record ``{"type": "exception", "id": <id>, "pieces": ["Exception Type",
   "Exception Message"]}``, without "Exception Message" when the stack is resolved;
2. pick the frames of a resolved stack: when no frame is in-app, only the first frame (the
   outermost call, since SDKs send oldest first); otherwise every in-app frame that is
   resolved, or every in-app frame when none is resolved; in stack order;
3. for each picked frame feed, when present, ``source`` ("Source file name") and ``module``
   ("Module name"); then ``resolved_name`` ("Resolved function name") if the frame has one;
   otherwise ``mangled_name`` ("Mangled function name"), ``line`` and ``column`` as decimal
   text when present ("Line number", "Column number") and ``lang`` ("Language"). Record
   ``{"type": "frame", "raw_id": <raw id>, "pieces": [...]}``.

This frame order (source and module first) is what cymbal runs and what its golden snapshots
hold; it differs from an older cymbal, which fed ``resolved_name`` before ``source`` and
ignored ``module``.

Overrides, applied by the caller: a matching grouping rule gives ``custom-rule:<rule uuid>``
(``custom_rule``); a client ``$exception_fingerprint`` then replaces any result
(``manual``), hashed with SHA-512 when it is longer than 64 UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Literal, Protocol, TypedDict

import orjson

from trapline.pipeline.exceptions import ExceptionInfo
from trapline.pipeline.frames import STACK_MEMO_MAX_BYTES, Frame

__all__ = [
    "CLIENT_FINGERPRINT_MAX_BYTES",
    "GROUPING_VERSION",
    "GROUPING_VERSIONS",
    "CustomRecordPart",
    "ExceptionRecordPart",
    "Fingerprint",
    "FrameRecordPart",
    "GroupingAlgorithm",
    "ManualRecordPart",
    "RecordPart",
    "client_fingerprint",
    "custom_rule",
    "custom_rule_fingerprint",
    "custom_rule_record",
    "generate_fingerprint",
    "manual",
    "manual_record",
]

GROUPING_VERSION = "cymbal-v1"
# A client fingerprint longer than this (in UTF-8 bytes) is stored as its SHA-512 hex digest.
CLIENT_FINGERPRINT_MAX_BYTES = 64


class ExceptionRecordPart(TypedDict):
    """What an exception contributed: its type, and its message when it had no resolved stack."""

    type: Literal["exception"]
    id: str | None
    pieces: list[str]


class FrameRecordPart(TypedDict):
    """What one frame contributed."""

    type: Literal["frame"]
    raw_id: str
    pieces: list[str]


class CustomRecordPart(TypedDict):
    """The fingerprint came from a grouping rule."""

    type: Literal["custom"]
    rule_id: str


class ManualRecordPart(TypedDict):
    """The fingerprint came from the client (``$exception_fingerprint``)."""

    type: Literal["manual"]


RecordPart = ExceptionRecordPart | FrameRecordPart | CustomRecordPart | ManualRecordPart


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint value and the record of what went into it."""

    value: str
    record: list[RecordPart]


GroupingAlgorithm = Callable[[Sequence[ExceptionInfo]], Fingerprint]


def _v1_frames(frames: Sequence[Frame]) -> Sequence[Frame]:
    if not any(frame["in_app"] for frame in frames):
        return frames[:1]
    any_resolved = any(frame["resolved"] for frame in frames)
    return [frame for frame in frames if frame["in_app"] and (frame["resolved"] or not any_resolved)]


def _v1_frame(frame: Frame, hasher: _Hasher, record: list[RecordPart]) -> None:
    pieces: list[str] = []

    def feed(value: str, piece: str) -> None:
        hasher.update(value.encode("utf-8"))
        pieces.append(piece)

    source, module = frame.get("source"), frame.get("module")
    if source is not None:
        feed(source, "Source file name")
    if module is not None:
        feed(module, "Module name")
    resolved_name = frame.get("resolved_name")
    if resolved_name is not None:
        feed(resolved_name, "Resolved function name")
    else:
        feed(frame["mangled_name"], "Mangled function name")
        line, column = frame.get("line"), frame.get("column")
        if line is not None:
            feed(str(line), "Line number")
        if column is not None:
            feed(str(column), "Column number")
        feed(frame["lang"], "Language")
    record.append({"type": "frame", "raw_id": frame["raw_id"], "pieces": pieces})


def _cymbal_v1(exception_list: Sequence[ExceptionInfo]) -> Fingerprint:
    hasher = hashlib.sha512()
    record: list[RecordPart] = []
    for exception in exception_list:
        stack = exception.get("stacktrace")
        frames = stack["frames"] if stack is not None and stack["type"] == "resolved" else None
        hasher.update(exception["type"].encode("utf-8"))
        pieces = ["Exception Type"]
        if frames is None:
            hasher.update(exception["value"].encode("utf-8"))
            pieces.append("Exception Message")
        record.append({"type": "exception", "id": exception.get("id"), "pieces": pieces})
        if frames:
            fed, parts = _v1_stack(frames)
            hasher.update(fed)
            record.extend(parts)
    return Fingerprint(value=hasher.hexdigest(), record=record)


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _Fed:
    """Keeps what a hasher is fed: hashing it all at once gives the same digest."""

    def __init__(self) -> None:
        self.data = bytearray()

    def update(self, data: bytes, /) -> None:
        self.data += data


# What a stack's frames feed the hasher and record depends on the frames alone, and every
# event of an issue has the same stack: it is worked out once per stack (the algorithm itself
# is unchanged, _v1_frame feeds _Fed). The frames' record parts are shared by every event with
# the stack (never modified: they are written as they are): one record part per frame per
# event would be most of the objects a batch keeps alive, for the garbage collector to go
# through. Keyed by the resolved frames' JSON, at most STACK_MEMO_MAX_BYTES each (a longer
# stack is not kept): at most 512 x 64 KB, a few MB for usual stacks.
_StackPart = tuple[bytes, tuple[RecordPart, ...]]


def _v1_stack_of(frames: Sequence[Frame]) -> _StackPart:
    fed = _Fed()
    record: list[RecordPart] = []
    for frame in _v1_frames(frames):
        _v1_frame(frame, fed, record)
    return bytes(fed.data), tuple(record)


@lru_cache(maxsize=512)
def _v1_stack_by_json(text: bytes) -> _StackPart:
    return _v1_stack_of(orjson.loads(text))


def _v1_stack(frames: Sequence[Frame]) -> _StackPart:
    try:
        text = orjson.dumps(frames)
    except TypeError:  # not plain JSON: not kept
        return _v1_stack_of(frames)
    if len(text) > STACK_MEMO_MAX_BYTES:
        return _v1_stack_of(frames)
    return _v1_stack_by_json(text)


# Registered algorithms, oldest first. Add a version; never change or remove one.
GROUPING_VERSIONS: Mapping[str, GroupingAlgorithm] = MappingProxyType({"cymbal-v1": _cymbal_v1})


def generate_fingerprint(exception_list: Sequence[ExceptionInfo], version: str = GROUPING_VERSION) -> Fingerprint:
    """The automatic fingerprint of a resolved exception list under grouping ``version``."""
    try:
        algorithm = GROUPING_VERSIONS[version]
    except KeyError:
        raise ValueError(f"unknown grouping version {version!r}") from None
    return algorithm(exception_list)


def client_fingerprint(value: str) -> str:
    """A client's ``$exception_fingerprint`` as stored: kept when it is at most 64 UTF-8 bytes,
    else replaced by its SHA-512 hex digest."""
    encoded = value.encode("utf-8")
    if len(encoded) > CLIENT_FINGERPRINT_MAX_BYTES:
        return hashlib.sha512(encoded).hexdigest()
    return value


def manual_record() -> list[RecordPart]:
    """The record of a client-supplied fingerprint: ``[{"type": "manual"}]``."""
    return [{"type": "manual"}]


def manual(value: str) -> Fingerprint:
    """The fingerprint a client's ``$exception_fingerprint`` gives (it beats grouping rules)."""
    return Fingerprint(value=client_fingerprint(value), record=manual_record())


# In a Sentry fingerprint, the part that stands for the fingerprint grouping would compute.
DEFAULT_PART = "{{ default }}"


def with_default(parts: Sequence[str], default: Fingerprint) -> Fingerprint:
    """A Sentry fingerprint whose ``{{ default }}`` parts are the computed ``default``: the
    default groups, split further by the other parts (stored like a client fingerprint)."""
    filled = [default.value if part == DEFAULT_PART else part for part in parts]
    return manual(json.dumps(filled, separators=(",", ":"), ensure_ascii=False))


def _rule_uuid(rule_id: uuid.UUID | str) -> str:
    return str(rule_id if isinstance(rule_id, uuid.UUID) else uuid.UUID(rule_id))


def custom_rule_fingerprint(rule_id: uuid.UUID | str) -> str:
    """The fingerprint of events a grouping rule matched: ``custom-rule:<rule uuid>``."""
    return f"custom-rule:{_rule_uuid(rule_id)}"


def custom_rule_record(rule_id: uuid.UUID | str) -> list[RecordPart]:
    """The record of a grouping-rule fingerprint: ``[{"type": "custom", "rule_id": ...}]``."""
    return [{"type": "custom", "rule_id": _rule_uuid(rule_id)}]


def custom_rule(rule_id: uuid.UUID | str) -> Fingerprint:
    """The fingerprint a matching grouping rule gives."""
    return Fingerprint(value=custom_rule_fingerprint(rule_id), record=custom_rule_record(rule_id))
