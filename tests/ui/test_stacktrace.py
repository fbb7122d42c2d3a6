"""Shaping an event's exceptions, frames and fingerprint record for the issue page (pure)."""

from __future__ import annotations

from typing import Any

from trapline.ui.stacktrace import (
    CodeLine,
    chain_label,
    chain_summary,
    context_lines,
    exception_views,
    fingerprint_origin,
    frame_keys,
    record_lines,
    show_value,
)


def frame(name: str, *, in_app: bool = True, raw_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "raw_id": raw_id or f"{name}-hash/0",
        "mangled_name": name,
        "resolved_name": name,
        "source": f"src/{name}.js",
        "line": 3,
        "column": 7,
        "in_app": in_app,
        "lang": "javascript",
        "resolved": True,
        "synthetic": False,
        "suspicious": False,
        **extra,
    }


def exception(type_: str, *frames: dict[str, Any], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": f"id-{type_}", "type": type_, "value": f"{type_} happened", **extra}
    if frames:
        entry["stacktrace"] = {"type": "resolved", "frames": list(frames)}
    return entry


STACK = [exception("TypeError", frame("vendor", in_app=False), frame("outer"), frame("inner"))]


def names(view: Any) -> list[str]:
    return [f.name for f in view.frames]


def test_in_app_frames_by_default_all_on_request_in_stored_order_or_reversed():
    [view] = exception_views(STACK)
    assert names(view) == ["outer", "inner"]
    assert (view.total_frames, view.in_app_frames, view.hidden_frames) == (3, 2, 1)
    assert names(exception_views(STACK, all_frames=True)[0]) == ["vendor", "outer", "inner"]
    assert names(exception_views(STACK, all_frames=True, newest_first=True)[0]) == ["inner", "outer", "vendor"]
    # The index is the frame's place in the stored stack, whatever is shown.
    assert [f.index for f in exception_views(STACK)[0].frames] == [1, 2]


def test_a_stack_without_in_app_frames_is_shown_whole():
    [view] = exception_views([exception("Error", frame("a", in_app=False), frame("b", in_app=False))])
    assert names(view) == ["a", "b"] and view.hidden_frames == 0


def test_frame_fields_location_and_failure():
    failed = frame("Kt", resolved=False, resolve_failure="Token not found for frame: Kt:1:9", resolved_name=None)
    failed.pop("resolved_name")
    failed["mangled_name"] = "Kt"
    renamed = frame("checkout", mangled_name="a.b", module="shop.cart")
    [view] = exception_views([exception("Error", failed, renamed)])
    first, second = view.frames
    assert (first.name, first.resolved, first.failure, first.mangled_name) == (
        "Kt",
        False,
        "Token not found for frame: Kt:1:9",
        None,
    )
    assert first.location == "src/Kt.js:3:7"
    assert (second.name, second.mangled_name, second.module) == ("checkout", "a.b", "shop.cart")
    no_column = exception_views([exception("E", frame("f", column=None))])[0].frames[0]
    assert no_column.location == "src/f.js:3"
    # A de-obfuscated Java frame whose mapping names no file is placed by its class.
    java = frame("unitPrice", source=None, column=None, module="com.example.shop.PriceCalculator", line=23)
    assert exception_views([exception("E", java)])[0].frames[0].location == "com.example.shop.PriceCalculator:23"


def test_contexts_come_from_the_stored_table_and_fall_back_to_the_raw_frame():
    stored = {
        "before": [{"number": 9, "line": "b()"}, {"number": 8, "line": "a()"}],  # nearest first, as cymbal
        "line": {"number": 10, "line": "boom()"},
        "after": [{"number": 11, "line": "c()"}],
    }
    raw = {
        "platform": "python",
        "filename": "app.py",
        "function": "g",
        "lineno": 5,
        "context_line": "g()",
        "pre_context": ["x = 1"],
        "post_context": [],
    }
    stack = [exception("E", frame("f", raw_id="f/0"), frame("g", raw_id="g/0"), frame("h", raw_id="h/0"))]
    f, g, h = exception_views(stack, contexts={"f/0": stored}, unresolved={"g/0": raw})[0].frames
    assert f.context == [
        CodeLine(8, "a()"),
        CodeLine(9, "b()"),
        CodeLine(10, "boom()", current=True),
        CodeLine(11, "c()"),
    ]
    assert g.context == [CodeLine(4, "x = 1"), CodeLine(5, "g()", current=True)]
    assert g.raw is not None and '"platform": "python"' in g.raw
    assert (h.context, h.raw, h.expandable) == ([], None, False)


def test_code_variables_are_shown_as_text():
    [view] = exception_views([exception("E", frame("f", code_variables={"n": 3, "s": "'x'", "d": {"k": [1]}}))])
    variables = dict(view.frames[0].variables)
    assert variables["n"] == "3" and variables["s"] == "'x'"
    assert '"k": [' in variables["d"]
    assert view.frames[0].expandable


def test_frames_of_the_fingerprint_are_marked():
    record = [{"type": "exception", "id": "id-TypeError", "pieces": []}, {"type": "frame", "raw_id": "inner-hash/0"}]
    [view] = exception_views(STACK, record=record)
    assert [f.grouped for f in view.frames] == [False, True]


def test_exception_chain_labels_and_mechanism():
    cause = exception("KeyError", mechanism={"handled": True, "type": "generic", "source": "cause"})
    context = exception("OSError", mechanism={"source": "context"})
    plain = exception("Error")
    views = exception_views(
        [exception("ValueError", mechanism={"handled": False, "type": "onerror"}), cause, context, plain]
    )
    assert [v.chain for v in views] == [None, "Caused by", "Raised while handling", "Caused by"]
    assert (views[0].handled, views[0].mechanism, views[1].handled, views[3].handled) == (False, "onerror", True, None)
    assert chain_summary(views) == "ValueError ← KeyError ← OSError ← Error"
    assert chain_label({"mechanism": {"source": "member"}}, 2) == "Member of the group"


def test_stackless_and_unresolved_stacks():
    raw = {"id": "r", "type": "E", "value": "v", "stacktrace": {"type": "raw", "frames": [{"platform": "python"}]}}
    none, unresolved = exception_views([exception("NoStack"), raw])
    assert (none.has_stack, none.frames) == (False, [])
    assert (unresolved.has_stack, unresolved.resolved_stack) == (True, False)


def test_odd_values_do_not_raise():
    odd: list[Any] = [
        "text",
        {"type": None, "value": 3, "mechanism": "x", "stacktrace": {"type": "resolved", "frames": ["x", {}]}},
        {"stacktrace": "nope"},
    ]
    views = exception_views(odd, contexts={"": "bad"}, unresolved={"": {"platform": 7}}, record="x")
    assert [v.type for v in views] == ["Error", "Error"]
    [blank] = views[0].frames
    assert (blank.name, blank.raw_id, blank.in_app, blank.resolved) == ("<unknown>", "", True, True)
    assert exception_views(None) == [] and exception_views({"not": "a list"}) == []
    assert context_lines({"before": [{"number": "1", "line": "x"}], "line": None, "after": "x"}) == []
    assert record_lines("nonsense", None) == []


def test_frame_keys_are_the_stack_frame_table_keys():
    stack = [
        exception("A", frame("f", raw_id="abc/2"), frame("g", raw_id="abc/2")),
        exception("B", frame("h", raw_id="def")),
    ]
    assert frame_keys(stack) == [("abc", 2), ("def", 0)]
    assert frame_keys([exception("C", {"raw_id": None})]) == []


def test_record_lines_name_what_was_hashed():
    exceptions = [exception("TypeError", frame("checkout"))]
    record = [
        {"type": "exception", "id": "id-TypeError", "pieces": ["Exception Type", "Exception Message"]},
        {"type": "frame", "raw_id": "checkout-hash/0", "pieces": ["Source file name", "Resolved function name"]},
        {"type": "frame", "raw_id": "gone-hash-0123456789/0", "pieces": ["Mangled function name", "Line number"]},
    ]
    lines = record_lines(record, exceptions)
    assert [(line.kind, line.subject, line.pieces) for line in lines] == [
        ("exception", "TypeError", ["type", "message"]),
        ("frame", "checkout in src/checkout.js", ["file", "function"]),
        ("frame", "frame gone-hash-01…", ["mangled name", "line"]),
    ]
    [rule] = record_lines([{"type": "custom", "rule_id": "r-1"}], exceptions)
    assert (rule.kind, rule.rule_id) == ("custom", "r-1")


def test_fingerprint_origin():
    assert fingerprint_origin("custom-rule:1", None) == "rule"
    assert fingerprint_origin("x", [{"type": "custom", "rule_id": "1"}]) == "rule"
    assert fingerprint_origin("mine", [{"type": "manual"}]) == "manual"
    assert fingerprint_origin("abc", [{"type": "exception", "id": None, "pieces": []}]) == "computed"
    assert fingerprint_origin("abc", None) == "unknown"


def test_show_value_cuts_long_values():
    assert show_value("x" * 10) == "x" * 10
    long = show_value("y" * 5000)
    assert len(long) == 2001 and long.endswith("…")
    assert show_value({"b": 1, "a": [True, None]}) == '{\n  "a": [\n    true,\n    null\n  ],\n  "b": 1\n}'
    assert show_value({1, 2}).startswith("{")  # not JSON: shown as Python writes it
