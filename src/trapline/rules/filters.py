"""PostHog property-group filters: what a valid one looks like.

A rule's ``filters`` is a ``PropertyGroupFilterValue``::

    {"type": "AND" | "OR", "values": [<property filter> | <property group>, ...]}

and a property filter is one of PostHog's filter models, picked by its ``type``::

    {"type": "event", "key": "$exception_types", "operator": "exact", "value": ["TypeError"]}

PostHog validates these with its generated pydantic schema, whose models forbid unknown
fields; ``validate_filters`` applies the same rules and returns the first problem as text.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MATCH_ALL",
    "OPERATORS",
    "PROPERTY_FILTER_TYPES",
    "FilterError",
    "has_filter_values",
    "validate_filters",
]

MATCH_ALL: dict[str, Any] = {"type": "AND", "values": []}

OPERATORS = frozenset(
    {
        "exact", "is_not", "icontains", "not_icontains", "icontains_multi", "not_icontains_multi",
        "regex", "not_regex", "gt", "gte", "lt", "lte", "is_set", "is_not_set",
        "is_date_exact", "is_date_before", "is_date_after", "between", "not_between", "min", "max",
        "in", "not_in", "is_cleaned_path_exact", "flag_evaluates_to",
        "semver_eq", "semver_neq", "semver_gt", "semver_gte", "semver_lt", "semver_lte",
        "semver_tilde", "semver_caret", "semver_wildcard",
    }
)  # fmt: skip

# type -> (fields allowed besides "type", whether "operator" is required)
_COMMON = frozenset({"key", "label", "operator", "value"})
PROPERTY_FILTER_TYPES: dict[str, tuple[frozenset[str], bool]] = {
    "event": (_COMMON, False),
    "person": (_COMMON, True),
    "element": (_COMMON, True),
    "event_metadata": (_COMMON, True),
    "session": (_COMMON, True),
    "cohort": (_COMMON | {"cohort_name"}, False),
    "recording": (_COMMON, True),
    "log_entry": (_COMMON, True),
    "group": (_COMMON | {"group_type_index", "group_key_names"}, True),
    "feature": (_COMMON, True),
    "flag": (_COMMON, True),
    "hogql": (frozenset({"key", "label", "value"}), False),
    "data_warehouse": (_COMMON, True),
    "data_warehouse_person": (_COMMON | {"table"}, True),
    "error_tracking_issue": (_COMMON, True),
    "error_tracking_issue_property": (_COMMON, True),
    "log": (_COMMON, True),
    "log_attribute": (_COMMON | {"attributeType"}, True),
    "log_resource_attribute": (_COMMON, True),
    "revenue_analytics": (_COMMON, True),
    "workflow_variable": (_COMMON, True),
}


class FilterError(ValueError):
    """The filters are not a valid property-group filter; the message says where."""


# Real filters nest two or three groups deep; a bound keeps hostile input from exhausting the
# Python stack in these recursive checks (and in evaluation later).
MAX_DEPTH = 20


def validate_filters(filters: Any) -> None:
    """Raise ``FilterError`` unless ``filters`` is a valid ``PropertyGroupFilterValue``."""
    _validate_group(filters, "filters", 1)


def has_filter_values(filters: dict[str, Any], _depth: int = 1) -> bool:
    """Whether the group holds at least one real filter, at any depth.

    A group with no values (or only empty groups and ``{"type": "empty"}``) matches every
    event. A non-object entry counts as a value, so that validation gets to reject it.
    """
    values = filters.get("values")
    if not values:
        return False
    if _depth > MAX_DEPTH:
        return True  # too deep: counts as a value, so that validation gets to reject it
    if not isinstance(values, list):
        return True  # not a list: counts as a value, so that validation gets to reject it
    for value in values:
        if not isinstance(value, dict) or "key" in value:
            return True
        if has_filter_values(value, _depth + 1):
            return True
    return False


def _validate_group(group: Any, where: str, depth: int) -> None:
    if not isinstance(group, dict):
        raise FilterError(f"{where} must be an object")
    if depth > MAX_DEPTH:
        raise FilterError(f"filters are nested more than {MAX_DEPTH} groups deep")
    extra = set(group) - {"type", "values"}
    if extra:
        raise FilterError(f"{where} has unknown fields: {', '.join(sorted(extra))}")
    if group.get("type") not in ("AND", "OR"):
        raise FilterError(f"{where}.type must be AND or OR")
    values = group.get("values")
    if not isinstance(values, list):
        raise FilterError(f"{where}.values must be a list")
    for index, value in enumerate(values):
        here = f"{where}.values[{index}]"
        if isinstance(value, dict) and "values" in value and value.get("type") in ("AND", "OR"):
            _validate_group(value, here, depth + 1)
        else:
            _validate_property(value, here)


def _validate_property(prop: Any, where: str) -> None:
    if not isinstance(prop, dict):
        raise FilterError(f"{where} must be an object")
    kind = prop.get("type", "event" if "key" in prop else "empty")
    if kind == "empty":
        if set(prop) - {"type"}:
            raise FilterError(f"{where} is an empty filter with fields")
        return
    # isinstance first: a list or object is unhashable and cannot be looked up.
    if not isinstance(kind, str) or kind not in PROPERTY_FILTER_TYPES:
        raise FilterError(f"{where}.type {kind!r} is not a property filter type")
    allowed, operator_required = PROPERTY_FILTER_TYPES[kind]
    extra = set(prop) - allowed - {"type"}
    if extra:
        raise FilterError(f"{where} has unknown fields: {', '.join(sorted(extra))}")
    if not isinstance(prop.get("key"), str | int) or isinstance(prop.get("key"), bool):
        raise FilterError(f"{where}.key is required")
    operator = prop.get("operator")
    if operator is None:
        if operator_required:
            raise FilterError(f"{where}.operator is required")
    elif not isinstance(operator, str) or operator not in OPERATORS:
        raise FilterError(f"{where}.operator {operator!r} is not a known operator")
    if "value" in prop and not _is_filter_value(prop["value"]):
        raise FilterError(f"{where}.value must be a string, number, boolean or a list of them")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _is_filter_value(value: Any) -> bool:
    if value is None or _is_scalar(value):
        return True
    return isinstance(value, list) and all(_is_scalar(item) for item in value)
