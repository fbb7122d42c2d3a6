"""Native frames: ``platform: "apple"`` (posthog-ios) and ``"native"`` (alias ``"rust"``;
posthog-rs, posthog-go and other SDKs that send instruction addresses).

A frame names an absolute instruction address; the event's ``$debug_images`` says which
binary image was loaded where, and each image's ``debug_id`` is the ref of the debug file
uploaded for it (a dSYM or an ELF with DWARF). The exception normaliser matches each frame
to its image once and writes the match onto the frame as ``debug_image`` (see
``attach_debug_images``), so that a frame's identity, lookup and resolution depend on the
frame alone, as the frame caches need. The frame's id hashes the image's debug id and the
address relative to the image, which survives address-space randomisation between launches.
"""

from __future__ import annotations

import posixpath
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from trapline.pipeline.frames.demangle import demangle, short_name

__all__ = [
    "NATIVE_PLATFORMS",
    "NativeFrame",
    "attach_debug_images",
    "continues_group",
    "native_failure",
    "native_missing",
    "parse_native_frame",
    "symbol_not_found",
]

NATIVE_PLATFORMS = ("apple", "native", "rust")
_NO_IMAGE = "No matching debug image found for frame"

# Apple's own frameworks and libraries: never the app's code, whatever the SDK said.
_APPLE_SYSTEM_MODULES = (
    "Foundation", "UIKit", "CoreFoundation", "SwiftUI", "Combine", "CoreGraphics", "QuartzCore",
    "Security", "CFNetwork", "CoreData", "CoreLocation", "AVFoundation", "Metal", "MetalKit",
    "AppKit", "WebKit", "IOKit", "GraphicsServices", "UpdateCycle", "UIKitCore", "UIKitServices",
    "UIFoundation", "FrontBoardServices", "BackBoardServices", "SpringBoardServices", "BaseBoard",
    "AttributeGraph", "SwiftUICore", "libsystem_", "libdispatch", "libswift", "libobjc", "libxpc",
    "libdyld",
)  # fmt: skip
_APPLE_LANGS = {"swift": "swift", "m": "objectivec", "mm": "objectivecpp", "c": "c", "cpp": "cpp", "cc": "cpp"}
_APPLE_LANGS |= {"cxx": "cpp", "h": "c"}
_NATIVE_LANGS = {"rs": "rust", "go": "go", "c": "c", "h": "c", "swift": "swift", "m": "objectivec"}
_NATIVE_LANGS |= dict.fromkeys(("cpp", "cc", "cxx", "hpp", "hh", "hxx"), "cpp")
_STD_CRATES = ("std", "core", "alloc", "proc_macro", "test")
# Source paths only build tooling produces for dependency and standard library code.
_LIBRARY_PATHS = (
    "/cargo/registry/src/",
    ".cargo/registry/src/",
    "/registry/src/index.crates.io-",
    "/cargo/git/checkouts/",
    ".cargo/git/checkouts/",
    "/rustlib/src/rust/library/",
)


def native_missing(apple: bool, debug_id: str) -> str:
    if apple:
        return f"No dSYM uploaded for debug_id: {debug_id}"
    return f"No debug symbols uploaded for debug_id: {debug_id}"


def native_failure(apple: bool, detail: str) -> str:
    what = "dSYM" if apple else "debug symbols"
    prefix = f"Failed to parse {what}"
    return detail if detail.startswith(prefix) else f"{prefix}: {detail}"


def symbol_not_found(address: int) -> str:
    return f"Symbol not found at address: 0x{address:x}"


def parse_hex(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.strip()
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    try:
        return int(digits, 16) if digits else None
    except ValueError:
        return None


def attach_debug_images(raw_list: object, images: object) -> object:
    """``raw_list`` (an ``$exception_list``) with each apple/native frame given the
    ``$debug_images`` entry holding its address, as ``debug_image`` (debug id and load
    address). Images without a debug id or load address are skipped (cymbal would refuse the
    event; Trapline keeps it and leaves such frames unmatched). Returns the list unchanged when
    nothing matches; never modifies its input."""
    usable = _usable_images(images)
    if not usable or not isinstance(raw_list, list):
        return raw_list
    changed = False
    out: list[object] = []
    for exception in raw_list:
        stack = exception.get("stacktrace") if isinstance(exception, dict) else None
        frames = stack.get("frames") if isinstance(stack, dict) else None
        if not isinstance(frames, list) or not any(_is_native(frame) for frame in frames):
            out.append(exception)
            continue
        new_frames = [_with_image(frame, usable) if _is_native(frame) else frame for frame in frames]
        out.append({**exception, "stacktrace": {**stack, "frames": new_frames}})  # type: ignore[dict-item]
        changed = True
    return out if changed else raw_list


def continues_group(lead: Mapping[str, object], raw: object) -> bool:
    """Whether ``raw`` is an inline member the SDK expanded from native frame ``lead``: marked
    inline, with the lead's own instruction and image address. Anything else ends the group
    (recursion repeats addresses across distinct physical frames, which must stay apart)."""
    return (
        isinstance(raw, Mapping)
        and raw.get("platform") in NATIVE_PLATFORMS
        and raw.get("inline") is True
        and raw.get("instruction_addr") is not None
        and raw.get("instruction_addr") == lead.get("instruction_addr")
        and raw.get("image_addr") == lead.get("image_addr")
    )


def _is_native(frame: object) -> bool:
    return isinstance(frame, dict) and frame.get("platform") in NATIVE_PLATFORMS


def _usable_images(images: object) -> list[tuple[str, int, int | None]]:
    if not isinstance(images, list):
        return []
    usable = []
    for image in images:
        if not isinstance(image, dict):
            continue
        debug_id, base = image.get("debug_id"), parse_hex(_text(image.get("image_addr")))
        size = image.get("image_size")
        if isinstance(debug_id, str) and debug_id and base is not None:
            usable.append((debug_id, base, size if isinstance(size, int) and not isinstance(size, bool) else None))
    return usable


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _with_image(frame: dict[str, Any], images: Sequence[tuple[str, int, int | None]]) -> dict[str, Any]:
    address = parse_hex(_text(frame.get("instruction_addr")))
    if address is None:
        return frame
    frame_base = parse_hex(_text(frame.get("image_addr")))
    for debug_id, base, size in images:
        # The frame's own image address first, else the image whose range holds the address.
        if (frame_base is not None and frame_base == base) or (size is not None and base <= address < base + size):
            return {**frame, "debug_image": {"debug_id": debug_id, "image_addr": f"0x{base:x}"}}
    return frame


@dataclass(frozen=True)
class NativeFrame:
    apple: bool
    instruction_addr: str | None
    image_addr: str | None
    image_uuid: str | None
    module: str | None
    function: str | None
    filename: str | None
    lineno: int | None
    colno: int | None
    lang: str | None
    inline: bool
    debug_id: str | None  # of the image the normaliser matched
    relative: int | None  # the address's offset in that image
    problem: str | None  # why the frame cannot be looked up, when it cannot
    meta: Meta

    def raw_hash(self) -> str:
        parts: list[bytes] = []
        if self.debug_id is not None and self.relative is not None:
            parts += [utf8(self.debug_id), utf8(f"rel:0x{self.relative:x}")]
        elif self.instruction_addr is not None:
            parts.append(utf8(self.instruction_addr))
        if self.apple:
            parts += [utf8(text) for text in (self.module, self.function, self.image_uuid) if text is not None]
            return sha512_hex(parts)
        parts += [utf8(text) for text in (self.function, self.filename) if text is not None]
        parts += [struct.pack(">I", self.lineno or 0), struct.pack(">I", self.colno or 0)]
        if self.module is not None:
            parts.append(utf8(self.module))
        if self.inline:
            parts.append(b"inline")
        parts.append(b"native")
        return sha512_hex(parts)

    def pass_through(self, raw_id: str) -> ResolvedFrame:
        if self.problem is None and self.lookup() is not None:
            return self.without_symbols(raw_id)
        return self._client_frame(raw_id)

    def _client_frame(self, raw_id: str) -> ResolvedFrame:
        if self.problem is None:
            # Client-resolved frames (no address, or an SDK-expanded inline member) as sent.
            frame = build_frame(
                raw_id=raw_id,
                mangled_name=self.function or "",
                line=self.lineno,
                column=self.colno,
                source=self.filename,
                module=self.module,
                in_app=self._in_app(self.filename),
                resolved_name=self.function,
                lang=self._lang(self.filename),
                resolved=self.function is not None,
                synthetic=self.meta.synthetic,
            )
            return ResolvedFrame(frame, None)
        return ResolvedFrame(self.unresolved(raw_id, self.problem), None)

    def without_symbols(self, raw_id: str) -> ResolvedFrame:
        """The frame when no debug file was uploaded for the image it was matched to."""
        assert self.debug_id is not None
        return ResolvedFrame(self.unresolved(raw_id, native_missing(self.apple, self.debug_id)), None)

    def unresolved(self, raw_id: str, failure: str) -> Frame:
        source = self.filename
        if source is None and self.module is not None:
            source = f"{self.module} +{self.image_addr}" if self.image_addr is not None else self.module
        return build_frame(
            raw_id=raw_id,
            mangled_name=self.function or "",
            line=self.lineno,
            column=self.colno,
            source=source,
            module=self.module,
            in_app=self._in_app(self.filename),
            # The SDK may send the symbol it found in the running process, often mangled.
            resolved_name=demangle(self.function) if self.function else None,
            lang=self._lang(self.filename),
            resolved=False,
            resolve_failure=failure,
            synthetic=self.meta.synthetic,
        )

    def mapped(self, raw_id: str, *, name: str, path: str | None, line: int) -> Frame:
        """One layer (physical or inlined) of what the debug file says is at the address:
        ``name`` as the debug file has it (mangled), shown in full as ``mangled_name`` and by
        its name alone as ``resolved_name``."""
        filename = None if path is None else posixpath.basename(path.replace("\\", "/"))
        return build_frame(
            raw_id=raw_id,
            mangled_name=demangle(name),
            line=line or None,
            column=None,
            source=filename,
            module=self.module,
            in_app=self._in_app(filename if self.apple else path),
            resolved_name=short_name(name),
            lang=self._lang(filename),
            resolved=True,
            synthetic=self.meta.synthetic,
        )

    def lookup(self) -> SymbolLookup | None:
        if self.problem is not None or self.debug_id is None or self.relative is None:
            return None
        # The address is a return address but for the crash site; one byte back lands in the
        # call instruction, whose line is the one that matters (and the crash site's still
        # lies in its function).
        kind = "apple" if self.apple else "native"
        return SymbolLookup(self.debug_id, 0, 0, kind=kind, address=max(self.relative - 1, 0))

    def context(self) -> FrameContext | None:
        return None

    def _in_app(self, path: str | None) -> bool:
        if self.apple:
            system = self.module is not None and self.module.startswith(_APPLE_SYSTEM_MODULES)
            return self.meta.in_app and not system and path != "<compiler-generated>"
        return self.meta.in_app and not (path is not None and _library_path(path))

    def _lang(self, filename: str | None) -> str:
        extension = filename.rsplit(".", 1)[-1] if filename is not None else None
        if self.apple:
            return _APPLE_LANGS.get(extension or "", "swift")
        found = _NATIVE_LANGS.get(extension or "")
        return found if found is not None else (self.lang or "native")


def _library_path(path: str) -> bool:
    normalized = path.replace("\\", "/")
    if any(marker in normalized for marker in _LIBRARY_PATHS):
        return True
    for rest in normalized.split("/rustc/")[1:]:
        segment = rest.split("/", 1)[0]
        if len(segment) >= 7 and all(c in "0123456789abcdefABCDEF" for c in segment):
            return True
    return any(
        normalized.startswith(f"library/{crate}/src/") for crate in ("std", "core", "alloc", "proc_macro", "test")
    )


def parse_native_frame(raw: Mapping[str, object]) -> NativeFrame:
    apple = raw.get("platform") == "apple"
    instruction_addr = get_str(raw, "instruction_addr")
    get_str(raw, "symbol_addr")  # type-checked by cymbal, otherwise unused
    inline = bool(get_bool(raw, "inline", default=False)) if not apple else False
    if not apple:
        get_bool(raw, "client_resolved", default=False)
    image = raw.get("debug_image")
    debug_id = base = None
    if isinstance(image, Mapping):
        debug_id = image.get("debug_id") if isinstance(image.get("debug_id"), str) else None
        base = parse_hex(_text(image.get("image_addr")))
    address = parse_hex(instruction_addr)
    relative = address - base if address is not None and base is not None and address >= base else None
    problem: str | None = None
    if apple or (instruction_addr is not None and not inline):
        if instruction_addr is None:
            problem = "Invalid address format: missing instruction_addr"
        elif address is None:
            problem = f"Invalid address format: {instruction_addr.strip()}"
        elif debug_id is None:
            problem = _NO_IMAGE
        elif relative is None:
            problem = f"Invalid address format: instruction_addr 0x{address:x} < image_addr 0x{base:x}"
    return NativeFrame(
        apple=apple,
        instruction_addr=instruction_addr,
        image_addr=get_str(raw, "image_addr"),
        image_uuid=get_str(raw, "image_uuid") if apple else None,
        module=get_str(raw, "module"),
        function=get_str(raw, "function"),
        filename=get_str(raw, "filename"),
        lineno=get_u32(raw, "lineno"),
        colno=get_u32(raw, "colno"),
        lang=None if apple else get_str(raw, "lang"),
        inline=inline,
        debug_id=debug_id if isinstance(debug_id, str) else None,
        relative=relative,
        problem=problem,
        meta=read_meta(raw),
    )
