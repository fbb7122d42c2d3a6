"""Reading PostHog's wire JSON the way cymbal's serde types read it.

Cymbal deserialises ``$exception_list`` into strict Rust types; a field of the wrong type
fails the whole event with ``Invalid properties: <uuid>, serde error: <message>``. These
readers apply the same type rules (``Option<u32>`` rejects ``-1`` and ``1.5``, a missing
``#[serde(default)] bool`` takes its default but an explicit ``null`` is an error, ...) and
raise ``WireError`` with a message shaped like serde_json's. The shape, not the exact text:
serde's messages for nested enums and flattened structs are not reproduced word for word.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = [
    "U32_MAX",
    "WireError",
    "get_bool",
    "get_i32",
    "get_str",
    "get_str_list",
    "get_u32",
    "invalid_type",
    "is_u32",
    "missing_field",
]

U32_MAX = 0xFFFF_FFFF
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


class WireError(ValueError):
    """A JSON value does not fit the Rust type cymbal deserialises it into."""


def _unexpected(value: object) -> str:
    """serde's ``Unexpected`` wording for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list | tuple):
        return "sequence"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def invalid_type(value: object, expected: str) -> WireError:
    """``invalid type: <what was found>, expected <what the type wants>``."""
    return WireError(f"invalid type: {_unexpected(value)}, expected {expected}")


def missing_field(name: str) -> WireError:
    """``missing field `<name>```."""
    return WireError(f"missing field `{name}`")


def is_u32(value: object) -> bool:
    """Whether ``value`` deserialises as a Rust ``u32`` (a JSON integer in 0..=2**32-1)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U32_MAX


def get_str(obj: Mapping[str, object], key: str, *, required: bool = False) -> str | None:
    """A ``String`` (``required``) or an ``Option<String>`` (absent or null gives None)."""
    if key not in obj:
        if required:
            raise missing_field(key)
        return None
    value = obj[key]
    if isinstance(value, str):
        return value
    if value is None and not required:
        return None
    raise invalid_type(value, "a string")


def get_u32(obj: Mapping[str, object], key: str, *, required: bool = False) -> int | None:
    """A ``u32`` (``required``) or an ``Option<u32>``."""
    if key not in obj:
        if required:
            raise missing_field(key)
        return None
    value = obj[key]
    if value is None and not required:
        return None
    if is_u32(value):
        assert isinstance(value, int)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise WireError(f"invalid value: integer `{value}`, expected u32")
    raise invalid_type(value, "u32")


def get_i32(obj: Mapping[str, object], key: str) -> int | None:
    """An ``Option<i32>``."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if _I32_MIN <= value <= _I32_MAX:
            return value
        raise WireError(f"invalid value: integer `{value}`, expected i32")
    raise invalid_type(value, "i32")


def get_bool(obj: Mapping[str, object], key: str, *, default: bool | None) -> bool | None:
    """A ``#[serde(default)] bool`` (absent gives ``default``) or, with ``default=None``, an
    ``Option<bool>`` (absent or null gives None). An explicit null for a defaulted bool is an
    error in serde, so it is one here too."""
    if key not in obj:
        return default
    value = obj[key]
    if isinstance(value, bool):
        return value
    if value is None and default is None:
        return None
    raise invalid_type(value, "a boolean")


def get_str_list(obj: Mapping[str, object], key: str) -> list[str]:
    """A ``#[serde(default)] Vec<String>``: absent gives ``[]``, null is an error."""
    if key not in obj:
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise invalid_type(value, "a sequence")
    for item in value:
        if not isinstance(item, str):
            raise invalid_type(item, "a string")
    return list(value)
