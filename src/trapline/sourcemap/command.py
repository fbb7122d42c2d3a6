"""``trapline sourcemap inject | upload | process``: flags, progress lines and exit codes.

Exit codes: 0 done (also when everything was already injected or uploaded), 1 a problem the
message explains (missing key, invalid key, unreachable host, nothing to upload, a file that
failed), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import httpx

from trapline.sourcemap import maps
from trapline.sourcemap.cli_common import (
    ApiCommand,
    CommandError,
    Output,
    add_api_arguments,
    add_batch_size_argument,
    add_release_arguments,
    release_from_flags,
    upload_summary,
)
from trapline.sourcemap.client import Api, SymbolSet, UploadReport, upload_symbol_sets
from trapline.sourcemap.container import MAX_SIZE, content_hash, source_and_map
from trapline.sourcemap.discover import Candidate, discover
from trapline.sourcemap.inject import (
    ReleaseMode,
    adopted_debug_id,
    chunk_id_comment,
    content_chunk_id,
    inject,
    random_chunk_id,
    release_neutral,
)
from trapline.sourcemap.mappings import MappingsError
from trapline.sourcemap.release import ReleaseSpec

__all__ = ["add_arguments", "main", "run"]

RELEASE_MODE_VARIABLE = "POSTHOG_RELEASE_MODE"
DEFAULT_BATCH_SIZE = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``inject``, ``upload`` and ``process`` below ``parser``."""
    actions = parser.add_subparsers(dest="sourcemap_command", required=True)
    inject_cmd = actions.add_parser(
        "inject", help="give each JavaScript file with a source map a chunk id (file and map are rewritten)"
    )
    upload_cmd = actions.add_parser("upload", help="upload the injected files and their maps as symbol sets")
    process_cmd = actions.add_parser("process", help="inject, then upload")
    for sub in (inject_cmd, upload_cmd, process_cmd):
        _common_arguments(sub)
    for sub in (inject_cmd, process_cmd):
        sub.add_argument(
            "--release-mode",
            choices=[mode.value for mode in ReleaseMode],
            help=f"event (default): the release goes into the code and onto events; symbol-set: into the map "
            f"({RELEASE_MODE_VARIABLE})",
        )
    for sub in (upload_cmd, process_cmd):
        sub.add_argument("--delete-after", action="store_true", help="delete the .map files once they are uploaded")
        add_batch_size_argument(sub, DEFAULT_BATCH_SIZE)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--directory", type=Path, required=True, metavar="DIR", help="the build output folder (searched recursively)"
    )
    parser.add_argument(
        "--ignore", action="extend", nargs="+", default=[], metavar="GLOB", help="skip files or folders matching GLOB"
    )
    parser.add_argument(
        "--public-path-prefix",
        metavar="PREFIX",
        help="strip this from sourceMappingURL values before looking for the map on disk",
    )
    add_release_arguments(parser, name_help="the release's project name (default: the git repository's name)")
    add_api_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trapline.sourcemap``: the same command without the server's settings."""
    parser = argparse.ArgumentParser(prog="trapline sourcemap", description="Upload JavaScript source maps.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


class _Command(ApiCommand):
    def __init__(
        self,
        args: argparse.Namespace,
        env: Mapping[str, str],
        output: Output,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        super().__init__(args, env, output, transport, sleep)
        self.directory: Path = args.directory
        self.action: str = args.sourcemap_command
        self.spec: ReleaseSpec | None = None
        self.api: Api | None = None
        self._release_id: str | None = None  # looked up once, when first needed

    @classmethod
    def tool_name(cls, args: argparse.Namespace) -> str:
        return "sourcemap"

    def run(self) -> int:
        if not self.directory.is_dir():
            raise CommandError(f"{self.directory} is not a directory")
        self.spec = self._release_spec()
        # Checked before any file is rewritten, so that `process` fails before `inject` runs.
        if self.action != "inject" or self.spec:
            self.api = self.open_api(self.config())
        try:
            code = 0
            if self.action in ("inject", "process"):
                code = self._inject()
            if self.action in ("upload", "process"):
                code = max(code, self._upload())
            return code
        finally:
            if self.api:
                self.api.close()

    # --- inject ----------------------------------------------------------------------------

    def _inject(self) -> int:
        mode = self._release_mode()
        release_id = self.release_id()
        candidates = self._discover()
        with_maps = [candidate for candidate in candidates if candidate.source_map]
        self.output.step(
            f"Found {len(candidates)} JavaScript file(s) in {self.directory}, {len(with_maps)} with a source map"
        )
        for candidate in candidates:
            if candidate.source_map is None:
                self.output.step(f"Skipped {candidate.source}: {candidate.note}")
        if not with_maps:
            raise CommandError(f"no JavaScript file with a source map in {self.directory}")

        injected = already = failed = 0
        claimed: dict[Path, Path] = {}
        for candidate in with_maps:
            assert candidate.source_map is not None
            source = candidate.source.read_bytes()
            existing = chunk_id_comment(source)
            if existing is not None:
                already += 1
                self.output.step(f"Already injected {candidate.source} (chunk {existing})")
                continue
            owner = claimed.setdefault(candidate.source_map.resolve(), candidate.source)
            if owner != candidate.source:
                failed += 1
                self.output.step(f"Failed {candidate.source}: its map {candidate.source_map} is also {owner}'s")
                continue
            try:
                chunk_id = self._inject_file(candidate.source, source, candidate.source_map, mode, release_id)
            except (maps.SourceMapError, MappingsError, OSError) as exc:
                failed += 1
                self.output.step(f"Failed {candidate.source}: {exc}")
                continue
            injected += 1
            self.output.step(f"Injected {candidate.source} (chunk {chunk_id})")
        self.output.step(f"Injected {injected}, already injected {already}, failed {failed}")
        return 1 if failed else 0

    def _inject_file(self, path: Path, source: bytes, map_path: Path, mode: ReleaseMode, release_id: str | None) -> str:
        document = maps.load(map_path.read_bytes())
        if "chunk_id" in document:
            # The map was rewritten but its file was not (an interrupted run): shifting the map
            # again would break it, so only a rebuild can fix this file.
            raise maps.SourceMapError(f"{map_path} already has a chunk_id but the file has no chunkId comment: rebuild")
        if mode is ReleaseMode.SYMBOL_SET:
            chunk_id = random_chunk_id()
        else:
            chunk_id = adopted_debug_id(document, source) or content_chunk_id(source)
        result = inject(source, document, chunk_id, release_id=release_id, mode=mode)
        # The map first: if the file's write never happens, the next run reports it (above)
        # instead of silently shifting the map a second time.
        _replace(map_path, maps.dump(result.source_map))
        _replace(path, result.source)
        return chunk_id

    # --- upload ----------------------------------------------------------------------------

    def _upload(self) -> int:
        assert self.api is not None
        candidates = self._discover()
        sets, problems = self._symbol_sets(candidates)
        if not sets:
            raise CommandError(
                f"nothing to upload: no injected JavaScript file with a source map in {self.directory} "
                "(run `trapline sourcemap inject` first)"
            )
        report = upload_symbol_sets(self.api, sets, batch_size=self.args.batch_size, progress=self.output.step)
        self.output.step(upload_summary(report, problems))
        if report.failed or problems:
            return 1
        if self.args.delete_after:
            self._delete_maps(report, candidates)
        return 0

    def _symbol_sets(self, candidates: list[Candidate]) -> tuple[list[SymbolSet], int]:
        """The uploadable sets, and how many injected files could not be made into one."""
        injected: list[tuple[Candidate, bytes, str]] = []
        skipped: list[str] = []
        for candidate in candidates:
            if candidate.source_map is None:
                skipped.append(f"Skipped {candidate.source}: {candidate.note}")
                continue
            source = candidate.source.read_bytes()
            chunk_id = chunk_id_comment(source)
            if chunk_id is None:
                skipped.append(f"Skipped {candidate.source}: not injected")
            else:
                injected.append((candidate, source, chunk_id))
        found = f"Found {len(candidates)} JavaScript file(s) in {self.directory}"
        self.output.step(f"{found}, {len(injected)} injected with a source map")
        for line in skipped:
            self.output.step(line)

        sets: list[SymbolSet] = []
        seen: dict[str, Path] = {}
        problems = 0
        for candidate, source, chunk_id in injected:
            assert candidate.source_map is not None
            if chunk_id in seen:  # identical files get identical ids; the server takes each once
                self.output.step(f"Skipped {candidate.source}: same chunk as {seen[chunk_id]}")
                continue
            try:
                symbol_set = self._symbol_set(candidate.source, source, candidate.source_map, chunk_id)
            except (maps.SourceMapError, OSError, CommandError) as exc:
                problems += 1
                self.output.step(f"Failed {candidate.source}: {exc}")
                continue
            seen[chunk_id] = candidate.source
            sets.append(symbol_set)
        return sets, problems

    def _symbol_set(self, path: Path, source: bytes, map_path: Path, chunk_id: str) -> SymbolSet:
        map_bytes = map_path.read_bytes()
        document = maps.load(map_bytes)
        container = source_and_map(source, map_bytes)
        if len(container) > MAX_SIZE:
            raise CommandError(f"{len(container)} bytes with its map, over the {MAX_SIZE} bytes a symbol set may have")
        release_id = document.get("release_id") if isinstance(document.get("release_id"), str) else None
        neutral = release_neutral(source)
        # A file whose snippet names the release (event mode) is left release-less on purpose:
        # its chunk id is the same in every release that ships it.
        if release_id is None and neutral == source:
            release_id = self.release_id()
        return SymbolSet(
            chunk_id=chunk_id,
            release_id=release_id,
            content_hash=content_hash(source_and_map(neutral, map_bytes)),
            content_length=len(container),
            label=str(path),
            read=partial(_container, path, map_path),
        )

    def _delete_maps(self, report: UploadReport, candidates: list[Candidate]) -> None:
        done = {symbol_set.label for symbol_set in report.uploaded + report.present}
        deleted = 0
        for candidate in candidates:
            if candidate.source_map is not None and str(candidate.source) in done and candidate.source_map.exists():
                candidate.source_map.unlink()
                deleted += 1
        self.output.step(f"Deleted {deleted} source map(s)")

    # --- shared ----------------------------------------------------------------------------

    def release_id(self) -> str | None:
        """The release's id on the server, looked up (or created) the first time it is needed."""
        if self.spec is None or self.api is None:
            return None
        if self._release_id is None:
            self._release_id = self.announce_release(self.api, self.spec)
        return self._release_id

    def _discover(self) -> list[Candidate]:
        return discover(self.directory, ignore=self.args.ignore, public_path_prefix=self.args.public_path_prefix)

    def _release_spec(self) -> ReleaseSpec | None:
        return release_from_flags(self.args.release_name, self.args.release_version, self.directory)

    def _release_mode(self) -> ReleaseMode:
        value = self.args.release_mode or self.env.get(RELEASE_MODE_VARIABLE) or ReleaseMode.EVENT.value
        try:
            return ReleaseMode(value)
        except ValueError:
            raise CommandError(f"{RELEASE_MODE_VARIABLE}={value!r} is not event or symbol-set") from None


# Printing, the exit codes and the errors that end a run are ApiCommand's, shared with `mobile`.
run = _Command.execute


def _container(path: Path, map_path: Path) -> bytes:
    return source_and_map(path.read_bytes(), map_path.read_bytes())


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, keeping its permissions."""
    temporary = path.with_name(f".{path.name}.trapline-tmp")
    try:
        temporary.write_bytes(data)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
