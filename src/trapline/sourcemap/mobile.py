"""``trapline hermes | proguard | dsym | symbol-sets``: PostHog's CLI's mobile and native symbol
commands, with its names and flags, over the same upload protocol as ``trapline sourcemap``.

    hermes upload        React Native: Hermes composed source maps, by the chunk id inside them
    hermes clone         copy the chunk id from X.bundle.map into X.bundle.hbc.composed.map
    proguard upload      Android: a ProGuard/R8 mapping.txt, by the --map-id the app reports
    dsym upload          iOS/macOS: the DWARF in .dSYM bundles, by UUID (uppercase)
    symbol-sets upload   native: ELF files with debug info and .dSYM bundles, by debug id

Exit codes as ``trapline sourcemap``: 0 done, 1 a problem the message explains (a refused
file fails the run after the others are uploaded), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from trapline.sourcemap.cli_common import (
    ApiCommand,
    CommandError,
    add_api_arguments,
    add_batch_size_argument,
    add_release_arguments,
    release_from_flags,
    upload_summary,
)
from trapline.sourcemap.client import SymbolSet, upload_symbol_sets
from trapline.sourcemap.config import ApiConfig
from trapline.sourcemap.container import MAX_SIZE, content_hash
from trapline.sourcemap.debugfiles import (
    DebugFileError,
    DebugObject,
    debug_objects,
    dsym_files,
    dwarfdump_available,
    elf_files,
    pack_zip,
    source_paths,
)
from trapline.sourcemap.release import ReleaseSpec
from trapline.symbols.container import Kind, pack

__all__ = [
    "TOOLS",
    "add_dsym_arguments",
    "add_hermes_arguments",
    "add_proguard_arguments",
    "add_symbol_sets_arguments",
    "run",
]

# What PostHog's CLI sends per bulk_start_upload for each kind (mobile-symbols.md §3.2).
HERMES_BATCH_SIZE: Final = 100
PROGUARD_BATCH_SIZE: Final = 50
DEBUG_FILE_BATCH_SIZE: Final = 10
TOOLS: Final = ("hermes", "proguard", "dsym", "symbol-sets")
# Hermes maps name their chunk by one of these, depending on the tool that wrote the id.
CHUNK_ID_KEYS: Final = ("chunk_id", "chunkId", "debugId")
HERMES_OFFSETS_KEY: Final = "x_hermes_function_offsets"
COMPOSED_SUFFIX: Final = ".hbc.composed.map"
BUNDLE_SUFFIXES: Final = (".bundle", ".jsbundle", ".hbc")
# A class line of a ProGuard/R8 mapping: `com.example.Original -> a.b:` at the start of a line.
_PROGUARD_CLASS = re.compile(r"^[^\s#][^\s]* -> [^\s]+:\s*$", re.MULTILINE)
_CHUNK_STEP_HINT = (
    "give it one first (PostHog's Metro plugin or `posthog-cli hermes inject`, then `trapline hermes clone`)"
)


# --- arguments ---------------------------------------------------------------------------------


def add_hermes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(mobile_tool="hermes")
    actions = parser.add_subparsers(dest="mobile_action", required=True)
    upload = actions.add_parser("upload", help="upload Hermes composed source maps by the chunk id inside them")
    where = upload.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--directory", type=Path, metavar="DIR", help="the React Native build output (searched recursively)"
    )
    where.add_argument("--file", type=Path, metavar="MAP", help="upload this one composed map")
    upload.add_argument(
        "--chunk-id", metavar="ID", help="with --file: the map's chunk id, when the map does not hold one"
    )
    _release_arguments(upload)
    _api_arguments(upload, HERMES_BATCH_SIZE)
    clone = actions.add_parser(
        "clone", help="copy chunk_id and release_id from X.bundle.map into X.bundle.hbc.composed.map"
    )
    clone.add_argument("--directory", type=Path, required=True, metavar="DIR", help="the React Native build output")


def add_proguard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(mobile_tool="proguard")
    actions = parser.add_subparsers(dest="mobile_action", required=True)
    upload = actions.add_parser("upload", help="upload a ProGuard/R8 mapping file")
    upload.add_argument("--path", type=Path, required=True, metavar="FILE", help="the mapping.txt file")
    upload.add_argument(
        "--map-id", required=True, metavar="ID", help="the id the app reports for this mapping (used verbatim)"
    )
    _release_arguments(upload)
    _api_arguments(upload, PROGUARD_BATCH_SIZE)


def add_dsym_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(mobile_tool="dsym")
    actions = parser.add_subparsers(dest="mobile_action", required=True)
    upload = actions.add_parser("upload", help="upload the DWARF of .dSYM bundles, one symbol set per architecture")
    upload.add_argument(
        "--directory",
        type=Path,
        required=True,
        metavar="DIR",
        help="a folder holding .dSYM bundles, or one bundle ($DWARF_DSYM_FOLDER_PATH in Xcode)",
    )
    _source_argument(upload)
    _release_arguments(upload)
    _api_arguments(upload, DEBUG_FILE_BATCH_SIZE)


def add_symbol_sets_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(mobile_tool="symbol-sets")
    actions = parser.add_subparsers(dest="mobile_action", required=True)
    upload = actions.add_parser("upload", help="upload ELF files with debug info and .dSYM bundles")
    upload.add_argument("--directory", type=Path, required=True, metavar="DIR", help="searched recursively")
    _source_argument(upload)
    _release_arguments(upload)
    _api_arguments(upload, DEBUG_FILE_BATCH_SIZE)


def _source_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-source",
        action="store_true",
        help="also upload the source files the debug info names, when they are on disk (needs llvm-dwarfdump)",
    )


def _release_arguments(parser: argparse.ArgumentParser) -> None:
    add_release_arguments(parser, name_help="the release's name (default: the git repository's)")
    parser.add_argument("--build", metavar="BUILD", help="the build number, sent as VERSION+BUILD")


def _api_arguments(parser: argparse.ArgumentParser, batch_size: int) -> None:
    add_api_arguments(parser)
    add_batch_size_argument(parser, batch_size, note=", as PostHog's CLI")


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """One symbol set before the release is known: its ref and how to build its container."""

    label: str
    chunk_id: str
    build: Callable[[], bytes]
    release_id: str | None = None  # one the file itself names (a cloned Hermes map)


class _Command(ApiCommand):
    @classmethod
    def tool_name(cls, args: argparse.Namespace) -> str:
        return str(args.mobile_tool)  # set by each add_*_arguments

    @property
    def tool(self) -> str:
        return self.tool_name(self.args)

    def run(self) -> int:
        if self.tool == "hermes" and self.args.mobile_action == "clone":
            return self._hermes_clone()
        spec = self._release_spec()
        config = self.config()  # before any file is read: a missing key fails at once
        if self.tool == "hermes":
            candidates, problems = self._hermes()
        elif self.tool == "proguard":
            candidates, problems = self._proguard()
        else:
            candidates, problems = self._debug_files()
        return self._upload(config, spec, candidates, problems)

    # --- hermes ----------------------------------------------------------------------------

    def _hermes(self) -> tuple[list[_Candidate], int]:
        if self.args.file is not None:
            return self._hermes_file(self.args.file, self.args.chunk_id)
        if self.args.chunk_id is not None:
            raise CommandError("--chunk-id names the chunk of one map: use it with --file")
        directory = self._directory()
        composed = sorted(directory.rglob(f"*{COMPOSED_SUFFIX}"))
        beside = [
            path
            for path in sorted(directory.rglob("*.map"))
            if not path.name.endswith(COMPOSED_SUFFIX)
            and path.with_suffix("").suffix in BUNDLE_SUFFIXES
            and path.with_suffix("").is_file()
        ]
        self.output.step(
            f"Found {len(composed)} composed map(s) and {len(beside)} map(s) next to a bundle in {directory}"
        )
        candidates: list[_Candidate] = []
        seen: dict[str, str] = {}
        problems = 0
        # Composed maps first: after `hermes clone`, X.bundle.map holds the same chunk id, and it
        # is the composed map (with Hermes' function offsets) the server needs.
        for path, required in [(path, True) for path in composed] + [(path, False) for path in beside]:
            try:
                document = _load_json(path)
            except CommandError as exc:
                problems += 1
                self.output.step(f"Failed {path}: {exc}")
                continue
            if HERMES_OFFSETS_KEY not in document:
                if required:
                    problems += 1
                    self.output.step(
                        f"Failed {path}: no {HERMES_OFFSETS_KEY}, so it is not a Hermes composed map "
                        "(compose the Metro and Hermes maps with compose-source-maps)"
                    )
                else:
                    self.output.step(f"Skipped {path}: not a Hermes map (no {HERMES_OFFSETS_KEY})")
                continue
            chunk_id = _chunk_id(document)
            if chunk_id is None:
                self.output.step(f"Skipped {path}: no chunk id ({', '.join(CHUNK_ID_KEYS)}); {_CHUNK_STEP_HINT}")
                continue
            if chunk_id in seen:
                self.output.step(f"Skipped {path}: same chunk as {seen[chunk_id]}")
                continue
            seen[chunk_id] = str(path)
            candidates.append(self._hermes_candidate(path, chunk_id, document))
        return candidates, problems

    def _hermes_file(self, path: Path, chunk_id: str | None) -> tuple[list[_Candidate], int]:
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        document = _load_json(path)
        if HERMES_OFFSETS_KEY not in document:
            raise CommandError(f"{path} has no {HERMES_OFFSETS_KEY}, so it is not a Hermes composed map")
        chunk_id = chunk_id or _chunk_id(document)
        if not chunk_id:
            raise CommandError(f"{path} has no chunk id: pass --chunk-id, or {_CHUNK_STEP_HINT}")
        return [self._hermes_candidate(path, chunk_id, document)], 0

    def _hermes_candidate(self, path: Path, chunk_id: str, document: dict[str, Any]) -> _Candidate:
        release_id = document.get("release_id")
        return _Candidate(
            label=str(path),
            chunk_id=chunk_id,
            # The map as written: the server reads the same JSON the CLI would have sent.
            build=lambda: pack(Kind.HERMES_MAP, path.read_bytes()),
            release_id=release_id if isinstance(release_id, str) and release_id else None,
        )

    def _hermes_clone(self) -> int:
        directory = self._directory()
        composed = sorted(directory.rglob(f"*{COMPOSED_SUFFIX}"))
        if not composed:
            raise CommandError(f"no *{COMPOSED_SUFFIX} file in {directory}")
        self.output.step(f"Found {len(composed)} composed map(s) in {directory}")
        cloned = already = failed = 0
        for path in composed:
            source = path.with_name(path.name.removesuffix(COMPOSED_SUFFIX) + ".map")
            try:
                if not source.is_file():
                    raise CommandError(f"no {source.name} next to it to take the chunk id from")
                origin = _load_json(source)
                chunk_id = _chunk_id(origin)
                if chunk_id is None:
                    raise CommandError(f"{source.name} has no chunk id; {_CHUNK_STEP_HINT}")
                document = _load_json(path)
                copied: dict[str, Any] = {"chunk_id": chunk_id}
                if isinstance(origin.get("release_id"), str):
                    copied["release_id"] = origin["release_id"]
                if all(document.get(key) == value for key, value in copied.items()):
                    already += 1
                    self.output.step(f"Already cloned {path} (chunk {chunk_id})")
                    continue
                document.update(copied)
                _replace(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())
            except (CommandError, OSError) as exc:
                failed += 1
                self.output.step(f"Failed {path}: {exc}")
                continue
            cloned += 1
            self.output.step(f"Cloned {path} (chunk {chunk_id})")
        self.output.step(f"Cloned {cloned}, already cloned {already}, failed {failed}")
        return 1 if failed else 0

    # --- proguard --------------------------------------------------------------------------

    def _proguard(self) -> tuple[list[_Candidate], int]:
        path: Path = self.args.path
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        map_id = self.args.map_id.strip()
        if not map_id:
            raise CommandError("--map-id is empty")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not a ProGuard/R8 mapping: not UTF-8 text ({exc.reason})") from None
        if not _PROGUARD_CLASS.search(text):
            raise CommandError(f"{path} is not a ProGuard/R8 mapping: no class line like `com.example.Name -> a.b:`")
        self.output.step(f"Found the ProGuard mapping {path} (map id {map_id})")
        return [_Candidate(str(path), map_id, lambda: pack(Kind.PROGUARD_MAPPING, path.read_bytes()))], 0

    # --- dsym and symbol-sets --------------------------------------------------------------

    def _debug_files(self) -> tuple[list[_Candidate], int]:
        directory = self._directory()
        dsyms = dsym_files(directory)
        elves = elf_files(directory) if self.tool == "symbol-sets" else []
        if self.tool == "dsym":
            self.output.step(f"Found {len(dsyms)} debug file(s) in .dSYM bundles in {directory}")
        else:
            self.output.step(f"Found {len(elves)} ELF file(s) and {len(dsyms)} in .dSYM bundles in {directory}")
        include_source = bool(self.args.include_source)
        if include_source and not dwarfdump_available():
            self.output.step("llvm-dwarfdump is not installed: uploading without sources")
            include_source = False
        candidates: list[_Candidate] = []
        seen: dict[str, str] = {}
        problems = 0
        for path in dsyms + elves:
            try:
                objects = debug_objects(path)
            except (DebugFileError, OSError) as exc:
                problems += 1
                self.output.step(f"Failed {path}: {exc}")
                continue
            sources = source_paths(path) if include_source else None
            for obj in objects:
                candidate = self._debug_candidate(path, obj, sources)
                if candidate.chunk_id in seen:
                    self.output.step(f"Skipped {candidate.label}: same debug id as {seen[candidate.chunk_id]}")
                    continue
                seen[candidate.chunk_id] = candidate.label
                candidates.append(candidate)
        return candidates, problems

    def _debug_candidate(self, path: Path, obj: DebugObject, sources: dict[str, Path] | None) -> _Candidate:
        # The kind and the case of the ref follow the object, not the command: iOS SDKs report
        # Mach-O UUIDs uppercase (and `posthog-cli dsym upload` uploads them so), while ELF ids
        # are compared as symbolic prints them on both sides.
        if obj.file_format == "macho":
            kind, ref = Kind.APPLE_DSYM, obj.debug_id.upper()
        else:
            kind, ref = Kind.ELF_DEBUG_INFO, obj.debug_id.lower()
        part = obj.slice
        return _Candidate(
            label=f"{path} ({obj.arch}, {ref})",
            chunk_id=ref,
            build=lambda: pack(kind, pack_zip(part.read(), sources)),
        )

    # --- shared ----------------------------------------------------------------------------

    def _upload(self, config: ApiConfig, spec: ReleaseSpec | None, candidates: list[_Candidate], problems: int) -> int:
        sets: list[SymbolSet] = []
        for candidate in candidates:
            try:
                container = candidate.build()
            except (OSError, ValueError) as exc:
                problems += 1
                self.output.step(f"Failed {candidate.label}: {exc}")
                continue
            if len(container) > MAX_SIZE:
                problems += 1
                self.output.step(
                    f"Failed {candidate.label}: {len(container)} bytes packed, over the {MAX_SIZE} bytes "
                    "a symbol set may have"
                )
                continue
            sets.append(
                SymbolSet(
                    chunk_id=candidate.chunk_id,
                    release_id=candidate.release_id,
                    content_hash=content_hash(container),
                    content_length=len(container),
                    label=candidate.label,
                    # Built again when sent (zstd and the ZIP are deterministic) rather than
                    # kept: debug files can be hundreds of megabytes each.
                    read=candidate.build,
                )
            )
        if not sets:
            raise CommandError(f"nothing to upload{' (see the failures above)' if problems else ''}")
        with self.open_api(config) as api:
            if spec is not None:
                release_id = self.announce_release(api, spec)
                sets = [_with_release(symbol_set, release_id) for symbol_set in sets]
            report = upload_symbol_sets(api, sets, batch_size=self.args.batch_size, progress=self.output.step)
        self.output.step(upload_summary(report, problems))
        return 1 if report.failed or problems else 0

    def _directory(self) -> Path:
        directory: Path = self.args.directory
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        return directory

    def _release_spec(self) -> ReleaseSpec | None:
        name, version, build = self.args.release_name, self.args.release_version, self.args.build
        if build and not version:
            raise CommandError("--build needs --release-version (the release is sent as VERSION+BUILD)")
        if version and build:
            version = f"{version}+{build}"  # how PostHog's CLI packs the two
        where = self.args.path.parent if self.tool == "proguard" else (self.args.directory or self.args.file.parent)
        return release_from_flags(name, version, where)


# Printing, the exit codes and the errors that end a run are ApiCommand's, shared with `command`.
run = _Command.execute


def _with_release(symbol_set: SymbolSet, release_id: str) -> SymbolSet:
    if symbol_set.release_id is not None:  # a map that names its own release keeps it
        return symbol_set
    return SymbolSet(
        chunk_id=symbol_set.chunk_id,
        release_id=release_id,
        content_hash=symbol_set.content_hash,
        content_length=symbol_set.content_length,
        label=symbol_set.label,
        read=symbol_set.read,
    )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CommandError("not a JSON object")
    return document


def _chunk_id(document: dict[str, Any]) -> str | None:
    for key in CHUNK_ID_KEYS:
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a half-written map would break the build)."""
    temporary = path.with_name(f".{path.name}.trapline-tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
