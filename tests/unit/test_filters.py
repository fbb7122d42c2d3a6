"""PostHog property-group filters: validate_filters and has_filter_values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trapline.rules.filters import (
    MATCH_ALL,
    OPERATORS,
    PROPERTY_FILTER_TYPES,
    FilterError,
    has_filter_values,
    validate_filters,
)

EVENT = {"type": "event", "key": "$exception_types", "operator": "exact", "value": ["TypeError"]}


def group(*values: Any, kind: str = "AND") -> dict[str, Any]:
    return {"type": kind, "values": list(values)}


# --- validate_filters: accepted -------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        MATCH_ALL,
        group(kind="OR"),
        group(EVENT),
        group(group(EVENT), kind="OR"),
        group(group(group(group(EVENT, kind="OR")))),
        group({"type": "empty"}),
        group({}),
        group({"key": "$exception_types"}),
        group({"key": 42, "value": 1.5}),
        group({"type": "event", "key": "a", "label": "A", "operator": None, "value": None}),
        group({"type": "event", "key": "a", "value": "x"}),
        group({"type": "event", "key": "a", "value": True}),
        group({"type": "event", "key": "a", "value": ["x", 1, 2.5, False]}),
        group({"type": "event", "key": "a", "value": []}),
        group({"type": "person", "key": "email", "operator": "is_set"}),
        group({"type": "cohort", "key": "id", "value": 3, "cohort_name": "Beta"}),
        group({"type": "hogql", "key": "properties.$lib = 'web'", "label": "lib"}),
        group({"type": "group", "key": "plan", "operator": "exact", "group_type_index": 0, "group_key_names": {}}),
        group({"type": "data_warehouse_person", "key": "k", "operator": "exact", "table": "t"}),
        group({"type": "log_attribute", "key": "k", "operator": "exact", "attributeType": "log"}),
        group(EVENT, {"type": "empty"}, group(kind="OR"), kind="OR"),
    ],
)
def test_valid_filters_pass(filters: dict[str, Any]):
    assert validate_filters(filters) is None


@pytest.mark.parametrize("kind", sorted(PROPERTY_FILTER_TYPES))
def test_every_property_filter_type_is_accepted(kind: str):
    prop: dict[str, Any] = {"type": kind, "key": "k", "value": "v"}
    if kind != "hogql":
        prop["operator"] = "exact"
    validate_filters(group(prop))


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_operator_is_accepted(operator: str):
    validate_filters(group({"type": "event", "key": "k", "operator": operator, "value": "v"}))


@pytest.mark.parametrize("kind", ["event", "cohort", "hogql"])
def test_operator_is_optional_for_some_types(kind: str):
    validate_filters(group({"type": kind, "key": "k"}))


# --- validate_filters: rejected -------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (None, "filters must be an object"),
        ([], "filters must be an object"),
        ("AND", "filters must be an object"),
        ({}, "filters.type must be AND or OR"),
        ({"values": []}, "filters.type must be AND or OR"),
        ({"type": "and", "values": []}, "filters.type must be AND or OR"),
        ({"type": ["AND"], "values": []}, "filters.type must be AND or OR"),
        ({"type": "AND"}, "filters.values must be a list"),
        ({"type": "AND", "values": None}, "filters.values must be a list"),
        ({"type": "AND", "values": 5}, "filters.values must be a list"),
        ({"type": "AND", "values": {"a": 1}}, "filters.values must be a list"),
        ({"type": "AND", "values": [], "zeta": 1, "alpha": 2}, "filters has unknown fields: alpha, zeta"),
        (group(1), "filters.values[0] must be an object"),
        (group(EVENT, "x"), "filters.values[1] must be an object"),
        (group(None), "filters.values[0] must be an object"),
        (group({"type": "event"}), "filters.values[0].key is required"),
        (group({"type": "event", "key": None}), "filters.values[0].key is required"),
        (group({"type": "event", "key": True}), "filters.values[0].key is required"),
        (group({"type": "event", "key": ["a"]}), "filters.values[0].key is required"),
        (group({"type": "empty", "key": "a"}), "filters.values[0] is an empty filter with fields"),
        (group({"label": "no key"}), "filters.values[0] is an empty filter with fields"),
        (group({"type": "nonsense", "key": "a"}), "filters.values[0].type 'nonsense' is not a property filter type"),
        (group({"type": "AND", "key": "a"}), "filters.values[0].type 'AND' is not a property filter type"),
        (group({"type": ["event"], "key": "a"}), "filters.values[0].type ['event'] is not a property filter type"),
        (group({"type": {"t": 1}, "key": "a"}), "filters.values[0].type {'t': 1} is not a property filter type"),
        (group({"type": 7, "key": "a"}), "filters.values[0].type 7 is not a property filter type"),
        (group({"type": "person", "key": "email"}), "filters.values[0].operator is required"),
        (
            group({"type": "event", "key": "a", "operator": "like"}),
            "filters.values[0].operator 'like' is not a known operator",
        ),
        (
            group({"type": "event", "key": "a", "operator": ["exact"]}),
            "filters.values[0].operator ['exact'] is not a known operator",
        ),
        (group({"type": "event", "key": "a", "operator": 1}), "filters.values[0].operator 1 is not a known operator"),
        (group({"type": "event", "key": "a", "cohort_name": "x"}), "filters.values[0] has unknown fields: cohort_name"),
        (group({"type": "hogql", "key": "1", "operator": "exact"}), "filters.values[0] has unknown fields: operator"),
        (group({"type": "event", "key": "a", "values": []}), "filters.values[0] has unknown fields: values"),
        (
            group({"type": "event", "key": "a", "value": {"x": 1}}),
            "filters.values[0].value must be a string, number, boolean or a list of them",
        ),
        (
            group({"type": "event", "key": "a", "value": [["x"]]}),
            "filters.values[0].value must be a string, number, boolean or a list of them",
        ),
        (
            group({"type": "event", "key": "a", "value": [None]}),
            "filters.values[0].value must be a string, number, boolean or a list of them",
        ),
        (group(EVENT, group(EVENT, group(5), kind="OR")), "filters.values[1].values[1].values[0] must be an object"),
        (group(group(EVENT, {"type": "AND", "values": "x"})), "filters.values[0].values[1].values must be a list"),
        (group({"type": "OR", "values": [], "extra": 1}), "filters.values[0] has unknown fields: extra"),
    ],
)
def test_invalid_filters_name_the_first_problem(filters: Any, message: str):
    with pytest.raises(FilterError) as caught:
        validate_filters(filters)
    assert str(caught.value) == message


def test_filter_error_is_a_value_error():
    # pydantic turns a ValueError raised in a validator into a validation error, not a crash
    assert issubclass(FilterError, ValueError)


# --- has_filter_values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"type": "AND"},
        MATCH_ALL,
        {"type": "AND", "values": None},
        {"type": "AND", "values": 0},
        {"type": "AND", "values": ""},
        {"type": "AND", "values": {}},
        group({"type": "empty"}),
        group({}),
        group({"type": "event"}),
        group(group(), group({"type": "empty"}, kind="OR")),
        group(group(group(group({"type": "empty"})))),
    ],
)
def test_groups_without_a_filter_have_no_values(filters: dict[str, Any]):
    assert has_filter_values(filters) is False


@pytest.mark.parametrize(
    "filters",
    [
        group(EVENT),
        group({"key": "anything"}),
        group({"type": "empty"}, {"key": None}),
        group(group(), group(group(EVENT)), kind="OR"),
        # Entries that are not objects count, so that validation gets to reject them.
        group("x"),
        group(None),
        group(1),
        group([]),
        group(group(7)),
        # So do values that are not a list (regression: an int used to raise TypeError).
        {"type": "AND", "values": 5},
        {"type": "AND", "values": 1.5},
        {"type": "AND", "values": True},
        {"type": "AND", "values": "abc"},
        {"type": "AND", "values": {"key": "a"}},
        group(group(kind="OR"), {"type": "OR", "values": 3}),
    ],
)
def test_groups_with_a_filter_or_junk_have_values(filters: dict[str, Any]):
    assert has_filter_values(filters) is True


def test_validate_filters_never_mutates():
    filters = group(EVENT, group({"type": "empty"}, kind="OR"))
    snapshot = repr(filters)
    validate_filters(filters)
    has_filter_values(filters)
    assert repr(filters) == snapshot


# --- properties -----------------------------------------------------------------------------

# Groups made only of empty groups, {"type": "empty"} and {}: they match every event.
empty_leaves = st.sampled_from([{"type": "empty"}, {}])
empty_groups = st.recursive(
    st.builds(group, kind=st.sampled_from(["AND", "OR"])),
    lambda children: st.builds(
        lambda kind, values: {"type": kind, "values": values},
        st.sampled_from(["AND", "OR"]),
        st.lists(children | empty_leaves, max_size=4),
    ),
    max_leaves=20,
)

real_filters = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["event", "person", "session", "error_tracking_issue"]),
        "key": st.text(min_size=1, max_size=10) | st.integers(),
        "operator": st.sampled_from(sorted(OPERATORS)),
    },
    optional={
        "value": st.none()
        | st.text(max_size=5)
        | st.integers()
        | st.booleans()
        | st.floats(allow_nan=False)
        | st.lists(st.text(max_size=5) | st.integers(), max_size=3),
        "label": st.text(max_size=5),
    },
)


def _insert(tree: dict[str, Any], leaf: dict[str, Any], path: list[int]) -> dict[str, Any]:
    """``tree`` with ``leaf`` put into the group that ``path`` walks to (indexes wrap)."""
    groups = [v for v in tree["values"] if "values" in v]
    if not path or not groups:
        return {**tree, "values": [*tree["values"], leaf]}
    target = groups[path[0] % len(groups)]
    values = [(_insert(v, leaf, path[1:]) if v is target else v) for v in tree["values"]]
    return {**tree, "values": values}


@given(empty_groups)
def test_empty_only_groups_have_no_values_and_validate(filters: dict[str, Any]):
    validate_filters(filters)
    assert has_filter_values(filters) is False


@given(empty_groups, real_filters, st.lists(st.integers(min_value=0, max_value=10), max_size=5))
def test_one_real_filter_anywhere_gives_values(filters: dict[str, Any], leaf: dict[str, Any], path: list[int]):
    tree = _insert(filters, leaf, path)

    validate_filters(tree)
    assert has_filter_values(tree) is True


words = st.sampled_from(
    [
        "AND", "OR", "empty", "event", "person", "hogql", "cohort", "exact", "is_set", "key", "values",
        "type", "operator", "value", "label", "",
    ]
)  # fmt: skip
keys = st.sampled_from(["type", "values", "key", "operator", "value", "label", "cohort_name"]) | st.text(max_size=4)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | words
anything = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
# Property filters and groups with plausible keys and any values, so that the checks past
# the first few (type lookup, operator, value) get reached with every kind of junk.
property_like = st.fixed_dictionaries(
    {},
    optional={
        "type": words | anything,
        "key": words | anything,
        "operator": words | anything,
        "value": anything,
        "label": anything,
        "cohort_name": anything,
    },
)
junk = st.recursive(
    scalars | property_like,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys, children, max_size=5)
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["AND", "OR"]) | words | children, "values": st.lists(children, max_size=4)}
        )
        | st.fixed_dictionaries({"type": st.sampled_from(["AND", "OR"]), "values": children})
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(junk)
def test_junk_only_ever_raises_filter_error(value: Any):
    try:
        validate_filters(value)
    except FilterError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("filters")


@given(st.dictionaries(keys, junk, max_size=5) | st.fixed_dictionaries({"type": words, "values": junk}))
def test_has_filter_values_answers_any_object(value: dict[str, Any]):
    assert has_filter_values(value) in (True, False)


@given(junk)
def test_valid_junk_without_values_is_a_match_all_group(value: Any):
    # Whatever validates and holds no filter value must be made of groups and empty filters only.
    try:
        validate_filters(value)
    except FilterError:
        return
    if not has_filter_values(value):
        assert _only_empty(value)


def _only_empty(node: dict[str, Any]) -> bool:
    if "values" in node:
        return all(_only_empty(child) for child in node["values"])
    return set(node) <= {"type"} and node.get("type", "empty") == "empty"
