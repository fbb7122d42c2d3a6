"""Wire schemas of autocapture controls."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from trapline.api.schemas.common import RequestModel

__all__ = ["AutocaptureControlsOut", "AutocaptureControlsWrite", "parse_sample_rate"]

# What PostHog's generated clients render; every value we send matches it.
SAMPLE_RATE_PATTERN = r"^-?\d{0,1}(?:\.\d{0,2})?$"
# What parse_sample_rate accepts as a string: 0 to 1 with at most two places.
SAMPLE_RATE_INPUT_PATTERN = r"^(0?\.[0-9]{1,2}|0(\.[0-9]{0,2})?|1(\.0{0,2})?)$"
_MAX_DIGITS, _MAX_DECIMALS = 3, 2
_MAX_STRING_LENGTH = 1000


def parse_sample_rate(value: Any) -> Decimal:
    """A sample rate as Django REST framework's DecimalField(max_digits=3, decimal_places=2,
    min 0, max 1) reads it, with its messages, in its order."""
    if value is None:
        # DRF turns null away before parsing: the field does not allow null.
        raise PydanticCustomError("null", "This field may not be null.")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PydanticCustomError("invalid_input", "A valid number is required.")
    text = str(value).strip()
    if len(text) > _MAX_STRING_LENGTH:  # DRF's guard against huge inputs, before parsing
        raise PydanticCustomError("max_string_length", "String value too large.")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise PydanticCustomError("invalid_input", "A valid number is required.") from None
    if not number.is_finite():
        raise PydanticCustomError("invalid_input", "A valid number is required.")
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        total, decimals = len(digits) + exponent, 0
    elif len(digits) > -exponent:
        total, decimals = len(digits), -exponent
    else:
        total, decimals = -exponent, -exponent
    whole = total - decimals
    if total > _MAX_DIGITS:
        raise PydanticCustomError("max_digits", "Ensure that there are no more than 3 digits in total.")
    if decimals > _MAX_DECIMALS:
        raise PydanticCustomError("max_decimal_places", "Ensure that there are no more than 2 decimal places.")
    if whole > _MAX_DIGITS - _MAX_DECIMALS:
        raise PydanticCustomError(
            "max_whole_digits", "Ensure that there are no more than 1 digits before the decimal point."
        )
    if number > 1:
        raise PydanticCustomError("max_value", "Ensure this value is less than or equal to 1.")
    if number < 0:
        raise PydanticCustomError("min_value", "Ensure this value is greater than or equal to 0.")
    # copy_abs: "-0" passes the range check but must not be stored and shown as "-0.00".
    return number.copy_abs().quantize(Decimal("0.01"))


SampleRateIn = Annotated[
    Decimal,
    BeforeValidator(parse_sample_rate),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": SAMPLE_RATE_INPUT_PATTERN},
                {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.01},
            ],
            "description": "A decimal from 0 to 1 with at most two places, as a string or a number.",
        }
    ),
]
SampleRateOut = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": SAMPLE_RATE_PATTERN}),
]


class AutocaptureControlsOut(BaseModel):
    id: uuid.UUID
    library: Literal["web"]
    match_type: Literal["all", "any"]
    sample_rate: SampleRateOut
    linked_feature_flag: Any
    event_triggers: list[str]
    url_triggers: list[Any]
    url_blocklist: list[Any]


class AutocaptureControlsWrite(RequestModel):
    """Fields a client may set; ``library`` and ``id`` are read-only. Omitted fields keep
    their value (defaults on create)."""

    match_type: Literal["all", "any"] = Field(default="all", description="`all` or `any` of the triggers.")
    sample_rate: SampleRateIn = Field(default=Decimal("1.00"), description="Share of sessions to capture, 0 to 1.")
    linked_feature_flag: Any = Field(default=None, description='Flag gating capture, e.g. {"id", "key", "variant"}.')
    event_triggers: list[str] = Field(default_factory=list, description="Event names that start capture.")
    url_triggers: list[Any] = Field(
        default_factory=list, description='URL patterns, e.g. {"url", "matching": "regex"}.'
    )
    url_blocklist: list[Any] = Field(default_factory=list, description="URL patterns where capture never runs.")
