"""The fallback for frames of platforms trapline cannot resolve (or frames without a platform).

cymbal fails the whole event on them; trapline keeps the event and degrades the one frame (see
the package docstring)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from trapline.pipeline._wire import is_u32
from trapline.pipeline.frames.base import (
    FrameContext,
    ResolvedFrame,
    SymbolLookup,
    build_frame,
    sha512_hex,
    utf8,
)

__all__ = ["UnknownFrame", "parse_unknown_frame"]


@dataclass(frozen=True)
class UnknownFrame:
    """A frame of a platform trapline does not read: the raw mapping, kept whole."""

    platform: str | None
    raw: Mapping[str, object]

    def raw_hash(self) -> str:
        # Trapline's own id for frames cymbal cannot read: the frame's canonical JSON.
        canonical = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return sha512_hex([utf8(canonical)])

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        raw = self.raw

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        def number(key: str) -> int | None:
            value = raw.get(key)
            return value if isinstance(value, int) and is_u32(value) else None

        in_app, synthetic = raw.get("in_app"), raw.get("synthetic")
        platform = self.platform
        frame = build_frame(
            raw_id=raw_id,
            mangled_name=text("function") or "",
            line=number("lineno"),
            column=number("colno"),
            source=text("filename") or text("abs_path"),
            module=text("module"),
            in_app=in_app if isinstance(in_app, bool) else True,
            resolved_name=None,
            lang=platform if platform else "unknown",
            resolved=False,
            resolve_failure=f"Unsupported platform: {platform}" if platform else "Frame has no platform",
            synthetic=synthetic if isinstance(synthetic, bool) else False,
        )
        return ResolvedFrame(frame, None)

    def lookup(self) -> SymbolLookup | None:
        return None

    def context(self) -> FrameContext | None:
        return None


def parse_unknown_frame(raw: Mapping[str, object]) -> UnknownFrame:
    platform = raw.get("platform")
    return UnknownFrame(platform=platform if isinstance(platform, str) else None, raw=raw)
