"""Native debug files for ``trapline dsym upload`` and ``trapline symbol-sets upload``: finding
them, reading their debug ids, and packing each object into the ZIP PostHog's CLI uploads.

One ZIP per object (per architecture of a fat Mach-O): ``dwarf`` holds that object's bytes and,
when sources are included, ``__source/manifest.json`` maps each absolute path the DWARF names
to the copy stored under ``__source/``. ``trapline.symbols.native`` reads the same layout.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from symbolic.debuginfo import Archive

__all__ = [
    "DebugFileError",
    "DebugObject",
    "Slice",
    "debug_objects",
    "dsym_files",
    "elf_files",
    "is_elf",
    "pack_zip",
    "source_paths",
]

ELF_MAGIC: Final = b"\x7fELF"
_THIN_MACHO: Final = frozenset({b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"})
_FAT: Final = b"\xca\xfe\xba\xbe"
_FAT_64: Final = b"\xca\xfe\xba\xbf"
# 0xcafebabe also starts Java class files, whose next u32 is a version of at least 45:
# a fat Mach-O has far fewer architectures than that.
_MAX_FAT_ARCHS: Final = 44
# Fixed ZIP timestamps: the same object gives the same bytes, so its content hash is stable
# across builds and the server can tell a re-upload apart from a change.
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)
_DWARFDUMP: Final = "llvm-dwarfdump"
_DWARFDUMP_TIMEOUT_SECONDS: Final = 120


class DebugFileError(Exception):
    """A file cannot be uploaded as a debug file; the message says why."""


@dataclass(frozen=True)
class Slice:
    """Where one object's bytes are: the whole file, or one architecture of a fat Mach-O."""

    path: Path
    offset: int
    size: int

    def read(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.size)
        if len(data) != self.size:
            raise OSError(f"{self.path} changed while it was read")
        return data


@dataclass(frozen=True)
class DebugObject:
    debug_id: str  # as symbolic prints it: lowercase
    arch: str
    file_format: str  # "elf", "macho", ...
    slice: Slice


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def dsym_files(directory: Path) -> list[Path]:
    """The DWARF files of every ``.dSYM`` bundle in ``directory`` (which may be one itself)."""
    bundles = [directory] if directory.suffix == ".dSYM" else []
    bundles += sorted(path for path in directory.rglob("*.dSYM") if path.is_dir())
    found: list[Path] = []
    for bundle in bundles:
        dwarf = bundle / "Contents" / "Resources" / "DWARF"
        if dwarf.is_dir():
            found += sorted(path for path in dwarf.iterdir() if path.is_file() and not path.name.startswith("."))
    return found


def elf_files(directory: Path) -> list[Path]:
    """Regular files starting with the ELF magic, outside ``.dSYM`` bundles (found apart)."""
    found: list[Path] = []
    for root, folders, files in os.walk(directory):
        folders[:] = sorted(folder for folder in folders if not folder.endswith(".dSYM"))
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink() and is_elf(path):
                found.append(path)
    return found


def debug_objects(path: Path) -> list[DebugObject]:
    """Every object in ``path`` that can be uploaded; raises ``DebugFileError`` saying why not.

    ELF files need a GNU build id: without one the SDK derives the debug id from the text
    section, which the server cannot reproduce, so a symbol set under the file's debug id
    would never match an event (PostHog's CLI refuses these for the same reason).
    """
    objects: list[DebugObject] = []
    for part in _slices(path):
        data = part.read()
        try:
            archive = Archive.from_bytes(data)
            found = list(archive.iter_objects())
        except Exception as exc:  # symbolic raises its own exception tree
            raise DebugFileError(f"not a debug file symbolic can read ({exc or type(exc).__name__})") from None
        if not found:
            raise DebugFileError("holds no object")
        if len(found) > 1:
            # _slices splits fat Mach-O files; anything else holding several objects is not
            # something the server's reader (one object per ZIP) would pick correctly.
            raise DebugFileError(f"holds {len(found)} objects in one slice; upload them one per file")
        obj = found[0]
        if obj.file_format == "elf" and not obj.code_id:
            raise DebugFileError(
                "has no GNU build id, so the SDK could not reproduce its debug id (link with -Wl,--build-id)"
            )
        if "debug" not in obj.features:
            raise DebugFileError("has no debug information (build with -g, and upload the file before it is stripped)")
        objects.append(DebugObject(str(obj.debug_id), str(obj.arch), str(obj.file_format), part))
    return objects


def _slices(path: Path) -> list[Slice]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        magic = head[:4]
        if magic not in (_FAT, _FAT_64) or len(head) < 8:
            return [Slice(path, 0, size)]
        (count,) = struct.unpack(">I", head[4:8])
        if not 0 < count <= _MAX_FAT_ARCHS:
            return [Slice(path, 0, size)]
        entry = struct.Struct(">iiIII") if magic == _FAT else struct.Struct(">iiQQII")
        table = handle.read(entry.size * count)
    if len(table) != entry.size * count:
        raise DebugFileError("its fat Mach-O header is cut short")
    slices: list[Slice] = []
    for index in range(count):
        fields = entry.unpack_from(table, index * entry.size)
        offset, length = int(fields[2]), int(fields[3])
        if offset + length > size:
            raise DebugFileError(f"architecture {index} of its fat Mach-O header lies past the end of the file")
        slices.append(Slice(path, offset, length))
    return slices


def pack_zip(dwarf: bytes, sources: dict[str, Path] | None = None) -> bytes:
    """The ZIP for one object: ``dwarf`` and, if given, the sources and their manifest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _write(archive, "dwarf", dwarf)
        if sources is not None:
            manifest: dict[str, str] = {}
            for number, (dwarf_path, disk_path) in enumerate(sorted(sources.items())):
                name = f"__source/{number}/{posixpath.basename(dwarf_path.replace(chr(92), '/'))}"
                _write(archive, name, disk_path.read_bytes())
                manifest[dwarf_path] = name
            body = json.dumps({"version": 1, "files": manifest}, indent=None, sort_keys=True).encode()
            _write(archive, "__source/manifest.json", body)
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def dwarfdump_available() -> bool:
    return shutil.which(_DWARFDUMP) is not None


def source_paths(path: Path) -> dict[str, Path] | None:
    """The source files ``path``'s DWARF names that exist on disk, by the path the DWARF uses;
    None when llvm-dwarfdump is not installed (symbolic 13 cannot list a file's sources)."""
    tool = shutil.which(_DWARFDUMP)
    if tool is None:
        return None
    # --show-sources (LLVM 15+) prints exactly the list; older versions only have the line
    # tables, which name each file by directory index and name.
    listed = _run(tool, "--show-sources", str(path))
    if listed is not None:
        names = listed.splitlines()
    else:
        compile_dirs = _COMP_DIR.findall(_run(tool, "--debug-info", str(path)) or "")
        names = list(_line_table_files(_run(tool, "--debug-line", str(path)), compile_dirs))
    found: dict[str, Path] = {}
    for name in names:
        name = name.strip()
        if not name or (not posixpath.isabs(name) and not re.match(r"^[A-Za-z]:[\\/]", name)):
            continue  # a relative name cannot be found on disk from here
        disk = Path(name)
        if disk.is_file():
            found[name] = disk
    return found


def _run(tool: str, *args: str) -> str | None:
    try:
        result = subprocess.run(
            [tool, *args], capture_output=True, text=True, errors="replace", timeout=_DWARFDUMP_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


_INCLUDE_DIR = re.compile(r'^include_directories\[\s*(\d+)\]\s*=\s*"(.*)"\s*$')
_FILE_START = re.compile(r"^file_names\[\s*\d+\]:")
_FILE_NAME = re.compile(r'^\s*name:\s*"(.*)"\s*$')
_FILE_DIR = re.compile(r"^\s*dir_index:\s*(\d+)\s*$")
_COMP_DIR = re.compile(r'DW_AT_comp_dir\s*\("(.*)"\)')


def _line_table_files(output: str | None, compile_dirs: list[str]) -> Iterator[str]:
    """Full paths from ``llvm-dwarfdump --debug-line``: each file name joined to its
    include directory. DWARF 4 tables leave out directory 0, the unit's compile directory:
    it is taken from ``compile_dirs`` (the units' DW_AT_comp_dir, in the same order)."""
    if not output:
        return
    directories: dict[int, str] = {}
    name: str | None = None
    table = -1
    for line in output.splitlines():
        if line.startswith("Line table prologue:"):
            table += 1
            directories = {0: compile_dirs[table]} if table < len(compile_dirs) else {}
        elif match := _INCLUDE_DIR.match(line):
            directories[int(match.group(1))] = match.group(2)
        elif _FILE_START.match(line):
            name = None
        elif match := _FILE_NAME.match(line):
            name = match.group(1)
        elif (match := _FILE_DIR.match(line)) and name is not None:
            directory = directories.get(int(match.group(1)))
            yield name if posixpath.isabs(name) or directory is None else posixpath.join(directory, name)
            name = None
