"""The issue search's tokenizer and the date ranges issue lists and queries cover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trapline.errors import InvalidInput
from trapline.issues.queries import (
    DateRange,
    bucket_bounds,
    default_direction,
    parse_bounds,
    parse_date,
    parse_date_range,
    search_tokens,
)

# A Wednesday, mid-quarter, mid-morning: every unit's start and end differ from it.
NOW = datetime(2024, 5, 15, 10, 30, 45, 123456, tzinfo=UTC)


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "tokens"),
    [
        ("TypeError", ["typeerror"]),
        ("  TypeError   undefined ", ["typeerror", "undefined"]),
        ('"cannot read" property', ["cannot read", "property"]),
        ("'single quoted phrase' x", ["single quoted phrase", "x"]),
        ("a \"b c\" 'd e' f", ["a", "b c", "d e", "f"]),
        ("don't panic", ["don't", "panic"]),
        ('"unclosed phrase', ["unclosed", "phrase"]),
        ('"" x', ["x"]),
        ("Ünïcode ÉRROR", ["ünïcode", "érror"]),
        ("100% a_b c\\d", ["100%", "a_b", "c\\d"]),
        ("", []),
        (None, []),
        ("   ", []),
    ],
)
def test_tokens(query: str | None, tokens: list[str]):
    assert search_tokens(query) == tokens


def test_a_quoted_phrase_keeps_its_inner_spacing():
    assert search_tokens('"a  b"') == ["a  b"]


def test_nul_is_searched_as_the_replacement_character_the_pipeline_stores():
    assert search_tokens("a\x00b") == ["a\ufffdb"]


def test_at_most_100_tokens():
    assert len(search_tokens(" ".join(f"w{n}" for n in range(100)))) == 100

    with pytest.raises(InvalidInput) as raised:
        search_tokens(" ".join(f"w{n}" for n in range(101)), attr="search")

    assert (raised.value.detail, raised.value.attr) == ("Too many search tokens", "search")


def test_quoted_phrases_count_as_one_token_each():
    assert len(search_tokens(" ".join(f'"w {n}"' for n in range(100)))) == 100


# --- single dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-7d", NOW - timedelta(days=7)),
        ("7d", NOW - timedelta(days=7)),
        ("-24h", NOW - timedelta(hours=24)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("-30M", NOW - timedelta(minutes=30)),
        ("-1m", datetime(2024, 4, 15, 10, 30, 45, 123456, tzinfo=UTC)),
        ("-3m", datetime(2024, 2, 15, 10, 30, 45, 123456, tzinfo=UTC)),
        ("-5m", datetime(2023, 12, 15, 10, 30, 45, 123456, tzinfo=UTC)),
        ("-1q", datetime(2024, 2, 15, 10, 30, 45, 123456, tzinfo=UTC)),
        ("-1y", datetime(2023, 5, 15, 10, 30, 45, 123456, tzinfo=UTC)),
        ("-0d", NOW),
        ("dStart", datetime(2024, 5, 15, tzinfo=UTC)),
        ("-1dStart", datetime(2024, 5, 14, tzinfo=UTC)),
        ("-1dEnd", datetime(2024, 5, 14, 23, 59, 59, 999999, tzinfo=UTC)),
        ("-0hStart", datetime(2024, 5, 15, 10, tzinfo=UTC)),
        ("-1wStart", datetime(2024, 5, 6, tzinfo=UTC)),  # Monday of last week
        ("mStart", datetime(2024, 5, 1, tzinfo=UTC)),
        ("-1mEnd", datetime(2024, 4, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ("qStart", datetime(2024, 4, 1, tzinfo=UTC)),
        ("yStart", datetime(2024, 1, 1, tzinfo=UTC)),
        ("-1yEnd", datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("-0MStart", datetime(2024, 5, 15, 10, 30, tzinfo=UTC)),
    ],
)
def test_relative_dates(value: str, expected: datetime):
    assert parse_date(value, now=NOW) == expected


def test_month_arithmetic_clamps_to_the_shorter_month():
    assert parse_date("-1m", now=datetime(2024, 3, 31, tzinfo=UTC)) == datetime(2024, 2, 29, tzinfo=UTC)
    assert parse_date("-1y", now=datetime(2024, 2, 29, tzinfo=UTC)) == datetime(2023, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        ("2024-01-31", False, datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31", True, datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-01-31T12:00:00", True, datetime(2024, 1, 31, 12, tzinfo=UTC)),  # a time is taken as given
        ("2024-01-31T12:00:00Z", False, datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T12:00:00+02:00", False, datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31 12:00", False, datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T12:00:00.250-05:00", False, datetime(2024, 1, 31, 17, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_absolute_dates_are_utc(value: str, end: bool, expected: datetime):
    parsed = parse_date(value, now=NOW, end=end)

    assert parsed == expected
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "value", ["yesterday", "-7x", "-d7", "2024-13-01", "2024-02-30", "-7 d", "--7d", "-99999999d", "", "all"]
)
def test_invalid_dates(value: str):
    with pytest.raises(ValueError, match=r"isoformat|month"):
        parse_date(value, now=NOW)


@pytest.mark.parametrize("value", ["-9999999y", "-9999999m", "-9999999w"])
def test_dates_out_of_range_are_invalid_not_crashes(value: str):
    with pytest.raises((ValueError, OverflowError)):
        parse_date(value, now=NOW)
    with pytest.raises(InvalidInput):
        parse_date_range(value, None, now=NOW)


# --- ranges ---------------------------------------------------------------------------------


def test_the_default_range_is_the_last_seven_days():
    assert parse_date_range(None, None, now=NOW) == DateRange(NOW - timedelta(days=7), NOW)
    assert parse_date_range("", "", now=NOW) == DateRange(NOW - timedelta(days=7), NOW)


def test_the_default_start_can_be_changed():
    assert parse_date_range(None, None, now=NOW, default_from="-24h").start == NOW - timedelta(hours=24)


def test_all_means_four_years_back():
    assert parse_date_range("all", None, now=NOW) == DateRange(datetime(2020, 5, 15, 10, 30, 45, 123456, UTC), NOW)


def test_explicit_range():
    assert parse_date_range("2024-05-01", "2024-05-10", now=NOW) == DateRange(
        datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 10, 23, 59, 59, 999999, tzinfo=UTC)
    )


def test_relative_end():
    assert parse_date_range("-2d", "-1d", now=NOW) == DateRange(NOW - timedelta(days=2), NOW - timedelta(days=1))


@pytest.mark.parametrize(
    ("date_from", "date_to", "attr"),
    [("nonsense", None, "date_from"), ("-7d", "nonsense", "date_to"), (None, "all", "date_to")],
)
def test_invalid_range_names_the_field(date_from: str | None, date_to: str | None, attr: str):
    with pytest.raises(InvalidInput) as raised:
        parse_date_range(date_from, date_to, now=NOW)

    assert raised.value.attr == attr
    assert raised.value.detail.startswith("Invalid date")


def test_invalid_range_in_a_query_body_names_the_nested_field():
    with pytest.raises(InvalidInput) as raised:
        parse_date_range("x", None, now=NOW, attr_prefix="dateRange__")

    assert raised.value.attr == "dateRange__date_from"


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(InvalidInput) as raised:
        parse_date_range("-1d", "-2d", now=NOW)

    assert (raised.value.detail, raised.value.attr) == ("date_from must not be after date_to.", "date_from")


def test_open_bounds():
    assert parse_bounds(None, None, now=NOW) == (None, None)
    assert parse_bounds("-1d", None, now=NOW) == (NOW - timedelta(days=1), None)
    assert parse_bounds(None, "2024-05-01", now=NOW) == (None, datetime(2024, 5, 1, 23, 59, 59, 999999, UTC))
    with pytest.raises(InvalidInput):
        parse_bounds("-1d", "-2d", now=NOW)


# --- buckets and order ----------------------------------------------------------------------


def test_buckets_are_equal_and_end_at_the_range_end():
    date_range = DateRange(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))

    bounds = bucket_bounds(date_range, 4)

    assert bounds == [datetime(2024, 5, 1, hour, tzinfo=UTC) for hour in (0, 6, 12, 18)] + [date_range.end]


def test_one_bucket_is_the_whole_range():
    date_range = DateRange(NOW - timedelta(days=7), NOW)

    assert bucket_bounds(date_range, 1) == [date_range.start, date_range.end]


@pytest.mark.parametrize(
    ("key", "direction"),
    [("first_seen", "ASC"), ("last_seen", "DESC"), ("occurrences", "DESC"), ("users", "DESC"), ("sessions", "DESC")],
)
def test_default_directions(key: str, direction: str):
    assert default_direction(key) == direction  # type: ignore[arg-type]
