"""Normalising an event's properties into cymbal's exception list, and what comes out of it."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.pipeline.exceptions import (
    MAX_EXCEPTION_VALUE_BYTES,
    ExceptionInfo,
    ExceptionProperties,
    Rejected,
    exception_handled,
    no_properties,
    normalize_exception_properties,
    resolve_exception_list,
    search_properties,
    wrong_event_type,
)

EVENT = "01890000-0000-7000-8000-00000000e7e7"


def ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"id-{next(numbers)}"


def normalize(properties: dict[str, Any]) -> ExceptionProperties:
    result = normalize_exception_properties(properties, event_uuid=EVENT, new_id=ids())
    assert isinstance(result, ExceptionProperties), result
    return result


def reject(properties: dict[str, Any]) -> str:
    result = normalize_exception_properties(properties, event_uuid=EVENT, new_id=ids())
    assert isinstance(result, Rejected), result
    return result.error


def one(exception: dict[str, Any], **properties: Any) -> ExceptionProperties:
    return normalize({"$exception_list": [exception], **properties})


# --- rejections ---------------------------------------------------------------------------------


def test_rejection_texts_are_cymbals() -> None:
    assert reject({"$exception_list": []}) == f"Empty exception list: {EVENT}"
    assert reject({}) == f"Invalid properties: {EVENT}, serde error: missing field `$exception_list`"
    assert reject({"$exception_list": None}) == (
        f"Invalid properties: {EVENT}, serde error: invalid type: null, expected a sequence"
    )
    assert wrong_event_type("$pageview", EVENT).error == f"Wrong event type: $pageview for event {EVENT}"
    assert no_properties(uuid.UUID(EVENT)).error == f"No properties: {EVENT}"


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"$exception_list": {"type": "Error"}}, "invalid type: map, expected a sequence"),
        ({"$exception_list": ["Error"]}, 'invalid type: string "Error", expected struct Exception'),
        ({"$exception_list": [{"type": 5}]}, "invalid type: integer `5`, expected a string"),
        ({"$exception_list": [{"type": "E", "value": ["x"]}]}, "invalid type: sequence, expected a string"),
        ({"$exception_list": [{"type": "E", "thread_id": 2**31}]}, "expected i32"),
        ({"$exception_list": [{"type": "E", "mechanism": {"handled": "yes"}}]}, "expected a boolean"),
        ({"$exception_list": [{"type": "E", "stacktrace": {"frames": []}}]}, "missing field `type`"),
        (
            {"$exception_list": [{"type": "E", "stacktrace": {"type": "cooked", "frames": []}}]},
            "unknown variant `cooked`",
        ),
        ({"$exception_list": [{"type": "E", "stacktrace": {"type": "raw"}}]}, "missing field `frames`"),
        (
            {"$exception_list": [{"type": "E", "stacktrace": {"type": "raw", "frames": [{"platform": "go"}]}}]},
            "missing field `filename`",
        ),
        ({"$exception_list": [{"type": "E"}], "$exception_fingerprint": 7}, "expected a string"),
        ({"$exception_list": [{"type": "E"}], "$exception_handled": "true"}, "expected a boolean"),
    ],
)
def test_invalid_properties(properties: dict[str, Any], message: str) -> None:
    error = reject(properties)
    assert error.startswith(f"Invalid properties: {EVENT}, serde error: ")
    assert message in error


def test_nesting_deeper_than_64_levels_is_rejected() -> None:
    # The list is level 0, the exception 1, the stacktrace 2, frames 3, the frame 4, and its
    # code_variables 5: 60 more levels of lists put a string at level 65.
    deep: Any = "bottom"
    for _ in range(60):
        deep = [deep]
    frame = {"platform": "python", "filename": "a.py", "function": "f", "code_variables": deep}
    properties = {"$exception_list": [{"type": "E", "stacktrace": {"type": "raw", "frames": [frame]}}]}
    assert reject(properties) == f"Invalid properties: {EVENT}, serde error: Recursion limit exceeded"
    frame["code_variables"] = deep[0]
    assert isinstance(normalize(properties), ExceptionProperties)


# --- normalisation ----------------------------------------------------------------------------


def test_fresh_uuid7_ids_replace_client_ids_and_come_first() -> None:
    result = normalize_exception_properties(
        {"$exception_list": [{"type": "A", "id": "mine"}, {"value": "v", "type": "B"}]}, event_uuid=EVENT
    )
    assert isinstance(result, ExceptionProperties)
    made = [uuid.UUID(exception["id"]) for exception in result.exception_list]
    assert all(made_id.version == 7 for made_id in made) and made[0] != made[1]
    assert [list(exception)[:3] for exception in result.exception_list] == [["id", "type", "value"]] * 2


def test_missing_or_null_type_and_value_get_defaults() -> None:
    result = normalize({"$exception_list": [{"type": None, "value": None}, {}]})
    assert [(e["type"], e["value"]) for e in result.exception_list] == [("Error", ""), ("Error", "")]


def test_only_cymbals_fields_survive_in_cymbals_order() -> None:
    exception = {
        "stacktrace": None,
        "thread_id": 3,
        "module": "m",
        "mechanism": {"synthetic": False, "exception_id": 1, "source": "cause", "type": "chained", "meta": {}},
        "value": "v",
        "type": "T",
        "extra": 1,
    }
    result = one(exception).exception_list[0]
    assert result == {
        "id": "id-1",
        "type": "T",
        "value": "v",
        "mechanism": {"type": "chained", "source": "cause", "synthetic": False},
        "module": "m",
        "thread_id": 3,
    }
    assert list(result) == ["id", "type", "value", "mechanism", "module", "thread_id"]


def test_values_over_10000_bytes_are_cut_on_a_character_and_marked() -> None:
    exact = "x" * MAX_EXCEPTION_VALUE_BYTES
    assert one({"type": "E", "value": exact}).exception_list[0]["value"] == exact
    assert one({"type": "E", "value": exact + "y"}).exception_list[0]["value"] == exact + "..."
    # A 2-byte character starting at byte 9,999 is kept whole, the next one is dropped.
    value = "x" * 9999 + "éé"
    assert one({"type": "E", "value": value}).exception_list[0]["value"] == "x" * 9999 + "é..."


def test_nul_becomes_replacement_character_everywhere_in_the_list() -> None:
    frame = {"platform": "python", "filename": "a\x00.py", "function": "f", "code_variables": {"k\x00": "v\x00"}}
    result = one({"type": "E\x00", "value": "v\x00", "stacktrace": {"type": "raw", "frames": [frame]}})
    exception = result.exception_list[0]
    assert (exception["type"], exception["value"]) == ("E\ufffd", "v\ufffd")
    stack = exception.get("stacktrace")
    assert stack is not None and stack["type"] == "raw"
    assert stack["frames"][0]["filename"] == "a\ufffd.py"
    assert stack["frames"][0]["code_variables"] == {"k\x00": "v\ufffd"}  # map keys are not touched


def test_long_whitespace_is_trimmed_only_in_strings_that_needed_sanitising() -> None:
    spaces = " " * 50
    assert one({"type": "E", "value": f"a{spaces}b"}).exception_list[0]["value"] == f"a{spaces}b"
    assert one({"type": "E", "value": f"a\x00{spaces}b"}).exception_list[0]["value"] == "a\ufffd<ws trimmed>b"
    long = "z" * 600 + spaces[:49] + "|" + "\n" * 60
    assert one({"type": "E", "value": long}).exception_list[0]["value"] == "z" * 600 + spaces[:49] + "|<ws trimmed>"


def test_sanitising_does_not_modify_the_input() -> None:
    properties = {"$exception_list": [{"type": "E\x00"}]}
    before = copy.deepcopy(properties)
    normalize(properties)
    assert properties == before


def test_legacy_type_and_message_build_a_one_exception_list() -> None:
    result = normalize({"$exception_type": "ReferenceError", "$exception_message": "x is not defined"})
    assert result.exception_list == [{"id": "id-1", "type": "ReferenceError", "value": "x is not defined"}]
    assert normalize({"$exception_type": "E", "$exception_message": 5}).exception_list[0]["value"] == ""
    # $exception_list wins whenever it is present, even when it is empty.
    assert reject({"$exception_list": [], "$exception_type": "E"}) == f"Empty exception list: {EVENT}"


def test_client_fingerprint_issue_name_and_description_are_read() -> None:
    result = one({"type": "E"}, **{"$exception_fingerprint": "fp", "$issue_name": "n", "$issue_description": "d"})
    assert (result.fingerprint, result.issue_name, result.issue_description) == ("fp", "n", "d")
    assert one({"type": "E"}).fingerprint is None


@pytest.mark.parametrize(
    ("handled_property", "mechanism", "expected"),
    [
        (None, None, False),
        (None, {"handled": True}, True),
        (None, {"type": "generic"}, False),
        (True, {"handled": False}, True),
        (False, {"handled": True}, False),
    ],
)
def test_handled_precedence(handled_property: bool | None, mechanism: dict[str, Any] | None, expected: bool) -> None:
    exception: dict[str, Any] = {"type": "E"}
    if mechanism is not None:
        exception["mechanism"] = mechanism
    properties = {} if handled_property is None else {"$exception_handled": handled_property}
    assert one(exception, **properties).handled is expected


def test_handled_reads_only_the_first_exception() -> None:
    result = normalize({"$exception_list": [{"type": "A"}, {"type": "B", "mechanism": {"handled": True}}]})
    assert result.handled is False
    assert exception_handled(None, []) is False


# --- resolution and search properties -----------------------------------------------------------

PY_FRAME = {"platform": "python", "filename": "a.py", "function": "f", "lineno": 3, "context_line": "x = 1"}


def test_raw_stacks_are_resolved_and_empty_ones_dropped() -> None:
    result = normalize(
        {
            "$exception_list": [
                {"type": "A", "stacktrace": {"type": "raw", "frames": [PY_FRAME]}},
                {"type": "B", "stacktrace": {"type": "raw", "frames": []}},
                {"type": "C"},
            ]
        }
    )
    before = copy.deepcopy(result.exception_list)
    resolved = resolve_exception_list(result.exception_list)
    assert result.exception_list == before  # the input is left alone
    first, second, third = resolved.exception_list
    stack = first.get("stacktrace")
    assert stack is not None and stack["type"] == "resolved"
    assert stack["frames"][0]["source"] == "a.py"
    assert list(resolved.contexts) == [stack["frames"][0]["raw_id"]]
    assert "stacktrace" not in second and "stacktrace" not in third


def test_already_resolved_stacks_are_kept() -> None:
    frame = {"raw_id": "h/0", "mangled_name": "f", "in_app": True, "lang": "go", "resolved": True}
    result = one({"type": "A", "stacktrace": {"type": "resolved", "frames": [frame]}})
    resolved = resolve_exception_list(result.exception_list)
    assert resolved.exception_list == result.exception_list
    stack = resolved.exception_list[0].get("stacktrace")
    assert stack is not None and stack["frames"][0]["synthetic"] is False


def test_search_properties_are_distinct_in_first_seen_order() -> None:
    def frame(source: str | None, name: str | None, in_app: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"raw_id": "h/0", "mangled_name": "m", "in_app": in_app, "lang": "x", "resolved": True}
        if source is not None:
            out["source"] = source
        if name is not None:
            out["resolved_name"] = name
        return out

    exception_list: list[Any] = [
        {"type": "B", "value": "2", "stacktrace": {"type": "resolved", "frames": [frame("b.py", "g", True)]}},
        {
            "type": "A",
            "value": "1",
            "stacktrace": {
                "type": "resolved",
                "frames": [frame("lib.py", "lib", False), frame(None, "h", True), frame("a.py", None, True)],
            },
        },
        {"type": "B", "value": "2", "stacktrace": {"type": "raw", "frames": [PY_FRAME]}},
    ]
    assert search_properties(exception_list) == {
        "$exception_types": ["B", "A"],
        "$exception_values": ["2", "1"],
        "$exception_sources": ["b.py", "a.py"],
        "$exception_functions": ["g", "h"],
    }


# --- properties ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
exceptionish = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.text(max_size=10), json_values),
        "value": st.one_of(st.text(max_size=10), json_values),
        "mechanism": st.one_of(st.fixed_dictionaries({}, optional={"handled": st.booleans()}), json_values),
        "stacktrace": st.one_of(
            st.none(),
            st.fixed_dictionaries({"type": st.just("raw"), "frames": st.lists(json_values, max_size=3)}),
        ),
    },
)


@given(st.one_of(json_values, st.lists(exceptionish, max_size=3)), st.dictionaries(st.text(max_size=8), json_values))
def test_any_json_gives_a_normalised_list_or_a_rejection(exception_list: Any, others: dict[str, Any]) -> None:
    properties = {**others, "$exception_list": exception_list}
    result = normalize_exception_properties(properties, event_uuid=EVENT, new_id=ids())
    if isinstance(result, Rejected):
        assert result.error.startswith(("Invalid properties: ", "Empty exception list: "))
        return
    assert result.exception_list
    assert all(exception["id"].startswith("id-") for exception in result.exception_list)
    resolved = resolve_exception_list(result.exception_list)
    json.dumps(resolved.exception_list)  # stays JSON
    for exception in resolved.exception_list:
        stack = exception.get("stacktrace")
        assert stack is None or (stack["type"] == "resolved" and stack["frames"])


@given(st.text(max_size=12_000))
def test_values_never_exceed_the_limit_plus_one_character_and_the_mark(value: str) -> None:
    exception: ExceptionInfo = one({"type": "E", "value": value}).exception_list[0]
    size = len(exception["value"].encode("utf-8"))
    assert size <= MAX_EXCEPTION_VALUE_BYTES + 4 + 3
    if len(value.encode("utf-8")) <= MAX_EXCEPTION_VALUE_BYTES and "\x00" not in value:
        assert exception["value"] == value or len(value.encode("utf-8")) > 512
