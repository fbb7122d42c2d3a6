"""Native debug files (ELF with DWARF, Apple dSYM): instruction addresses back to functions,
files and lines, inlined calls included.

PostHog's CLI uploads a ZIP per debug id: the single-architecture debug file as ``dwarf``,
and optionally the sources it names under ``__source/`` with a ``__source/manifest.json``
mapping each absolute path the DWARF uses to its place in the ZIP. Older CLIs zipped a whole
``.dSYM`` bundle instead (``…/Contents/Resources/DWARF/<name>``); that is read too.

The debug file is turned into a symcache once (the expensive part) and then answers lookups
of addresses relative to the image's load address.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Any

import orjson
from symbolic.debuginfo import Archive

from trapline.symbols.container import MAX_UNPACKED

__all__ = ["DebugZip", "NativeSymbols", "SymbolInfo", "open_debug_zip"]


@dataclass(frozen=True)
class SymbolInfo:
    name: str  # the function's name as the debug file has it
    path: str | None  # the source file's full path
    line: int  # 0 when unknown

    @property
    def filename(self) -> str | None:
        return None if self.path is None else posixpath.basename(self.path.replace("\\", "/"))


class NativeSymbols:
    def __init__(self, symcache: object, sources: dict[str, str], size: int) -> None:
        self._symcache = symcache
        self._sources = sources
        self.size = size

    @classmethod
    def from_payload(cls, data: bytes, debug_id: str, *, what: str) -> NativeSymbols | str:
        """Read an uploaded ZIP for ``debug_id``, or say why it is unusable (stored).
        ``what`` names the kind in messages ("dSYM", "debug symbols")."""
        opened = open_debug_zip(data, what="ZIP")
        if isinstance(opened, str):
            return f"Failed to parse {what}: {opened}"
        try:
            sources = _sources(opened.zip)
        except (zipfile.BadZipFile, KeyError, ValueError, orjson.JSONDecodeError) as exc:
            return f"Failed to parse {what}: {exc}"
        wanted = debug_id.lower()
        # A fat Mach-O holds one object per architecture: the one with the frame's debug id.
        chosen = next((obj for obj in opened.objects if str(obj.debug_id).lower() == wanted), opened.objects[0])
        try:
            # The symcache owns what it is built into; `opened` (bytes, archive) must outlive this call.
            symcache = chosen.make_symcache()
        except Exception as exc:
            return f"Failed to parse {what}: {exc or type(exc).__name__}"
        return cls(symcache, sources, len(data))

    def lookup(self, address: int) -> list[SymbolInfo]:
        """The functions at a relative ``address``, innermost (inlined) first; [] if none."""
        found = self._symcache.lookup(address)  # type: ignore[attr-defined]
        return [SymbolInfo(str(match.symbol), match.full_path, int(match.line or 0)) for match in found]

    def source(self, path: str) -> str | None:
        """The uploaded text of the source file the DWARF calls ``path``, if it was bundled.

        An inlined function's file can be named relative to the compilation unit it was
        inlined into (Swift's whole-module builds do this) while the bundle names it by its
        own absolute path: failing the exact path, a file with the same base name is used if
        it is the only one."""
        found = self._sources.get(path)
        if found is not None:
            return found
        base = posixpath.basename(path.replace("\\", "/"))
        candidates = [text for name, text in self._sources.items() if name.endswith("/" + base) or name == base]
        return candidates[0] if len(candidates) == 1 else None


@dataclass(frozen=True)
class DebugZip:
    """An uploaded debug-file ZIP opened with symbolic. symbolic's ``Archive.from_bytes``
    borrows the bytes it is given without keeping them alive, and its objects borrow the
    archive: all three are held here together, or reading an object reads freed memory (seen
    as lookups that lost their file, line or inline layers now and then)."""

    zip: zipfile.ZipFile
    binary: bytes  # the debug file's bytes, which `archive` points into
    archive: Any
    objects: list[Any]  # one per architecture


def open_debug_zip(data: bytes, *, what: str) -> DebugZip | str:
    """The ZIP of an uploaded debug file and the objects (one per architecture) of the debug
    file inside it, or why there are none; ``what`` names the ZIP in the reason. Used both to
    check an upload and to read it for resolution, so both accept the same files."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
            return f"the {what} unpacks to more than {MAX_UNPACKED} bytes"
        binary = _debug_file(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, EOFError) as exc:
        return f"the {what} is not a readable ZIP: {exc}"
    if binary is None:
        return f"the {what} holds no debug file ('dwarf')"
    try:
        opened = Archive.from_bytes(binary)
        objects = list(opened.iter_objects())
    except Exception as exc:  # symbolic raises its own exception tree
        return f"the {what}'s debug file cannot be read: {exc or type(exc).__name__}"
    if not objects:
        return f"the {what}'s debug file holds no object"
    return DebugZip(archive, binary, opened, objects)


def _debug_file(archive: zipfile.ZipFile) -> bytes | None:
    names = archive.namelist()
    if "dwarf" in names:
        return archive.read("dwarf")
    for name in names:  # an older CLI's whole .dSYM bundle
        if "/Contents/Resources/DWARF/" in name and not name.endswith("/"):
            return archive.read(name)
    return None


def _sources(archive: zipfile.ZipFile) -> dict[str, str]:
    if "__source/manifest.json" not in archive.namelist():
        return {}
    manifest = orjson.loads(archive.read("__source/manifest.json"))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ValueError("__source/manifest.json has no 'files' object")
    sources: dict[str, str] = {}
    for dwarf_path, zip_path in files.items():
        if isinstance(zip_path, str) and zip_path in archive.namelist():
            sources[str(dwarf_path)] = archive.read(zip_path).decode("utf-8", errors="replace")
    return sources
