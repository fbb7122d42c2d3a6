"""Finding a build's JavaScript files and each one's source map."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

__all__ = ["JAVASCRIPT_SUFFIXES", "Candidate", "discover", "javascript_files", "locate_map", "source_mapping_url"]

JAVASCRIPT_SUFFIXES = frozenset({".js", ".mjs", ".cjs"})

# At the end of a line, so that the text inside a string literal ("//# sourceMappingURL="+u)
# is not taken for the comment; quotes can't be part of the URL for the same reason.
_MAPPING_URL = re.compile(rb"//[#@][ \t]*sourceMappingURL=([^\s'\"`]+)[ \t]*\r?$", re.MULTILINE)


@dataclass(frozen=True)
class Candidate:
    """A JavaScript file and its map, or the reason it has none."""

    source: Path
    source_map: Path | None
    note: str | None = None


def discover(directory: Path, *, ignore: Sequence[str] = (), public_path_prefix: str | None = None) -> list[Candidate]:
    """Every JavaScript file under ``directory`` (sorted), each with its map if one is found."""
    candidates = []
    for path in javascript_files(directory, ignore):
        source_map, note = locate_map(path, path.read_bytes(), directory, public_path_prefix)
        candidates.append(Candidate(path, source_map, note))
    return candidates


def javascript_files(directory: Path, ignore: Sequence[str] = ()) -> list[Path]:
    found: list[Path] = []
    for root, folders, files in os.walk(directory):
        here = Path(root)
        folders[:] = sorted(name for name in folders if not _ignored(here / name, directory, ignore))
        for name in sorted(files):
            path = here / name
            if path.suffix in JAVASCRIPT_SUFFIXES and not _ignored(path, directory, ignore) and path.is_file():
                found.append(path)
    return sorted(found, key=lambda path: path.relative_to(directory).as_posix())


def source_mapping_url(source: bytes) -> str | None:
    """The URL of the last ``//# sourceMappingURL=`` (or ``//@``) comment, as written."""
    url = None
    for match in _MAPPING_URL.finditer(source):
        url = match.group(1)
    return url.decode("utf-8", errors="replace") if url is not None else None


def locate_map(
    path: Path, source: bytes, directory: Path, public_path_prefix: str | None = None
) -> tuple[Path | None, str | None]:
    """The map of the file at ``path``, or None and why not.

    The comment's URL wins; ``<file>.map`` beside the file is the fallback, as in PostHog's CLI.
    """
    url = source_mapping_url(source)
    if url is not None and url.startswith("data:"):
        return None, "its source map is inline (a data: URL), which cannot be uploaded: emit .map files"
    if url is not None:
        for candidate in _map_paths(url, path, directory, public_path_prefix):
            if candidate.is_file():
                return candidate, None
    beside = path.with_name(path.name + ".map")
    if beside.is_file():
        return beside, None
    if url is not None:
        return None, f"its source map {url} was not found"
    return None, "no source map"


def _map_paths(url: str, path: Path, directory: Path, prefix: str | None) -> list[Path]:
    """Where the map named by ``url`` may be on disk, most likely first."""
    if prefix and url.startswith(prefix):
        url = url[len(prefix) :]
    elif "://" in url or url.startswith("//"):
        return []  # an absolute URL elsewhere: only --public-path-prefix makes it local
    relative = unquote(url.split("#", 1)[0].split("?", 1)[0])
    if not relative:
        return []
    if relative.startswith("/"):  # a path from the site's root, which the build folder usually is
        return [directory / relative.lstrip("/")]
    return [path.parent / relative, directory / relative]


def _ignored(path: Path, directory: Path, patterns: Sequence[str]) -> bool:
    """Globs match the path below ``directory`` (``*`` crosses ``/``) or the bare name."""
    relative = path.relative_to(directory).as_posix()
    for pattern in patterns:
        for variant in {pattern, pattern.removeprefix("**/")}:
            if fnmatch.fnmatchcase(relative, variant) or fnmatch.fnmatchcase(path.name, variant):
                return True
    return False
