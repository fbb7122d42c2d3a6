"""``parse_sample_rate``: DRF's DecimalField(max_digits=3, decimal_places=2, 0..1), message for message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from trapline.api.schemas.autocapture import AutocaptureControlsOut, AutocaptureControlsWrite, parse_sample_rate

INVALID = ("invalid_input", "A valid number is required.")
MAX_DIGITS = ("max_digits", "Ensure that there are no more than 3 digits in total.")
MAX_DECIMAL_PLACES = ("max_decimal_places", "Ensure that there are no more than 2 decimal places.")
MAX_WHOLE_DIGITS = ("max_whole_digits", "Ensure that there are no more than 1 digits before the decimal point.")
MAX_VALUE = ("max_value", "Ensure this value is less than or equal to 1.")
MIN_VALUE = ("min_value", "Ensure this value is greater than or equal to 0.")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", "0.50"),
        ("0.50", "0.50"),
        (".5", "0.50"),
        ("0", "0.00"),
        ("0.0", "0.00"),
        ("0.00", "0.00"),
        ("1", "1.00"),
        ("1.0", "1.00"),
        ("1.00", "1.00"),
        ("0.01", "0.01"),
        ("0.99", "0.99"),
        ("  0.25\n", "0.25"),
        ("+0.3", "0.30"),
        ("1e-1", "0.10"),
        ("5E-2", "0.05"),
        (0, "0.00"),
        (1, "1.00"),
        (0.5, "0.50"),
        (0.07, "0.07"),
        (1.0, "1.00"),
        (Decimal("0.3"), "0.30"),
        (Decimal("1.00"), "1.00"),
    ],
)
def test_valid_rates_come_back_with_two_places(value: Any, expected: str):
    result = parse_sample_rate(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize("value", ["-0", "-0.0", "-0.00", Decimal("-0"), -0.0])
def test_negative_zero_is_zero(value: Any):
    # 0 <= -0 <= 1, so DRF accepts it; it must not come back signed ("-0.00").
    assert str(parse_sample_rate(value)) == "0.00"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        # not a number at all
        ("abc", INVALID),
        ("", INVALID),
        ("   ", INVALID),
        ("0,5", INVALID),
        ("1/2", INVALID),
        ("NaN", INVALID),
        ("nan", INVALID),
        ("-NaN", INVALID),
        ("sNaN", INVALID),
        ("Infinity", INVALID),
        ("-Infinity", INVALID),
        ("inf", INVALID),
        (float("nan"), INVALID),
        (float("inf"), INVALID),
        (Decimal("NaN"), INVALID),
        (True, INVALID),
        (False, INVALID),
        ([0.5], INVALID),
        ({"rate": 0.5}, INVALID),
        # precision, checked before the range, in DRF's order
        ("0.555", MAX_DECIMAL_PLACES),
        ("0.001", MAX_DECIMAL_PLACES),
        ("1e-3", MAX_DECIMAL_PLACES),
        ("0.1234", MAX_DIGITS),
        ("1.000", MAX_DIGITS),
        ("100.5", MAX_DIGITS),
        ("1000", MAX_DIGITS),
        ("1E+3", MAX_DIGITS),
        ("10", MAX_WHOLE_DIGITS),
        ("10.5", MAX_WHOLE_DIGITS),
        ("-10", MAX_WHOLE_DIGITS),
        ("1E+1", MAX_WHOLE_DIGITS),
        (10, MAX_WHOLE_DIGITS),
        # range
        ("1.5", MAX_VALUE),
        ("1.01", MAX_VALUE),
        ("9.99", MAX_VALUE),
        (2, MAX_VALUE),
        (1.5, MAX_VALUE),
        ("-0.5", MIN_VALUE),
        ("-0.01", MIN_VALUE),
        ("-1", MIN_VALUE),
        (-1, MIN_VALUE),
    ],
)
def test_invalid_rates_fail_with_drf_code_and_message(value: Any, error: tuple[str, str]):
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(value)
    assert (caught.value.type, caught.value.message()) == error


@pytest.mark.parametrize(
    ("value", "error"),
    [("0." + "0" * 998, MAX_DIGITS), ("1" * 1000, MAX_DIGITS), (" " * 5000 + "0.5", None)],
)
def test_strings_up_to_1000_characters_are_parsed(value: str, error: tuple[str, str] | None):
    # DRF measures the stripped string; within the limit the precision rules decide.
    if error is None:
        assert str(parse_sample_rate(value)) == "0.50"
        return
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(value)
    assert (caught.value.type, caught.value.message()) == error


@pytest.mark.parametrize("value", ["0." + "0" * 999, "1" * 1001, "x" * 5000])
def test_longer_strings_are_refused_before_parsing(value: str):
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(value)
    assert (caught.value.type, caught.value.message()) == ("max_string_length", "String value too large.")


def test_null_is_not_a_number():
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(None)
    assert (caught.value.type, caught.value.message()) == ("null", "This field may not be null.")


rates = st.decimals(min_value=0, max_value=1, places=2, allow_nan=False, allow_infinity=False)


@given(rates)
def test_every_two_place_rate_round_trips(rate: Decimal):
    parsed = parse_sample_rate(rate)
    assert parsed == rate
    assert str(parsed) == f"{rate:.2f}"
    # the same number as a JSON string or a JSON number
    assert parse_sample_rate(str(rate)) == rate
    assert parse_sample_rate(float(rate)) == rate
    # and through the wire schemas, out as a two-place string
    written = AutocaptureControlsWrite.model_validate({"sample_rate": str(rate)}).sample_rate
    assert written == rate
    shown = AutocaptureControlsOut.model_validate(
        {
            "id": "0190b0a4-0000-7000-8000-000000000000",
            "library": "web",
            "match_type": "all",
            "sample_rate": written,
            "linked_feature_flag": None,
            "event_triggers": [],
            "url_triggers": [],
            "url_blocklist": [],
        }
    )
    assert shown.model_dump(mode="json")["sample_rate"] == f"{rate:.2f}"


@given(st.integers(min_value=0, max_value=100))
def test_trailing_zeros_may_be_left_off(hundredths: int):
    rate = Decimal(hundredths) / 100  # shortest form: "0.5", "1", "0.07"
    assert str(parse_sample_rate(str(rate))) == f"{rate:.2f}"


@given(st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False))
def test_more_than_two_places_are_refused(rate: Decimal):
    if rate == rate.quantize(Decimal("0.01")):
        return  # a two-place rate written with trailing zeros, e.g. 0.1200
    # Four places after the point are four digits in total: DRF complains about the total first.
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(rate)
    assert caught.value.type == "max_digits"
    # Without the trailing zeros, three places still fit in three digits (0.123, 0.001).
    shortest = rate.normalize()
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(shortest)
    expected = "max_decimal_places" if shortest.as_tuple().exponent == -3 else "max_digits"
    assert caught.value.type == expected


@given(st.decimals(min_value=Decimal("1.01"), max_value=Decimal("9.99"), places=2))
def test_above_one_is_a_max_value_error(rate: Decimal):
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(rate)
    assert caught.value.type == "max_value"


@given(st.decimals(min_value=Decimal("-9.99"), max_value=Decimal("-0.01"), places=2))
def test_below_zero_is_a_min_value_error(rate: Decimal):
    with pytest.raises(PydanticCustomError) as caught:
        parse_sample_rate(rate)
    assert caught.value.type == "min_value"


def test_write_schema_reports_the_drf_error_on_sample_rate():
    with pytest.raises(ValidationError) as caught:
        AutocaptureControlsWrite.model_validate({"sample_rate": "0.555"})
    [error] = caught.value.errors()
    assert error["loc"] == ("sample_rate",)
    assert error["type"] == "max_decimal_places"
    assert error["msg"] == "Ensure that there are no more than 2 decimal places."


def test_write_schema_defaults_to_one():
    assert AutocaptureControlsWrite.model_validate({}).sample_rate == Decimal("1.00")
