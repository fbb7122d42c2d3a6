"""The cymbal-v1 fingerprint: hand-computed digests, cymbal's own golden values, invariants."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.pipeline.fingerprint import (
    GROUPING_VERSION,
    GROUPING_VERSIONS,
    client_fingerprint,
    custom_rule,
    custom_rule_fingerprint,
    custom_rule_record,
    generate_fingerprint,
    manual,
    manual_record,
)


def sha512(*parts: str) -> str:
    """The digest of the documented byte sequence: the parts' UTF-8 bytes, no separators."""
    hasher = hashlib.sha512()
    for part in parts:
        hasher.update(part.encode("utf-8"))
    return hasher.hexdigest()


def frame(
    mangled: str = "m",
    *,
    source: str | None = None,
    module: str | None = None,
    resolved_name: str | None = None,
    resolved: bool = True,
    in_app: bool = True,
    line: int | None = None,
    column: int | None = None,
    lang: str = "javascript",
    raw_id: str = "h/0",
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"raw_id": raw_id, "mangled_name": mangled, "in_app": in_app, "lang": lang}
    out["resolved"] = resolved
    for key, value in (
        ("source", source),
        ("module", module),
        ("resolved_name", resolved_name),
        ("line", line),
        ("column", column),
    ):
        if value is not None:
            out[key] = value
    out.update(synthetic=False, suspicious=False, **extra)
    return out


def exception(type_: str, value: str, frames: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "00000000-0000-0000-0000-000000000000", "type": type_, "value": value, **extra}
    if frames is not None:
        out["stacktrace"] = {"type": "resolved", "frames": frames}
    return out


def value_of(*exceptions: dict[str, Any]) -> str:
    return generate_fingerprint(list(exceptions)).value


MESSAGE = "Cannot read property 'foo' of undefined"

# --- cymbal's own golden values ---------------------------------------------------------------
# From PostHog/posthog rust/cymbal/tests/snapshots/fingerprint_golden__*.snap, recorded by
# rust/cymbal/tests/fingerprint_golden.rs with the same fixtures as below.


def test_cymbal_golden_no_stack() -> None:
    assert value_of(exception("TypeError", MESSAGE)) == (
        "2cb3f141543f0a80f04e8eede5c890e62baea0357447390eeffcdc6ea047470c76e266df76bdcdb8232e951701b3187942435e75ce384094b8ae192a867e8c61"
    )


def test_cymbal_golden_raw_stack_uses_type_and_message() -> None:
    raw = {
        "platform": "web:javascript",
        "function": "eF",
        "filename": "chunk-PGUQKT6S.js",
        "lineno": 64,
        "colno": 25112,
    }
    unresolved = exception("ReferenceError", "x is not defined")
    unresolved["stacktrace"] = {"type": "raw", "frames": [raw]}
    fingerprint = generate_fingerprint([unresolved])
    assert fingerprint.value == (
        "cfe0ff85d4b448eab8e16c928f8dac7b9758900752626b26e8e8bfc94c9974e8c3235b79c664518a933a6e099137eb2854c66644b582bb1c7eb66eb9d966df08"
    )
    assert fingerprint.record == [
        {"type": "exception", "id": unresolved["id"], "pieces": ["Exception Type", "Exception Message"]}
    ]


def test_cymbal_golden_all_resolved_in_app() -> None:
    fingerprint = generate_fingerprint(
        [
            exception(
                "TypeError",
                MESSAGE,
                [
                    frame("foo", source="http://example.com/alpha/foo.js", resolved_name="bar", line=10, column=5),
                    frame(
                        "bar",
                        source="http://example.com/bar.js",
                        module="app.module",
                        resolved_name="baz",
                        line=20,
                        column=15,
                    ),
                ],
            )
        ]
    )
    assert fingerprint.value == (
        "d03a8ead4f42a8a315039e016979d6ded265ca61ebe08c5114b17626dc285f133e6a62b80d8122ff6b34198223f75bc4a682968b3608f97e9b341da4a1cc3dec"
    )
    assert fingerprint.record == [
        {"type": "exception", "id": "00000000-0000-0000-0000-000000000000", "pieces": ["Exception Type"]},
        {"type": "frame", "raw_id": "h/0", "pieces": ["Source file name", "Resolved function name"]},
        {"type": "frame", "raw_id": "h/0", "pieces": ["Source file name", "Module name", "Resolved function name"]},
    ]


def test_cymbal_golden_mixed_resolved_unresolved() -> None:
    resolved = frame("foo", source="http://example.com/alpha/foo.js", resolved_name="bar", line=10, column=5)
    unresolved = frame("xyz", resolved=False, line=30, column=25)
    assert value_of(exception("TypeError", MESSAGE, [resolved, unresolved])) == (
        "6e90a17bb9377cf9a1c0da2d7d232684d83a3cbcdc5aa274446ac29a8a2fbf183ae1a46a398893e9f7e13c19725b3a0c5106458955849d901b1f9802974a15e0"
    )


def test_cymbal_golden_no_resolved_frames() -> None:
    frames = [
        frame("foo", source="http://example.com/alpha/foo.js", resolved=False, line=10, column=5),
        frame("xyz", resolved=False, line=30, column=25),
    ]
    fingerprint = generate_fingerprint([exception("TypeError", MESSAGE, frames)])
    assert fingerprint.value == (
        "3d5a74c21354d860d03b40d21a26f77cd818977efe11d4c27a082f2d3f030199f45d95841480b3ccee1376ed27f0bfa6426ef28227a469c3a67570b3edd87ded"
    )
    assert [part["pieces"] for part in fingerprint.record[1:]] == [
        ["Source file name", "Mangled function name", "Line number", "Column number", "Language"],
        ["Mangled function name", "Line number", "Column number", "Language"],
    ]


def test_cymbal_golden_no_in_app_frames() -> None:
    frames = [
        frame(
            "vendor_a", source="http://example.com/vendor.js", resolved_name="vendorA", in_app=False, line=1, column=2
        ),
        frame(
            "vendor_b", source="http://example.com/vendor.js", resolved_name="vendorB", in_app=False, line=3, column=4
        ),
    ]
    assert value_of(exception("TypeError", MESSAGE, frames)) == (
        "1788821bac39fa21171ae3e767263fb24ebb6c5d76298f47de8c4b64d165db44a26600e7c9b3b089ab3cb62b0c4d46e1be01f8963040d4016c266478194789aa"
    )


def test_cymbal_golden_chained_exceptions() -> None:
    outer = exception(
        "WrapperError", "wrapped", [frame("outer", source="http://example.com/outer.js", resolved_name="outerFn")]
    )
    assert value_of(outer, exception("RootError", "root cause")) == (
        "6eee563d6d6696de053d8e06bbe9730ba056cf8778441bb38565daf10750791fc241e64de2c3a990b4381b9ff9ee5c89533348f258d736b13b14157134989226"
    )


# --- hand-computed digests ---------------------------------------------------------------------


def test_no_stack_hashes_type_then_value() -> None:
    assert value_of(exception("ValueError", "bad")) == sha512("ValueError", "bad")
    # No separators: the parts run together, exactly as cymbal feeds them.
    assert value_of(exception("ValueError", "bad")) == value_of(exception("Value", "Errorbad"))


def test_resolved_frame_hashes_source_module_then_resolved_name() -> None:
    f = frame("m", source="app.py", module="__main__", resolved_name="handle", line=3, lang="python")
    assert value_of(exception("E", "ignored", [f])) == sha512("E", "app.py", "__main__", "handle")


def test_unresolved_frame_hashes_source_module_mangled_line_column_lang() -> None:
    f = frame("Kt", source="/a.js", module="m", resolved=False, line=1, column=48213)
    assert value_of(exception("E", "ignored", [f])) == sha512("E", "/a.js", "m", "Kt", "1", "48213", "javascript")
    bare = frame("Kt", resolved=False)
    assert value_of(exception("E", "ignored", [bare])) == sha512("E", "Kt", "javascript")


def test_chained_exceptions_feed_one_hasher_in_list_order() -> None:
    a = exception("A", "a", [frame("f", resolved_name="f")])
    b = exception("B", "b")
    assert value_of(a, b) == sha512("A", "f", "B", "b")
    assert value_of(b, a) == sha512("B", "b", "A", "f")


def test_utf8_bytes_are_hashed() -> None:
    assert value_of(exception("Fehler", "Größe 数据 🚀")) == sha512("Fehler", "Größe 数据 🚀")


# --- frame selection ----------------------------------------------------------------------------


def test_no_in_app_frame_uses_only_the_first_frame_even_unresolved() -> None:
    frames = [frame("a", resolved=False, in_app=False, line=1), frame("b", resolved_name="b", in_app=False)]
    assert value_of(exception("E", "x", frames)) == sha512("E", "a", "1", "javascript")


def test_in_app_resolved_frames_only_when_any_is_resolved() -> None:
    frames = [
        frame("lib", resolved_name="lib", in_app=False),
        frame("u", resolved=False, line=9),
        frame("r1", resolved_name="r1"),
        frame("r2", resolved_name="r2", source="s"),
    ]
    fingerprint = generate_fingerprint([exception("E", "x", frames)])
    assert fingerprint.value == sha512("E", "r1", "s", "r2")
    assert len(fingerprint.record) == 3


def test_all_in_app_frames_when_none_is_resolved() -> None:
    frames = [frame("a", resolved=False, line=1), frame("b", resolved=False, in_app=False), frame("c", resolved=False)]
    assert value_of(exception("E", "x", frames)) == sha512("E", "a", "1", "javascript", "c", "javascript")


def test_an_empty_resolved_stack_hashes_only_the_type() -> None:
    fingerprint = generate_fingerprint([exception("E", "x", [])])
    assert fingerprint.value == sha512("E")
    assert fingerprint.record == [
        {"type": "exception", "id": "00000000-0000-0000-0000-000000000000", "pieces": ["Exception Type"]}
    ]


def test_record_part_shape_and_missing_exception_id() -> None:
    no_id = {"type": "E", "value": "x"}
    fingerprint = generate_fingerprint([no_id])
    assert fingerprint.record == [{"type": "exception", "id": None, "pieces": ["Exception Type", "Exception Message"]}]
    assert [list(part) for part in fingerprint.record] == [["type", "id", "pieces"]]


# --- overrides and versions ----------------------------------------------------------------------


def test_client_fingerprint_is_hashed_past_64_utf8_bytes() -> None:
    assert client_fingerprint("a" * 64) == "a" * 64
    assert client_fingerprint("a" * 65) == hashlib.sha512(b"a" * 65).hexdigest()
    assert client_fingerprint("é" * 32) == "é" * 32  # 64 bytes
    assert client_fingerprint("é" * 33) == hashlib.sha512(("é" * 33).encode()).hexdigest()  # 66 bytes, 33 characters
    assert manual("x") == manual("x") and manual("x").record == [{"type": "manual"}] == manual_record()


def test_custom_rule_fingerprint_and_record() -> None:
    rule = uuid.UUID("0192C2A0-1111-7000-8000-00000000ABCD")
    assert custom_rule_fingerprint(rule) == "custom-rule:0192c2a0-1111-7000-8000-00000000abcd"
    assert custom_rule_fingerprint(str(rule).upper()) == custom_rule_fingerprint(rule)
    assert custom_rule_record(rule) == [{"type": "custom", "rule_id": "0192c2a0-1111-7000-8000-00000000abcd"}]
    assert custom_rule(rule).value == custom_rule_fingerprint(rule)


def test_versions_are_registered_and_frozen() -> None:
    assert GROUPING_VERSION == "cymbal-v1" and GROUPING_VERSION in GROUPING_VERSIONS
    with pytest.raises(TypeError):
        GROUPING_VERSIONS["cymbal-v2"] = GROUPING_VERSIONS[GROUPING_VERSION]
    with pytest.raises(ValueError, match="unknown grouping version"):
        generate_fingerprint([], "sentry-legacy")


# --- invariants ----------------------------------------------------------------------------------

texts = st.text(max_size=12)
frames_st = st.builds(
    frame,
    mangled=texts,
    source=st.none() | texts,
    module=st.none() | texts,
    resolved_name=st.none() | texts,
    resolved=st.booleans(),
    in_app=st.booleans(),
    line=st.none() | st.integers(0, 2**32 - 1),
    column=st.none() | st.integers(0, 2**32 - 1),
    lang=st.sampled_from(["javascript", "python", "go"]),
    raw_id=st.from_regex(r"[0-9a-f]{8}/[0-9]", fullmatch=True),
)
exceptions_st = st.builds(exception, type_=texts, value=texts, frames=st.none() | st.lists(frames_st, max_size=5))
lists_st = st.lists(exceptions_st, min_size=1, max_size=3)


@given(lists_st)
def test_fingerprints_are_deterministic_128_lowercase_hex(exception_list: list[dict[str, Any]]) -> None:
    first = generate_fingerprint(exception_list)
    assert first == generate_fingerprint(exception_list)
    assert len(first.value) == 128 and set(first.value) <= set("0123456789abcdef")


@given(lists_st, st.lists(st.uuids(), min_size=3, max_size=3))
def test_exception_ids_raw_ids_and_non_contributing_fields_do_not_matter(
    exception_list: list[dict[str, Any]], ids: list[uuid.UUID]
) -> None:
    changed = []
    for exc, new_id in zip(exception_list, ids, strict=False):
        altered = {**exc, "id": str(new_id), "mechanism": {"handled": True}, "module": "mod", "thread_id": 1}
        stack = exc.get("stacktrace")
        if stack is not None:
            altered["stacktrace"] = {
                "type": "resolved",
                "frames": [
                    {
                        **f,
                        "raw_id": f"{new_id.hex}/7",
                        "resolve_failure": "why",
                        "synthetic": True,
                        "suspicious": True,
                        "code_variables": {"a": 1},
                    }
                    for f in stack["frames"]
                ],
            }
        changed.append(altered)
    assert generate_fingerprint(changed).value == generate_fingerprint(exception_list).value


@given(exceptions_st.filter(lambda e: "stacktrace" in e), texts)
def test_message_is_ignored_with_a_resolved_stack(exc: dict[str, Any], other_value: str) -> None:
    assert value_of(exc) == value_of({**exc, "value": other_value})


@given(st.lists(frames_st, max_size=4), st.lists(frames_st, max_size=4), texts)
def test_unresolved_frames_are_ignored_when_an_in_app_frame_is_resolved(
    frames: list[dict[str, Any]], extra: list[dict[str, Any]], name: str
) -> None:
    anchor = frame("anchor", resolved_name=name, resolved=True, in_app=True)
    base = [anchor, *frames]
    noisy = [anchor, *frames, *({**f, "resolved": False} for f in extra)]
    assert value_of(exception("E", "x", base)) == value_of(exception("E", "x", noisy))


@given(st.lists(frames_st, max_size=4), st.lists(frames_st, max_size=4))
def test_non_in_app_frames_are_ignored_when_an_in_app_frame_exists(
    frames: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> None:
    anchor = frame("anchor", resolved_name="a", in_app=True)
    base = [anchor, *frames]
    noisy = [*base, *({**f, "in_app": False} for f in extra)]
    assert value_of(exception("E", "x", base)) == value_of(exception("E", "x", noisy))
