"""The release's name and version, from the flags and from git."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from trapline.sourcemap.release import ReleaseSpec, git_metadata, release_hash_id, release_spec


def test_hash_id_is_sha512_of_project_then_version():
    assert release_hash_id("web", "1.0") == hashlib.sha512(b"web1.0").hexdigest()
    assert ReleaseSpec("web", "1.0").label == "web@1.0"


def test_no_flags_means_no_release(tmp_path: Path):
    assert release_spec(None, None, tmp_path) is None


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "shop"
    (root / "dist").mkdir(parents=True)
    (root / "dist/app.js").write_text("x()")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("remote", "add", "origin", "https://ci:s3cret@github.com/acme/shop-web.git")
    git("add", ".")
    git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "build")
    return root


def test_git_fills_in_what_the_flags_leave_out(repository: Path):
    commit = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    metadata = git_metadata(repository / "dist")
    # The token in the remote URL is not sent to the server.
    assert metadata == {
        "git": {
            "commit_id": commit,
            "branch": "main",
            "remote_url": "https://github.com/acme/shop-web.git",
            "repo_name": "shop-web",
        }
    }
    assert release_spec(None, "2.0", repository / "dist") == ReleaseSpec("shop-web", "2.0", metadata)
    assert release_spec("web", None, repository / "dist") == ReleaseSpec("web", commit, metadata)


def test_outside_git_both_flags_are_needed(tmp_path: Path):
    assert git_metadata(tmp_path) is None
    assert release_spec("web", None, tmp_path) is None
    assert release_spec("web", "1", tmp_path) == ReleaseSpec("web", "1", None)
