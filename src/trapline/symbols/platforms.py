"""Symbol sets other than JavaScript source maps: what each kind reads and how it resolves a
frame (pure, but for parsing; the resolver does the I/O and the caching).

=========  ===================  =======================================================
lookup     container kinds      resolves
=========  ===================  =======================================================
hermes     3 Hermes map         a bytecode offset to source, line, column, function
java       4 ProGuard mapping   an obfuscated class/method/line to one or more frames
apple      5 dSYM (or raw ZIP)  an image-relative address to function, file and line,
native     6 ELF, 5, raw ZIP    one frame per inlined call
=========  ===================  =======================================================

A symbol set of the wrong kind, or one that cannot be read, fails its frames with a reason
that is stored on the set (as for source maps): it is not read again until re-uploaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, cast

from trapline.pipeline.exceptions import ExceptionInfo
from trapline.pipeline.frames import RawFrame, ResolvedFrame, SymbolLookup
from trapline.pipeline.frames.base import context_around
from trapline.pipeline.frames.hermes import HermesFrame, hermes_failure, hermes_missing, hermes_no_token
from trapline.pipeline.frames.java import JavaFrame, java_failure, java_missing, java_no_frames, remapped_type
from trapline.pipeline.frames.native import NativeFrame, native_failure, native_missing, symbol_not_found
from trapline.pipeline.frames.stack import parse
from trapline.symbols.container import MAGIC, ContainerError, Kind, unpack
from trapline.symbols.hermes import HermesMap
from trapline.symbols.native import NativeSymbols
from trapline.symbols.proguard import ProguardMap

__all__ = ["KINDS", "Symbols", "failed", "missing", "read_symbols", "renamed_java_types", "resolve"]

KINDS: Final = ("hermes", "java", "apple", "native")
Symbols = HermesMap | ProguardMap | NativeSymbols
_CONTAINERS: Final = {
    "hermes": (Kind.HERMES_MAP,),
    "java": (Kind.PROGUARD_MAPPING,),
    "apple": (Kind.APPLE_DSYM,),
    "native": (Kind.ELF_DEBUG_INFO, Kind.APPLE_DSYM),
}
_CONTEXT_LINES: Final = 15
_ZIP: Final = b"PK\x03\x04"


def missing(kind: str, ref: str) -> str:
    """The failure of a frame whose symbol set was never uploaded."""
    if kind == "hermes":
        return hermes_missing(ref)
    if kind == "java":
        return java_missing(ref)
    return native_missing(kind == "apple", ref)


def _failure(kind: str, detail: str) -> str:
    if kind == "hermes":
        return hermes_failure(detail)
    if kind == "java":
        return java_failure(detail)
    return native_failure(kind == "apple", detail)


def read_symbols(kind: str, data: bytes, ref: str, *, max_size: int) -> Symbols | str:
    """The symbols of an uploaded set for frames of ``kind``, or why they cannot be used."""
    if kind in ("apple", "native") and data.startswith(_ZIP):
        payload = data  # an older CLI's bare ZIP of a .dSYM bundle, with no container around it
    else:
        try:
            container = unpack(data, max_size=max_size)
        except ContainerError as exc:
            return _failure(kind, str(exc)) if data.startswith(MAGIC) else _failure(kind, f"not a symbol set ({exc})")
        if container.kind not in _CONTAINERS[kind]:
            wanted = " or ".join(k.label for k in _CONTAINERS[kind])
            return _failure(kind, f"the symbol set is a {container.kind.label}, not a {wanted}")
        payload = container.payload
    if kind == "hermes":
        return HermesMap.from_payload(payload)
    if kind == "java":
        return ProguardMap.from_payload(payload)
    return NativeSymbols.from_payload(payload, ref, what="dSYM" if kind == "apple" else "debug symbols")


def failed(raw: RawFrame, message: str) -> list[ResolvedFrame]:
    """The frame of ``raw`` whose symbols failed with ``message``."""
    parsed = parse(raw)
    if isinstance(parsed, HermesFrame | JavaFrame | NativeFrame):
        return [ResolvedFrame(parsed.unresolved("", message), None)]
    raise ValueError("failed takes hermes, java, apple and native frames")


def resolve(raw: RawFrame, lookup: SymbolLookup, symbols: Symbols) -> list[ResolvedFrame]:
    """The frames ``symbols`` give for ``raw`` (raw ids are set by ``resolve_stack``)."""
    parsed = parse(raw)
    if isinstance(parsed, HermesFrame) and isinstance(symbols, HermesMap):
        position = symbols.lookup(lookup.column)
        if position is None:
            return [ResolvedFrame(parsed.unresolved("", hermes_no_token(lookup.column, lookup.chunk_id)), None)]
        frame = parsed.mapped(
            "", source=position.source, line=position.line, column=position.column, function=position.function
        )
        return [ResolvedFrame(frame, position.context)]
    if isinstance(parsed, JavaFrame) and isinstance(symbols, ProguardMap):
        originals = symbols.remap_frame(parsed.module, parsed.function, parsed.lineno)
        if not originals:
            return [ResolvedFrame(parsed.unresolved("", java_no_frames()), None)]
        # In the mapping's order, innermost first, as cymbal keeps it (unlike native frames,
        # which it turns outermost first): the part indices of the raw ids follow this order.
        return [
            ResolvedFrame(parsed.mapped("", module=o.module, function=o.function, line=o.line, file=o.file), None)
            for o in originals
        ]
    if isinstance(parsed, NativeFrame) and isinstance(symbols, NativeSymbols):
        layers = symbols.lookup(lookup.address)
        if not layers:
            return [ResolvedFrame(parsed.unresolved("", symbol_not_found(lookup.address)), None)]
        frames = []
        for layer in reversed(layers):  # innermost first from the symcache; outermost first here
            source = symbols.source(layer.path) if layer.path is not None else None
            context = context_around(source.splitlines(), layer.line, _CONTEXT_LINES) if source is not None else None
            frames.append(ResolvedFrame(parsed.mapped("", name=layer.name, path=layer.path, line=layer.line), context))
        return frames
    raise ValueError(f"{type(symbols).__name__} cannot resolve a {raw.get('platform')} frame")


def renamed_java_types(
    raw: Sequence[ExceptionInfo],
    resolved: Sequence[ExceptionInfo],
    mapping: Callable[[str], ProguardMap | None],
) -> list[ExceptionInfo] | None:
    """The resolved exceptions with obfuscated classes named again, as cymbal does, or None
    when none changed: an exception whose first raw frame is a java frame with a map id, and
    which has a module, has its class (``module.type``) looked up in that mapping. Any failure
    leaves it as sent."""
    renamed: list[ExceptionInfo] | None = None
    for index, exception in enumerate(raw):
        stack = exception.get("stacktrace")
        module = exception.get("module")
        if stack is None or stack["type"] != "raw" or not stack["frames"] or not module:
            continue
        first = stack["frames"][0]
        map_id = first.get("map_id")
        if first.get("platform") != "java" or not isinstance(map_id, str):
            continue
        found = mapping(map_id)
        original = found.remap_class(f"{module}.{exception['type']}") if found is not None else None
        if original is None:
            continue
        new_module, new_type = remapped_type(original)
        if renamed is None:
            renamed = list(resolved)
        renamed[index] = cast(ExceptionInfo, {**renamed[index], "type": new_type, "module": new_module})
    return renamed
