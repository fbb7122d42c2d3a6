"""Which release a build belongs to: from the flags, completed from git when one is missing."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ReleaseSpec", "git_metadata", "release_hash_id", "release_spec"]

_GIT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ReleaseSpec:
    project: str
    version: str
    metadata: dict[str, Any] | None = None

    @property
    def hash_id(self) -> str:
        return release_hash_id(self.project, self.version)

    @property
    def label(self) -> str:
        return f"{self.project}@{self.version}"


def release_hash_id(project: str, version: str) -> str:
    """How PostHog's CLI names a release: lowercase hex SHA-512 of ``project + version``."""
    return hashlib.sha512(project.encode() + version.encode()).hexdigest()


def release_spec(name: str | None, version: str | None, directory: Path) -> ReleaseSpec | None:
    """The release asked for with ``--release-name``/``--release-version``, or None.

    Git is only asked when one of the two flags was given (a build that names no release
    stays release-less and needs no network); it fills in the repository name or the commit.
    """
    if name is None and version is None:
        return None
    metadata = git_metadata(directory)
    git = metadata["git"] if metadata else {}
    name = name or git.get("repo_name")
    version = version or git.get("commit_id")
    if not name or not version:
        return None
    return ReleaseSpec(project=name, version=version, metadata=metadata)


def git_metadata(directory: Path) -> dict[str, Any] | None:
    """``{"git": {commit_id, branch, remote_url, repo_name}}`` for the checkout holding ``directory``."""
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None
    git: dict[str, Any] = {"commit_id": commit}
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":  # "HEAD" means detached, as in most CI checkouts
        git["branch"] = branch
    remote = _git(directory, "remote", "get-url", "origin")
    if remote:
        git["remote_url"] = _without_credentials(remote)
    top = _git(directory, "rev-parse", "--show-toplevel")
    name = _repo_name(remote) if remote else None
    git["repo_name"] = name or (Path(top).name if top else None)
    return {"git": {key: value for key, value in git.items() if value}}


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    output = result.stdout.strip()
    return output if result.returncode == 0 and output else None


def _repo_name(remote: str) -> str | None:
    # https://host/owner/name.git, git@host:owner/name.git, /path/to/name
    tail = remote.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
    return tail.removesuffix(".git") or None


def _without_credentials(remote: str) -> str:
    """A remote URL without the user:token some CI checkouts put into it (it is sent away)."""
    parts = urlsplit(remote)
    if not parts.scheme or "@" not in parts.netloc:
        return remote
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
