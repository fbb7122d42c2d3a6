"""What every platform module shares: the frame types, the parsed-frame protocol, the frame
builder, the raw-id hashing primitives and the source-context lines."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, NotRequired, Protocol, TypedDict, cast

from trapline.pipeline._wire import U32_MAX, get_bool

__all__ = [
    "CONTEXT_LINE_MAX_CHARS",
    "ContextLine",
    "Frame",
    "FrameContext",
    "Meta",
    "ParsedFrame",
    "RawFrame",
    "ResolvedFrame",
    "ResolvedStack",
    "Resolver",
    "SymbolLookup",
    "build_frame",
    "context_line",
    "context_offset",
    "cut_context_line",
    "read_meta",
    "sha512_hex",
    "u32_be",
    "utf8",
]

# Context lines longer than this (in characters) are cut and marked; cymbal's ContextLine::new.
CONTEXT_LINE_MAX_CHARS = 300
_CUT_MARK = "...✂️"


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


@dataclass(frozen=True)
class SymbolLookup:
    """What a symbol-set resolver looks up for a raw frame: a symbol set's symbols at a position.

    ``chunk_id`` is the symbol set's ref, whatever the platform calls it: a JavaScript or
    Hermes chunk id, a ProGuard map id, a native debug image's debug id. ``kind`` says which
    symbols answer: ``"js"`` (source and map; ``line``/``column`` 1-based as JavaScript engines
    count), ``"hermes"`` (``column`` = bytecode offset), ``"java"`` (``line`` = the obfuscated
    line, 0 if none) or ``"native"`` (``address`` = the instruction's offset in its image).
    """

    chunk_id: str
    line: int
    column: int
    kind: str = "js"
    address: int = 0


class ParsedFrame(Protocol):
    """A raw frame read by its platform's parser (``stack.PARSERS``): everything trapline does
    with a frame without symbols goes through these four methods, so a platform module is the
    one place that knows its frames."""

    def raw_hash(self) -> str:
        """The SHA-512 hex digest cymbal identifies the raw frame by (see ``raw_frame_hash``)."""
        ...

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        """The frame (and context) cymbal emits when no symbol set resolves it."""
        ...

    def lookup(self) -> SymbolLookup | None:
        """What a symbol-set resolver must look up for the frame, or None when cymbal never
        looks it up."""
        ...

    def context(self) -> FrameContext | None:
        """The source context the raw frame carries, or None."""
        ...


@dataclass(frozen=True)
class Meta:
    """The flags every cymbal frame carries, with cymbal's defaults."""

    in_app: bool
    synthetic: bool


def read_meta(raw: Mapping[str, object]) -> Meta:
    in_app = get_bool(raw, "in_app", default=True)
    synthetic = get_bool(raw, "synthetic", default=False)
    assert in_app is not None and synthetic is not None
    return Meta(in_app=in_app, synthetic=synthetic)


def build_frame(
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


# --- raw ids ------------------------------------------------------------------------------------


def sha512_hex(parts: Sequence[bytes]) -> str:
    hasher = hashlib.sha512()
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def u32_be(value: int | None) -> bytes:
    return struct.pack(">I", value or 0)


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


# --- context ------------------------------------------------------------------------------------


def context_line(number: int, line: str) -> ContextLine:
    """A numbered source line as cymbal stores it (cut at 300 characters), without its line end."""
    return cut_context_line(number, line.rstrip("\r\n"))


def cut_context_line(number: int, line: str) -> ContextLine:
    """``context_line`` of a line already without its line end."""
    cut = line[:CONTEXT_LINE_MAX_CHARS]
    if len(cut) < len(line):
        cut += _CUT_MARK
    # Only NULs are replaced: indentation in source lines is meaningful (sanitize_source_line).
    return {"number": number, "line": cut.replace("\x00", "\ufffd")}


def context_offset(base: int, offset: int) -> int:
    # cymbal's ContextLine::new_rel saturates at both ends of u32.
    return min(max(base + offset, 0), U32_MAX)


def context_around(lines: Sequence[str], line: int, count: int) -> FrameContext | None:
    """The ``count`` lines each side of 1-based ``line`` of a source file, or None when the
    file has no such line."""
    if not 1 <= line <= len(lines):
        return None
    index = line - 1
    before = [context_line(n + 1, lines[n]) for n in range(index - 1, max(index - count, 0) - 1, -1)]
    after = [context_line(n + 1, lines[n]) for n in range(index + 1, min(index + 1 + count, len(lines)))]
    return {"before": before, "line": context_line(line, lines[index]), "after": after}
