"""JVM frames: ``platform: "java"``, as posthog-android sends them (obfuscated on R8 builds).

Every frame carries the build's ProGuard/R8 map id as ``map_id`` (the Gradle plugin's
``io.posthog.proguard.mapid``, else ``applicationId@versionName+versionCode``): the ref of the
mapping symbol set. One obfuscated frame can resolve into several (methods inlined into it),
each a frame of its own with the part index in its ``raw_id``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from trapline.pipeline._wire import get_bool, get_str, get_u32
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

__all__ = [
    "JavaFrame",
    "java_failure",
    "java_missing",
    "java_no_frames",
    "parse_java_frame",
    "remapped_type",
]

_NO_MAP_ID = "No map ID sent with frame"


def java_missing(map_id: str) -> str:
    return f"No proguard map uploaded for id: {map_id}"


def java_failure(detail: str) -> str:
    return detail if detail.startswith("Invalid mapping") else f"Invalid mapping: {detail}"


def java_no_frames() -> str:
    return "No original frames could be derived from this raw frame"


@dataclass(frozen=True)
class JavaFrame:
    module: str  # the class, obfuscated or not
    function: str
    filename: str | None
    lineno: int | None
    map_id: str | None
    meta: Meta

    def raw_hash(self) -> str:
        parts = [utf8(self.filename)] if self.filename is not None else []
        # The line is hashed as cymbal's usize: 8 bytes, big-endian (not the u32 of others).
        parts += [utf8(self.function), struct.pack(">Q", self.lineno or 0), utf8(self.module)]
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        # With a map id this is what the frame gets when no mapping was uploaded for it.
        failure = _NO_MAP_ID if self.map_id is None else java_missing(self.map_id)
        return ResolvedFrame(self.unresolved(raw_id, failure), None)

    def unresolved(self, raw_id: str, failure: str) -> Frame:
        return build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=self.lineno,
            column=None,
            source=self.filename,
            module=self.module,
            in_app=self.meta.in_app,
            resolved_name=None,
            lang="java",
            resolved=False,
            resolve_failure=failure,
            synthetic=self.meta.synthetic,
        )

    def mapped(self, raw_id: str, *, module: str, function: str, line: int | None, file: str | None) -> Frame:
        """One original frame the mapping gave for this one."""
        return build_frame(
            raw_id=raw_id,
            mangled_name=self.function,
            line=line,
            column=None,
            source=file,
            module=module,
            in_app=self.meta.in_app or _in_app_package(self.map_id, module),
            resolved_name=function,
            lang="java",
            resolved=True,
            synthetic=self.meta.synthetic,
        )

    def lookup(self) -> SymbolLookup | None:
        if self.map_id is None:
            return None
        return SymbolLookup(self.map_id, self.lineno or 0, 0, kind="java")

    def context(self) -> FrameContext | None:
        return None


def _in_app_package(map_id: str | None, module: str) -> bool:
    """Whether a de-obfuscated class lies in the app's own package, when the map id names it
    (``applicationId@versionName+versionCode``): cymbal promotes such frames to in-app, since
    the SDK decided in-app on the obfuscated names. It never demotes."""
    if map_id is None or "@" not in map_id:
        return False
    package = map_id.split("@", 1)[0]
    return bool(package) and (module == package or module.startswith(package + "."))


def remapped_type(original_class: str) -> tuple[str, str]:
    """(module, type) of a de-obfuscated exception class: split at its last dot."""
    module, _, name = original_class.rpartition(".")
    return module, name


def parse_java_frame(raw: Mapping[str, object]) -> JavaFrame:
    get_bool(raw, "method_synthetic", default=False)  # type-checked by cymbal, otherwise unused
    return JavaFrame(
        module=cast(str, get_str(raw, "module", required=True)),
        function=cast(str, get_str(raw, "function", required=True)),
        filename=get_str(raw, "filename"),
        lineno=get_u32(raw, "lineno"),
        map_id=get_str(raw, "map_id"),
        meta=read_meta(raw),
    )
