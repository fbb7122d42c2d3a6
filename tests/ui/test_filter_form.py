"""The rule form's filter builder: rows ⇄ PostHog's filter JSON, and filters in words (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.api.schemas.rules import AssignmentRuleCreate, SuppressionRuleCreate
from trapline.rules.evaluate import Subject, matches
from trapline.ui.filter_form import (
    LIST_OPERATORS,
    NO_VALUE_OPERATORS,
    OPERATOR_CHOICES,
    Condition,
    FilterForm,
    FormProblems,
    describe,
    form_from_rows,
    from_filters,
    humanize_filter_error,
    to_filters,
)

TYPE_ERROR = Condition("$exception_types", "exact", "TypeError")
ADMIN = Condition("$current_url", "icontains", "/admin")


def test_rows_become_the_nested_group_posthogs_rule_editor_saves():
    form = FilterForm(match="OR", conditions=(TYPE_ERROR, ADMIN))
    assert to_filters(form) == {
        "type": "AND",
        "values": [
            {
                "type": "OR",
                "values": [
                    {"key": "$exception_types", "type": "event", "operator": "exact", "value": ["TypeError"]},
                    {"key": "$current_url", "type": "event", "operator": "icontains", "value": "/admin"},
                ],
            }
        ],
    }


def test_a_flat_rule_stays_flat():
    flat = {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "is_not", "value": ["web"]}]}
    form = from_filters(flat)
    assert form is not None and not form.nested
    assert to_filters(form) == flat


def test_posted_rows_drop_blank_ones_and_keep_the_order():
    form = form_from_rows(
        "AND",
        ["$exception_types", "", " $current_url ", ""],
        ["exact", "exact", "regex", "is_set"],
        ["TypeError\r\nRangeError", "", "^/admin", ""],
        ["event", "event", "person", "event"],
    )
    assert form.conditions == (
        Condition("$exception_types", "exact", "TypeError\nRangeError"),
        Condition("$current_url", "regex", "^/admin", "person"),
    )
    values = to_filters(form)["values"][0]["values"]
    assert values[0]["value"] == ["TypeError", "RangeError"]
    assert values[1] == {"key": "$current_url", "type": "person", "operator": "regex", "value": "^/admin"}


def test_several_lines_for_a_text_operator_mean_any_of_them():
    filters = to_filters(FilterForm(conditions=(Condition("$exception_values", "icontains", "timeout\nreset"),)))
    assert filters["values"][0]["values"][0]["value"] == ["timeout", "reset"]
    assert matches(filters, Subject(properties={"$exception_values": ["connection reset by peer"]}))
    assert not matches(filters, Subject(properties={"$exception_values": ["bad quantity"]}))


def test_operators_without_a_value_get_none():
    filters = to_filters(FilterForm(conditions=(Condition("email", "is_set", "", "person"),)))
    assert filters["values"][0]["values"] == [{"key": "email", "type": "person", "operator": "is_set"}]


def test_no_conditions_is_the_match_all_group():
    assert to_filters(FilterForm(match="OR")) == {"type": "OR", "values": []}


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (Condition("$exception_types", "exact", ""), "Condition 1 ($exception_types is exactly …) needs a value"),
        (Condition("", "exact", "TypeError"), "Condition 1 has a value but no property"),
    ],
)
def test_half_filled_rows_are_named(condition: Condition, words: str):
    with pytest.raises(FormProblems) as caught:
        to_filters(FilterForm(conditions=(condition,)))
    assert words in str(caught.value)


def test_every_half_filled_row_is_reported_at_once():
    form = FilterForm(conditions=(Condition("a", "regex", " "), TYPE_ERROR, Condition("", "exact", "x")))
    with pytest.raises(FormProblems) as caught:
        to_filters(form)
    assert [p.split(" ")[1] for p in caught.value.problems] == ["1", "3"]


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "AND", "values": [{"type": "OR", "values": [{"type": "AND", "values": []}]}]},  # deeper groups
        {"type": "AND", "values": [{"key": "$exception_handled", "type": "event", "operator": "exact", "value": True}]},
        {"type": "AND", "values": [{"key": "n", "type": "event", "operator": "exact", "value": 5}]},
        {"type": "AND", "values": [{"key": "k", "type": "event", "operator": "exact", "value": [" padded"]}]},
        {"type": "AND", "values": [{"key": "k", "type": "event", "operator": "exact", "value": []}]},
        {"type": "AND", "values": [{"key": "k", "type": "event", "operator": "exact", "label": "x", "value": "v"}]},
        {"type": "AND", "values": [{"key": "k", "type": "person", "value": "v"}]},  # no operator
        {"type": "AND", "values": [{"key": "k", "type": "event", "operator": "exact"}]},  # no value: "is not set"
        {"type": "AND", "values": [{"key": 7, "type": "event", "operator": "exact", "value": ["x"]}]},
        {"type": "XOR", "values": []},
        "not an object",
    ],
)
def test_filters_rows_cannot_show_go_to_the_json_editor(filters: Any):
    assert from_filters(filters) is None


def test_numbers_for_numeric_operators_are_shown_as_text():
    form = from_filters({"type": "AND", "values": [{"key": "n", "type": "event", "operator": "gt", "value": 2.5}]})
    assert form is not None and form.conditions[0].value == "2.5"
    # Numeric operators read "2.5" as 2.5: the rule means the same once saved from the form.
    assert matches(to_filters(form), Subject(properties={"n": 3}))
    assert not matches(to_filters(form), Subject(properties={"n": 2}))


def test_a_filter_without_operator_is_an_exact_one_and_empty_filters_are_skipped():
    form = from_filters(
        {"type": "AND", "values": [{"type": "empty"}, {"key": "$lib", "type": "event", "value": ["web"]}]}
    )
    assert form is not None
    assert form.conditions == (Condition("$lib", "exact", "web"),)


def test_what_the_builder_makes_is_what_the_api_schemas_take():
    form = FilterForm(match="OR", conditions=(TYPE_ERROR, ADMIN, Condition("email", "is_not_set", "", "person")))
    filters = to_filters(form)
    assert SuppressionRuleCreate.model_validate({"filters": filters}).filters == filters
    assert AssignmentRuleCreate.model_validate({"filters": filters, "assignee": {"type": "user", "id": 1}})


def test_in_words():
    filters = to_filters(FilterForm(conditions=(TYPE_ERROR, ADMIN)))
    assert describe(filters) == "$exception_types is exactly TypeError AND $current_url contains /admin"
    assert describe({"type": "AND", "values": []}) == "every event"
    assert describe(
        {
            "type": "OR",
            "values": [
                {"key": "email", "type": "person", "operator": "is_set"},
                {
                    "type": "AND",
                    "values": [
                        {"key": "$exception_types", "type": "event", "operator": "is_not", "value": ["A", "B"]},
                        {"key": "n", "type": "event", "operator": "between", "value": [1, 5]},
                    ],
                },
            ],
        }
    ) == ("person email is set OR ($exception_types is none of A, B AND n is between 1 and 5)")


@pytest.mark.parametrize("junk", [None, [], "x", {"values": "x"}, {"type": "AND", "values": [1, {"a": 1}]}])
def test_any_stored_filters_can_be_put_in_words(junk: Any):
    assert describe(junk)


def test_api_errors_name_rows_not_json_paths():
    nested = FilterForm(conditions=(TYPE_ERROR, ADMIN))
    message = "Invalid filters payload: filters.values[0].values[1].operator 'foo' is not a known operator."
    assert humanize_filter_error(message, nested) == (
        "Invalid filters payload: condition 2.operator 'foo' is not a known operator."
    )
    flat = FilterForm(conditions=(TYPE_ERROR,), nested=False)
    assert humanize_filter_error("filters.values[0].type 'x' is not…", flat) == "condition 1.type 'x' is not…"
    assert humanize_filter_error(message, None) == message


# --- round trips ---------------------------------------------------------------------------

_line = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1).map(str.strip)
_lines = st.lists(_line.filter(bool), min_size=1, max_size=3)
_operators = st.sampled_from([op for op, _ in OPERATOR_CHOICES] + ["in", "not_in", "between", "icontains_multi"])


@st.composite
def _conditions(draw: st.DrawFn) -> Condition:
    operator = draw(_operators)
    value = "" if operator in NO_VALUE_OPERATORS else "\n".join(draw(_lines))
    return Condition(
        key=draw(_line.filter(bool)),
        operator=operator,
        value=value,
        type=draw(st.sampled_from(["event", "person", "error_tracking_issue_property"])),
    )


_forms = st.builds(
    FilterForm,
    match=st.sampled_from(["AND", "OR"]),
    conditions=st.lists(_conditions(), min_size=1, max_size=4).map(tuple),
    nested=st.booleans(),
)


@given(_forms)
def test_a_form_survives_the_trip_through_json(form: FilterForm):
    filters = to_filters(form)
    assert from_filters(filters) == form
    assert to_filters(from_filters(filters) or FilterForm()) == filters


@given(_forms)
def test_what_the_form_makes_always_passes_the_api_schema(form: FilterForm):
    filters = to_filters(form)
    assert SuppressionRuleCreate.model_validate({"filters": filters}).filters == filters


@given(_forms)
def test_list_operators_always_store_lists(form: FilterForm):
    for prop in to_filters(form)["values"][0]["values"] if form.nested else to_filters(form)["values"]:
        if prop["operator"] in LIST_OPERATORS:
            assert isinstance(prop["value"], list)
        elif prop["operator"] in NO_VALUE_OPERATORS:
            assert "value" not in prop
