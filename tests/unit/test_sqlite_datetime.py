"""Times as SQLite holds them: ``sqlite_datetime`` writes exactly the text ``strftime`` wrote,
which every stored row and every comparison in SQL relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from trapline.db.types import SQLITE_DATETIME, sqlite_datetime

# UTC itself, another zone at offset 0, and two that are not.
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(0), "Z"), timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_the_text_is_strftimes(moment: datetime):
    assert sqlite_datetime(moment) == moment.astimezone(UTC).strftime(SQLITE_DATETIME)


def test_the_text_of_a_whole_second_keeps_its_microseconds():
    assert sqlite_datetime(datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)) == "2026-12-05 01:02:03.000000"
    assert sqlite_datetime(datetime(2026, 12, 5, 4, 2, 3, 7, tzinfo=timezone(timedelta(hours=3)))) == (
        "2026-12-05 01:02:03.000007"
    )
