from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import static_sites


@pytest.fixture
def static_site() -> Iterator[Callable[[Path], str]]:
    with static_sites() as serve:
        yield serve
