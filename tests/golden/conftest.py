"""Reads the snapshot-rewrite switch before the root conftest clears ``TRAPLINE_*`` variables.

The root ``pytest_configure`` deletes every ``TRAPLINE_*`` variable so that developer settings
never leak into tests. This conftest is imported earlier when ``tests/golden`` (or a file in it)
is named on the command line, which is how snapshots are rewritten::

    TRAPLINE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden
"""

from __future__ import annotations

import os

UPDATE_GOLDEN = os.environ.get("TRAPLINE_UPDATE_GOLDEN", "") == "1"
