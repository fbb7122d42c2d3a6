"""Fixtures of the live tests: the database every trapline process of a test shares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.live.support import sqlite_url


@dataclass(frozen=True)
class Backend:
    data_dir: Path
    env: dict[str, str]  # for every trapline process
    database_url: str  # to read what they stored


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """SQLite in the data dir, or a fresh PostgreSQL database when TRAPLINE_TEST_DATABASE_URL is set."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield Backend(data_dir, {}, sqlite_url(data_dir))
        return
    if not POSTGRES_URL:
        pytest.skip("TRAPLINE_TEST_DATABASE_URL is not set")
    url = create_postgres_database(POSTGRES_URL)
    try:
        yield Backend(data_dir, {"TRAPLINE_DATABASE_URL": url}, url)
    finally:
        drop_postgres_database(POSTGRES_URL, url)
