"""Fixtures for the source map client: a real bundler, and helpers to read what it wrote."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.js import esbuild_binary

Bundler = Callable[..., tuple[bytes, dict[str, Any]]]


@pytest.fixture(scope="session")
def esbuild() -> Path:
    """The esbuild binary, from the npm registry (installed into .cache/npm the first time)."""
    return esbuild_binary()


@pytest.fixture
def bundle(esbuild: Path, tmp_path: Path) -> Bundler:
    """Build ``entry`` (relative to the folder holding ``files``) with esbuild; returns the file and its map."""
    counter = iter(range(1000))

    def build(files: dict[str, str], entry: str, *flags: str) -> tuple[bytes, dict[str, Any]]:
        root = tmp_path / f"project{next(counter)}"
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        subprocess.run(
            [str(esbuild), entry, "--sourcemap", "--outfile=out/bundle.js", "--log-level=warning", *flags],
            cwd=root,
            check=True,
        )
        return (root / "out/bundle.js").read_bytes(), json.loads((root / "out/bundle.js.map").read_bytes())

    return build
