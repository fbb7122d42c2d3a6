"""JavaScript tooling for tests, from the npm registry: esbuild, posthog-js, posthog-node.

Installed once into ``.cache/npm`` (ignored by git) with the machine's npm, under a lock so
that parallel test sessions do not install at the same time. Tests that need them skip,
saying why, only when npm itself is missing.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

NPM_PREFIX = Path(__file__).resolve().parent.parent / ".cache" / "npm"
PACKAGES = {"esbuild": "0.25", "posthog-js": "1.449.2", "posthog-node": "5.70.0"}


def npm_packages() -> Path:
    """The node_modules folder holding PACKAGES, installing what is missing."""
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with (NPM_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [f"{name}@{version}" for name, version in PACKAGES.items() if not _installed(name, version)]
        if missing:
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed: the JavaScript packages these tests use cannot be fetched")
            result = subprocess.run(
                [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", *missing],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"npm install {' '.join(missing)} failed:\n{result.stdout}\n{result.stderr}")
    return NPM_PREFIX / "node_modules"


def esbuild_binary() -> Path:
    return npm_packages() / ".bin" / "esbuild"


def _installed(name: str, version: str) -> bool:
    manifest = NPM_PREFIX / "node_modules" / name / "package.json"
    if not manifest.exists():
        return False
    installed = str(json.loads(manifest.read_text()).get("version", ""))
    return installed == version or installed.startswith(version + ".")
