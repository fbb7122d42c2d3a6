"""An ``$exception`` event's properties, normalised into the exception list cymbal works on.

``normalize_exception_properties`` reads the properties the way cymbal's pre-processing does
(``pipeline/exception/mod.rs``, later ``stages/pre_processing``):

1. Every string inside ``$exception_list`` is made safe for PostgreSQL: NUL becomes U+FFFD;
   a string that had a NUL or is longer than 512 UTF-8 bytes also has every run of 50 or more
   whitespace characters replaced by ``<ws trimmed>``. Lists nest at most 64 levels deep.
2. The list is read into cymbal's types (``types/exception.rs``): ``type`` (a missing or null
   type becomes ``"Error"``), ``value`` (missing or null gives ``""``), ``mechanism`` (only
   ``handled``, ``type``, ``source``, ``synthetic`` survive), ``module``, ``thread_id``,
   ``stacktrace`` (raw or resolved). A value of the wrong type fails the whole event.
3. An empty list fails the event.
4. A ``value`` longer than 10,000 UTF-8 bytes is cut after the last character starting before
   byte 10,000, and ``"..."`` is appended.
5. Every exception gets a fresh UUIDv7 ``id``, replacing whatever the client sent.

Failures are values, not exceptions: a ``Rejected`` carries the exact text cymbal appends to
the event's ``$cymbal_errors`` (``error.rs``, ``EventError``), e.g.
``Empty exception list: <event uuid>`` or ``Invalid properties: <event uuid>, serde error:
missing field `$exception_list```. The serde part imitates serde_json's wording.

Trapline extension: cymbal has no legacy path and rejects an event without
``$exception_list``. Trapline instead builds a one-exception list from the legacy
``$exception_type`` / ``$exception_message`` properties when ``$exception_list`` is absent and
``$exception_type`` is a string.

``resolve_exception_list`` then resolves the raw stacks (a raw stack with no frames is dropped,
leaving the exception stackless; a resolved stack is kept as sent), and ``search_properties``
computes the ``$exception_types`` / ``_values`` / ``_sources`` / ``_functions`` properties.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NotRequired, TypedDict, cast

import orjson

from trapline.ids import uuid7_text
from trapline.pipeline._wire import WireError, get_bool, get_i32, get_str, invalid_type, missing_field
from trapline.pipeline.frames import (
    STACK_MEMO_MAX_BYTES,
    Frame,
    FrameContext,
    RawFrame,
    ResolvedStack,
    Resolver,
    normalize_resolved_frame,
    resolve_stack,
    validate_raw_frames,
)
from trapline.pipeline.frames.native import attach_debug_images

__all__ = [
    "MAX_EXCEPTION_VALUE_BYTES",
    "ExceptionInfo",
    "ExceptionProperties",
    "Mechanism",
    "RawStacktrace",
    "Rejected",
    "ResolvedExceptions",
    "ResolvedStacktrace",
    "SearchProperties",
    "Stacktrace",
    "exception_handled",
    "new_exception_id",
    "no_properties",
    "normalize_exception_properties",
    "resolve_exception_list",
    "search_properties",
    "wrong_event_type",
]

# cymbal's MAX_EXCEPTION_VALUE_LENGTH; compared with the UTF-8 length, as Rust's str::len is.
MAX_EXCEPTION_VALUE_BYTES = 10_000
_TRUNCATION_MARK = "..."
# recursively_sanitize_properties refuses deeper nesting (it recurses once per level).
_MAX_DEPTH = 64
# Strings that need sanitising: a NUL, or longer than this many bytes (needs_sanitization).
_LONG_STRING_BYTES = 512
# Rust regex \s is Unicode White_Space, which differs from Python's \s (\x1c-\x1f).
_LONG_WHITESPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{50,}")
_DEFAULT_TYPE = "Error"


class Mechanism(TypedDict, total=False):
    """How the exception was caught; cymbal keeps only these four fields."""

    handled: bool
    type: str
    source: str
    synthetic: bool


class RawStacktrace(TypedDict):
    """A stack as SDKs send it."""

    type: Literal["raw"]
    frames: list[RawFrame]


class ResolvedStacktrace(TypedDict):
    """A stack after resolution."""

    type: Literal["resolved"]
    frames: list[Frame]


Stacktrace = RawStacktrace | ResolvedStacktrace


class ExceptionInfo(TypedDict):
    """One entry of ``$exception_list``, keys in the order cymbal serialises them."""

    id: NotRequired[str]
    type: str
    value: str
    mechanism: NotRequired[Mechanism]
    module: NotRequired[str]
    thread_id: NotRequired[int]
    stacktrace: NotRequired[Stacktrace]


SearchProperties = TypedDict(
    "SearchProperties",
    {
        "$exception_types": list[str],
        "$exception_values": list[str],
        "$exception_sources": list[str],
        "$exception_functions": list[str],
    },
)
SearchProperties.__doc__ = "The computed properties rules and search filter on."


@dataclass(frozen=True)
class ExceptionProperties:
    """What an ``$exception`` event's properties say, normalised."""

    # Each exception has its new id; stacks are still as sent (see resolve_exception_list).
    exception_list: list[ExceptionInfo]
    # $exception_fingerprint as sent: a client fingerprint overrides grouping.
    fingerprint: str | None
    # $sentry_fingerprint: a Sentry fingerprint with "{{ default }}" among its parts, which
    # stands for the fingerprint grouping computes (Trapline's, not cymbal's).
    fingerprint_parts: tuple[str, ...] | None
    # $issue_name / $issue_description: name and describe a newly created issue.
    issue_name: str | None
    issue_description: str | None
    # $exception_handled if sent, else exception_list[0].mechanism.handled, else False.
    handled: bool


@dataclass(frozen=True)
class Rejected:
    """An event cymbal would not process; ``error`` is the text for ``$cymbal_errors``."""

    error: str


@dataclass(frozen=True)
class ResolvedExceptions:
    """An exception list with its raw stacks resolved, and the frames' source contexts."""

    exception_list: list[ExceptionInfo]
    # Keyed by frame raw_id ("<hash>/<part>"); stored with the frame, never put on the event.
    contexts: dict[str, FrameContext]


def new_exception_id() -> str:
    """A fresh exception id: a UUIDv7 in its hyphenated form."""
    return uuid7_text()


def wrong_event_type(event: str, event_uuid: uuid.UUID | str) -> Rejected:
    """cymbal's rejection of an event that is not ``$exception``."""
    return Rejected(f"Wrong event type: {event} for event {event_uuid}")


def no_properties(event_uuid: uuid.UUID | str) -> Rejected:
    """cymbal's rejection of an event without properties."""
    return Rejected(f"No properties: {event_uuid}")


def _invalid(event_uuid: uuid.UUID | str, message: str) -> Rejected:
    return Rejected(f"Invalid properties: {event_uuid}, serde error: {message}")


def _sanitize(value: object, depth: int) -> object:
    """``value`` with cymbal's PostgreSQL sanitising applied to every string.

    Returns ``value`` itself when nothing needed changing (nearly always), so that the usual
    event is walked but not copied. Exact type checks first: values come from JSON, and
    ``isinstance`` against the ``Mapping`` ABC costs more than the rest of the walk.
    """
    kind = type(value)
    if kind is str:
        return _sanitize_string(cast(str, value))
    # Nothing may sit deeper than _MAX_DEPTH: a container there, or anything in one just above.
    if depth > _MAX_DEPTH or (depth == _MAX_DEPTH and kind in (dict, list) and value):
        raise WireError("Recursion limit exceeded")
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        mapping = cast(Mapping[object, object], value)
        changed: dict[object, object] | None = None
        for key, item in mapping.items():
            clean = item if type(item) in _SCALARS else _sanitize(item, depth + 1)
            if clean is not item and changed is None:
                changed = dict(mapping)
            if changed is not None:
                changed[key] = clean
        return value if changed is None else changed
    if kind is list or isinstance(value, list | tuple):
        sequence = cast(Sequence[object], value)
        items: list[object] | None = None
        for index, item in enumerate(sequence):
            clean = item if type(item) in _SCALARS else _sanitize(item, depth + 1)
            if clean is not item and items is None:
                items = list(sequence)
            if items is not None:
                items[index] = clean
        return value if items is None else items
    return value


_SCALARS = frozenset({int, float, bool, type(None)})


def _sanitize_exception_list(value: object) -> object:
    """``_sanitize(value, 0)`` for an ``$exception_list``, with each stack frame looked up in a
    cache: frames are most of an event's strings, and the same frames come again and again."""
    if type(value) is not list:
        return _sanitize(value, 0)
    return _each(value, _sanitize_exception)


def _sanitize_exception(value: object) -> object:  # depth 1
    if type(value) is not dict:
        return _sanitize(value, 1)
    return _items(value, lambda key, item: _sanitize_stack(item) if key == "stacktrace" else _sanitize(item, 2))


def _sanitize_stack(value: object) -> object:  # depth 2
    if type(value) is not dict:
        return _sanitize(value, 2)
    return _items(value, lambda key, item: _sanitize_frames(item) if key == "frames" else _sanitize(item, 3))


def _sanitize_frames(value: object) -> object:  # depth 3
    if type(value) is not list:
        return _sanitize(value, 3)
    if not value:
        return value
    try:
        text = orjson.dumps(value)
    except TypeError:  # a lone surrogate: frame by frame, where the walk reports it
        return _each(value, _sanitize_frame)
    if len(text) > STACK_MEMO_MAX_BYTES:
        return _each(value, _sanitize_frame)
    return list(_sanitized_frames(text))


# Whole stacks repeat (every event of an issue has the same one): one lookup per stack instead
# of one per frame. The frames are the frame cache's objects; the keys (stacks' JSON) are at most
# STACK_MEMO_MAX_BYTES each, so at most 512 x 64 KB, a few MB for usual stacks.
@lru_cache(maxsize=512)
def _sanitized_frames(text: bytes) -> tuple[object, ...]:
    return tuple(_each(orjson.loads(text), _sanitize_frame))


def _sanitize_frame(value: object) -> object:  # depth 4
    if type(value) is not dict:
        return _sanitize(value, 4)
    try:
        text = orjson.dumps(value)
    except TypeError:  # a lone surrogate: the walk reports it
        return _sanitize(value, 4)
    return _sanitized_frame(text)


@lru_cache(maxsize=4096)
def _sanitized_frame(text: bytes) -> object:
    # Shared by every event with this frame: nothing downstream modifies raw frames.
    return _sanitize(orjson.loads(text), 4)


def _each(sequence: list[object], clean: Callable[[object], object]) -> list[object]:
    out = [clean(item) for item in sequence]
    return sequence if all(new is old for new, old in zip(out, sequence, strict=True)) else out


def _items(mapping: dict[str, object], clean: Callable[[str, object], object]) -> dict[str, object]:
    out = {key: clean(key, item) for key, item in mapping.items()}
    return mapping if all(out[key] is item for key, item in mapping.items()) else out


def _sanitize_string(value: str) -> str:
    if value.isascii():  # a flag lookup: no surrogates, one byte per character
        if len(value) <= _LONG_STRING_BYTES and "\x00" not in value:
            return value
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            # A lone surrogate cannot be in a Rust string; serde_json refuses the event.
            raise WireError("lone surrogate in string") from None
    if "\x00" in value or size > _LONG_STRING_BYTES:
        return _LONG_WHITESPACE.sub("<ws trimmed>", value.replace("\x00", "\ufffd"))
    return value


def _truncate(value: str) -> str:
    encoded = value.encode("utf-8")
    if len(encoded) <= MAX_EXCEPTION_VALUE_BYTES:
        return value
    # Keep every character that starts before the limit (the last one may end past it).
    kept, size = [], 0
    for char in value:
        if size >= MAX_EXCEPTION_VALUE_BYTES:
            break
        kept.append(char)
        size += len(char.encode("utf-8"))
    return "".join(kept) + _TRUNCATION_MARK


def _mechanism(value: object) -> Mechanism | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid_type(value, "struct Mechanism")
    read: dict[str, bool | str | None] = {
        "handled": get_bool(value, "handled", default=None),
        "type": get_str(value, "type"),
        "source": get_str(value, "source"),
        "synthetic": get_bool(value, "synthetic", default=None),
    }
    return cast(Mechanism, {key: item for key, item in read.items() if item is not None})


def _stacktrace(value: object) -> Stacktrace | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid_type(value, "internally tagged enum Stacktrace")
    if "type" not in value:
        raise missing_field("type")
    kind = value["type"]
    if kind not in ("raw", "resolved"):
        if isinstance(kind, str):
            raise WireError(f"unknown variant `{kind}`, expected `raw` or `resolved`")
        raise invalid_type(kind, "variant identifier")
    if "frames" not in value:
        raise missing_field("frames")
    frames = value["frames"]
    if not isinstance(frames, list):
        raise invalid_type(frames, "a sequence")
    if kind == "resolved":
        return {"type": "resolved", "frames": [normalize_resolved_frame(frame) for frame in frames]}
    problem = validate_raw_frames(frames)
    if problem is not None:
        raise WireError(problem)
    return {"type": "raw", "frames": cast(list[RawFrame], frames)}


def _exception(value: object) -> ExceptionInfo:
    if not isinstance(value, Mapping):
        raise invalid_type(value, "struct Exception")
    exc_type = get_str(value, "type")
    out: dict[str, object] = {
        "type": _DEFAULT_TYPE if exc_type is None else exc_type,
        "value": get_str(value, "value") or "",
    }
    get_str(value, "id")  # type-checked by cymbal, then replaced
    mechanism = _mechanism(value.get("mechanism"))
    if mechanism is not None:
        out["mechanism"] = mechanism
    module = get_str(value, "module")
    if module is not None:
        out["module"] = module
    thread_id = get_i32(value, "thread_id")
    if thread_id is not None:
        out["thread_id"] = thread_id
    stacktrace = _stacktrace(value.get("stacktrace"))
    if stacktrace is not None:
        out["stacktrace"] = stacktrace
    return cast(ExceptionInfo, out)


def _read_exceptions(raw_list: object) -> tuple[dict[str, object], ...]:
    """The exceptions of a raw ``$exception_list``, read and with their values cut, without
    ids; raises ``WireError``."""
    sanitized = _sanitize_exception_list(raw_list)
    if not isinstance(sanitized, list):
        raise invalid_type(sanitized, "a sequence")
    exceptions: list[dict[str, object]] = []
    for exception in [_exception(item) for item in sanitized]:
        read = cast(dict[str, object], dict(exception))
        read["value"] = _truncate(exception["value"])
        exceptions.append(read)
    return tuple(exceptions)


# Every event of an issue sends the same exception list (but for ids, which are replaced): it is
# read once. What is read depends on the list alone; its parts (stacks, frames, mechanism) are
# shared by the events that sent it, and nothing downstream modifies them. Keyed by the list's
# JSON, at most STACK_MEMO_MAX_BYTES (a longer list is read each time): at most 512 x 64 KB,
# a few MB for usual lists.
@lru_cache(maxsize=512)
def _exceptions_by_json(text: bytes) -> tuple[dict[str, object], ...] | str:
    try:
        return _read_exceptions(orjson.loads(text))
    except WireError as error:
        return str(error)


def _exceptions(raw_list: object) -> tuple[dict[str, object], ...]:
    """``_read_exceptions`` (cached); raises ``WireError``."""
    try:
        text = orjson.dumps(raw_list)
    except TypeError:  # a lone surrogate, or not plain JSON: the walk reports it
        return _read_exceptions(raw_list)
    if len(text) > STACK_MEMO_MAX_BYTES:
        return _read_exceptions(raw_list)
    read = _exceptions_by_json(text)
    if isinstance(read, str):
        raise WireError(read)
    return read


def _legacy_list(properties: Mapping[str, object]) -> list[object] | None:
    exc_type = properties.get("$exception_type")
    if not isinstance(exc_type, str):
        return None
    message = properties.get("$exception_message")
    return [{"type": exc_type, "value": message if isinstance(message, str) else ""}]


def exception_handled(handled_property: bool | None, exception_list: Sequence[ExceptionInfo]) -> bool:
    """``$exception_handled``: the property if sent, else the first exception's
    ``mechanism.handled``, else False."""
    if handled_property is not None:
        return handled_property
    if not exception_list:
        return False
    mechanism = exception_list[0].get("mechanism")
    return bool(mechanism.get("handled", False)) if mechanism is not None else False


def normalize_exception_properties(
    properties: Mapping[str, object],
    *,
    event_uuid: uuid.UUID | str,
    new_id: Callable[[], str] = new_exception_id,
) -> ExceptionProperties | Rejected:
    """Normalise an ``$exception`` event's properties, or say why cymbal would reject them.

    ``event_uuid`` only goes into rejection messages; ``new_id`` makes the exception ids (tests
    pass a deterministic one).
    """
    if "$exception_list" in properties:
        raw_list: object = properties["$exception_list"]
    else:
        legacy = _legacy_list(properties)
        if legacy is None:
            return _invalid(event_uuid, "missing field `$exception_list`")
        raw_list = legacy
    if "$debug_images" in properties:
        # Native frames find their binary image here, once, so that each frame alone says
        # which debug file resolves it (and frame caches can key on the frame).
        raw_list = attach_debug_images(raw_list, properties["$debug_images"])
    try:
        exceptions = _exceptions(raw_list)
        fingerprint = get_str(properties, "$exception_fingerprint")
        parts = properties.get("$sentry_fingerprint")
        fingerprint_parts = (
            tuple(parts) if isinstance(parts, list) and parts and all(isinstance(p, str) for p in parts) else None
        )
        issue_name = get_str(properties, "$issue_name")
        issue_description = get_str(properties, "$issue_description")
        handled_property = get_bool(properties, "$exception_handled", default=None)
    except WireError as error:
        return _invalid(event_uuid, str(error))
    if not exceptions:
        return Rejected(f"Empty exception list: {event_uuid}")
    # The id goes first, where cymbal serialises it.
    exception_list = [cast(ExceptionInfo, {"id": new_id(), **exception}) for exception in exceptions]
    return ExceptionProperties(
        exception_list=exception_list,
        fingerprint=fingerprint,
        fingerprint_parts=fingerprint_parts,
        issue_name=issue_name,
        issue_description=issue_description,
        handled=exception_handled(handled_property, exception_list),
    )


def resolve_exception_list(
    exception_list: Sequence[ExceptionInfo],
    resolver: Resolver | None = None,
    *,
    stacks: Callable[[list[RawFrame]], ResolvedStack] | None = None,
) -> ResolvedExceptions:
    """Resolve every raw stack (see ``frames.resolve_stack``); a raw stack with no frames is
    removed, an already resolved one is kept. The input is not modified.

    ``stacks``, when given, resolves each non-empty raw stack instead of ``resolve_stack`` with
    ``resolver``; it must return what that would (a symbol resolver's per-batch memo)."""
    resolved: list[ExceptionInfo] = []
    contexts: dict[str, FrameContext] = {}
    for exception in exception_list:
        stack = exception.get("stacktrace")
        if stack is None or stack["type"] == "resolved":
            resolved.append(exception)
            continue
        out = cast(dict[str, object], dict(exception))
        if not stack["frames"]:
            # cymbal takes the stack out to resolve it and, with nothing to resolve, never
            # puts it back: the exception becomes stackless (so its message is hashed).
            del out["stacktrace"]
        else:
            frames = stack["frames"]
            result = stacks(frames) if stacks is not None else resolve_stack(frames, resolver)
            out["stacktrace"] = {"type": "resolved", "frames": result.frames}
            contexts.update(result.contexts)
        resolved.append(cast(ExceptionInfo, out))
    return ResolvedExceptions(exception_list=resolved, contexts=contexts)


def _unique(values: Iterable[str | None]) -> list[str]:
    # cymbal collects these through a HashSet, so its order is arbitrary; first seen is ours.
    return list(dict.fromkeys(value for value in values if value is not None))


def search_properties(exception_list: Sequence[ExceptionInfo]) -> SearchProperties:
    """The computed search properties, each a list of distinct values in first-seen order.

    * ``$exception_types``: every exception's ``type``, in list order;
    * ``$exception_values``: every exception's ``value`` (after truncation);
    * ``$exception_sources``: the ``source`` of every in-app frame of every resolved stack,
      walking exceptions in list order and frames in stack order (frames without one skipped);
    * ``$exception_functions``: the ``resolved_name`` of those frames, likewise.

    Raw stacks contribute no frames, as in cymbal.
    """
    # One pass over the frames, first seen kept (dicts keep insertion order): every event, so
    # the loop is written out (a generator per frame cost a fifth of it).
    sources: dict[str, None] = {}
    functions: dict[str, None] = {}
    for exception in exception_list:
        stack = exception.get("stacktrace")
        if stack is None or stack["type"] != "resolved":
            continue
        for frame in stack["frames"]:
            if frame["in_app"]:
                source = frame.get("source")
                if source is not None:
                    sources[source] = None
                function = frame.get("resolved_name")
                if function is not None:
                    functions[function] = None
    return {
        "$exception_types": _unique(exception["type"] for exception in exception_list),
        "$exception_values": _unique(exception["value"] for exception in exception_list),
        "$exception_sources": list(sources),
        "$exception_functions": list(functions),
    }
