"""Raw frames and stacks in, resolved frames out: the platform dispatch (``PARSERS``) and the
per-frame and per-stack caches in front of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple, cast

import orjson

from trapline.pipeline._wire import WireError, invalid_type
from trapline.pipeline.frames.base import (
    Frame,
    FrameContext,
    ParsedFrame,
    RawFrame,
    ResolvedFrame,
    ResolvedStack,
    Resolver,
    SymbolLookup,
)
from trapline.pipeline.frames.custom import parse_custom_frame
from trapline.pipeline.frames.dart import parse_dart_frame
from trapline.pipeline.frames.go import parse_go_frame
from trapline.pipeline.frames.hermes import parse_hermes_frame
from trapline.pipeline.frames.java import parse_java_frame
from trapline.pipeline.frames.javascript import parse_js_frame
from trapline.pipeline.frames.native import continues_group, parse_native_frame
from trapline.pipeline.frames.sentry_like import parse_sentry_like_frame
from trapline.pipeline.frames.unknown import parse_unknown_frame

__all__ = [
    "PARSERS",
    "STACK_MEMO_MAX_BYTES",
    "parse",
    "raw_frame_context",
    "raw_frame_hash",
    "resolve_frame",
    "resolve_stack",
    "stack_lookups",
    "symbol_lookup",
    "validate_raw_frame",
    "validate_raw_frames",
]

# The parser of each platform tag cymbal reads without symbol stores; a frame of any other tag
# (or none) goes to parse_unknown_frame. A parser raises WireError where cymbal's serde would
# refuse the frame. A new platform adds its module and one line here.
PARSERS: dict[str, Callable[[Mapping[str, object]], ParsedFrame]] = {
    "python": parse_sentry_like_frame,
    "ruby": parse_sentry_like_frame,
    "node:javascript": parse_sentry_like_frame,
    "web:javascript": parse_js_frame,
    "javascript": parse_js_frame,  # the legacy tag for web frames
    "go": parse_go_frame,
    "custom": parse_custom_frame,
    "dart": parse_dart_frame,
    "hermes": parse_hermes_frame,
    "java": parse_java_frame,
    "apple": parse_native_frame,
    "native": parse_native_frame,
    "rust": parse_native_frame,  # cymbal's alias for native
}


def parse(raw: object) -> ParsedFrame:
    """``raw`` read by its platform's parser; raises ``WireError`` for a frame cymbal refuses."""
    if not isinstance(raw, Mapping):
        raise invalid_type(raw, "internally tagged enum RawFrame")
    platform = raw.get("platform")
    # Only strings can be tags; anything else (a list is not even hashable) is unknown.
    parser = PARSERS.get(platform, parse_unknown_frame) if isinstance(platform, str) else parse_unknown_frame
    return parser(raw)


def validate_raw_frame(raw: object) -> str | None:
    """Why cymbal would refuse to deserialise ``raw`` (a serde-style message), or None.

    A refused frame fails its whole event in cymbal, so the exception normaliser turns this
    message into the event's rejection. Frames of unknown platforms pass: trapline degrades
    them instead (see the package docstring).
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
    parsed = parse(raw)
    hash_id = parsed.raw_hash()
    return _Facts(hash_id, parsed.pass_through(f"{hash_id}/0"), parsed.lookup())


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


def raw_frame_context(raw: RawFrame | Mapping[str, object]) -> FrameContext | None:
    """The source context a raw frame carries (python, ruby, node, custom), or None.

    There is context only when the frame has both ``context_line`` and ``lineno``.
    """
    return parse(raw).context()


def resolve_frame(raw: RawFrame | Mapping[str, object]) -> ResolvedFrame:
    """Resolve one raw frame the way cymbal does when no symbol set is involved.

    Trapline fetches nothing, so a web frame with a position fails as having no symbol set: with
    a chunk id "No sourcemap uploaded for chunk id" (minified), with only an http(s) URL "Could
    not find sourcemap for source url" (minified past column 300), with neither cymbal's
    "This frame had no source url or chunk id" (not minified). A node frame with a chunk id and
    a position fails as having no symbol set uploaded. Raises ``WireError`` for a frame cymbal
    would not deserialise (see ``validate_raw_frame``).
    """
    parsed = parse(raw)
    return parsed.pass_through(f"{parsed.raw_hash()}/0")


def symbol_lookup(raw: RawFrame | Mapping[str, object]) -> SymbolLookup | None:
    """The lookup a ``web:javascript``/``javascript``/``node:javascript`` frame needs, or None
    for frames cymbal resolves without symbols (other platforms, no chunk id, no position)."""
    return _facts(raw).lookup


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
    # A native frame the server resolved stands for its whole inline chain: the members the SDK
    # expanded from it themselves (marked inline, same address) follow it and are dropped, as
    # cymbal replaces the group; when it fails, the client's expansion is kept as sent.
    group_lead: Mapping[str, object] | None = None
    for raw, fact in zip(raw_frames, facts, strict=True):
        if group_lead is not None:
            if continues_group(group_lead, raw):
                continue
            group_lead = None
        hash_id, (frame, context) = _resolved(raw) if fact is None else (fact.hash_id, fact.resolved)
        replaced = resolver(cast(RawFrame, raw)) if resolver is not None else None
        if replaced is not None:
            if not replaced:
                raise ValueError("a resolver must return at least one frame, or None")
            if "resolve_failure" not in replaced[0].frame and isinstance(raw, Mapping):
                group_lead = raw
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
