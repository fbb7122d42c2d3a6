"""Raw frames to resolved frames: raw ids, per-platform fields, the "was minified" rules."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.pipeline.frames import (
    JsResolveError,
    JsResolveErrorKind,
    ResolvedFrame,
    WireError,
    js_frame_without_symbols,
    node_frame_without_symbols,
    normalize_resolved_frame,
    raw_frame_context,
    raw_frame_hash,
    resolve_frame,
    resolve_stack,
    suspicious_source,
    validate_raw_frame,
)


def sha512(*parts: bytes) -> str:
    """The digest of the documented byte sequence, computed independently of the code."""
    hasher = hashlib.sha512()
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def be32(value: int) -> bytes:
    return struct.pack(">I", value)


PYTHON = {
    "platform": "python",
    "filename": "app.py",
    "abs_path": "/srv/app/app.py",
    "function": "handle",
    "module": "__main__",
    "lineno": 15,
    "context_line": "    raise ValueError()",
    "pre_context": ["def handle():", "    x = 1"],
    "post_context": ["", "handle()"],
    "in_app": True,
}


# --- raw ids ----------------------------------------------------------------------------------


def test_python_raw_id_hashes_context_filename_function_line_module_and_context_lines() -> None:
    expected = sha512(
        b"    raise ValueError()",
        b"app.py",
        b"handle",
        be32(15),
        b"__main__",
        b"def handle():",
        b"    x = 1",
        b"",
        b"handle()",
    )
    assert raw_frame_hash(PYTHON) == expected
    assert resolve_frame(PYTHON).frame["raw_id"] == f"{expected}/0"


def test_python_raw_id_without_optional_parts_uses_four_zero_bytes_for_the_line() -> None:
    raw = {"platform": "python", "filename": "app.py", "function": "main"}
    assert raw_frame_hash(raw) == sha512(b"app.py", b"main", b"\x00\x00\x00\x00")


def test_python_raw_id_ignores_abs_path_in_app_and_code_variables() -> None:
    other = {**PYTHON, "abs_path": "/elsewhere/app.py", "in_app": False, "code_variables": {"x": 1}}
    assert raw_frame_hash(other) == raw_frame_hash(PYTHON)


def test_node_raw_id_is_python_shaped_and_ignores_colno_and_chunk_id() -> None:
    raw = {"platform": "node:javascript", "filename": "/srv/a.js", "function": "f", "lineno": 70000, "module": "a"}
    expected = sha512(b"/srv/a.js", b"f", be32(70000), b"a")
    assert raw_frame_hash(raw) == expected
    assert raw_frame_hash({**raw, "colno": 5, "chunk_id": "c"}) == expected


def test_ruby_raw_id_has_no_module() -> None:
    raw = {"platform": "ruby", "filename": "a.rb", "function": "f", "lineno": 2, "module": "M", "context_line": "x"}
    assert raw_frame_hash(raw) == sha512(b"x", b"a.rb", b"f", be32(2))


def test_web_js_raw_id_hashes_function_location_as_text_and_filename() -> None:
    raw = {
        "platform": "web:javascript",
        "filename": "https://x.com/a.js",
        "function": "Kt",
        "lineno": 1,
        "colno": 48213,
    }
    assert raw_frame_hash(raw) == sha512(b"Kt", b"1", b"48213", b"https://x.com/a.js")
    assert raw_frame_hash({**raw, "platform": "javascript"}) == raw_frame_hash(raw)


def test_web_js_raw_id_without_a_full_location_or_filename() -> None:
    only_line = {"platform": "web:javascript", "filename": "https://x.com/a.js", "function": "Kt", "lineno": 1}
    assert raw_frame_hash(only_line) == sha512(b"Kt", b"https://x.com/a.js")
    assert raw_frame_hash({"platform": "web:javascript", "function": "Kt"}) == sha512(b"Kt", b"")


def test_go_raw_id() -> None:
    raw = {"platform": "go", "filename": "main.go", "function": "main.main", "lineno": 42}
    assert raw_frame_hash(raw) == sha512(b"main.go", b"main.main", be32(42))


def test_custom_raw_id_includes_lang_and_resolved_as_text() -> None:
    raw = {
        "platform": "custom",
        "lang": "elixir",
        "function": "f/1",
        "filename": "lib/a.ex",
        "lineno": 3,
        "colno": 9,
        "module": "A",
        "context_line": "c",
        "pre_context": ["p"],
        "post_context": ["q"],
        "resolved": True,
    }
    assert raw_frame_hash(raw) == sha512(
        b"c", b"lib/a.ex", b"f/1", be32(3), be32(9), b"elixir", b"true", b"A", b"p", b"q"
    )
    minimal = {"platform": "custom", "lang": "lua", "function": "g"}
    assert raw_frame_hash(minimal) == sha512(b"g", be32(0), be32(0), b"lua", b"false")


def test_raw_id_hashes_utf8() -> None:
    raw = {"platform": "go", "filename": "é.go", "function": "数", "lineno": 1}
    assert raw_frame_hash(raw) == sha512("é.go".encode(), "数".encode(), be32(1))


# --- per-platform frames ---------------------------------------------------------------------


def test_python_frame_fields_in_cymbal_order() -> None:
    frame, context = resolve_frame({**PYTHON, "code_variables": {"user_id": 5}})
    assert list(frame) == [
        "raw_id",
        "mangled_name",
        "line",
        "source",
        "module",
        "in_app",
        "resolved_name",
        "lang",
        "resolved",
        "synthetic",
        "suspicious",
        "code_variables",
    ]
    assert frame["mangled_name"] == frame["resolved_name"] == "handle"
    assert (frame["line"], frame["source"], frame["module"], frame["lang"]) == (15, "app.py", "__main__", "python")
    assert frame["resolved"] is True and frame["synthetic"] is False and frame["suspicious"] is False
    assert frame["code_variables"] == {"user_id": 5}
    assert "column" not in frame and "resolve_failure" not in frame
    assert context is not None


def test_missing_in_app_defaults_to_true_and_null_code_variables_are_omitted() -> None:
    raw = {"platform": "python", "filename": "threading.py", "function": "run", "code_variables": None}
    frame = resolve_frame(raw).frame
    assert frame["in_app"] is True
    assert "code_variables" not in frame


def test_explicit_null_in_app_is_invalid_like_in_serde() -> None:
    assert validate_raw_frame({"platform": "python", "filename": "a", "function": "f", "in_app": None}) == (
        "invalid type: null, expected a boolean"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"platform": "python", "filename": "a.py"}, "missing field `function`"),
        ({"platform": "python", "filename": "a.py", "function": "f", "lineno": -1}, "invalid value: integer `-1`"),
        ({"platform": "python", "filename": "a.py", "function": "f", "lineno": 1.5}, "invalid type: floating point"),
        ({"platform": "python", "filename": "a.py", "function": "f", "pre_context": [1]}, "expected a string"),
        ({"platform": "go", "filename": "a.go", "function": "f"}, "missing field `lineno`"),
        ({"platform": "custom", "function": "f"}, "missing field `lang`"),
        ({"platform": "web:javascript", "function": "f", "chunk_id": "a", "chunkId": "b"}, "duplicate field"),
        ("not a frame", "invalid type: string"),
    ],
)
def test_frames_cymbal_cannot_read(raw: Any, message: str) -> None:
    problem = validate_raw_frame(raw)
    assert problem is not None and message in problem
    with pytest.raises(WireError):
        resolve_frame(raw)


def test_ruby_frame_drops_module() -> None:
    frame = resolve_frame({"platform": "ruby", "filename": "a.rb", "function": "f", "module": "M"}).frame
    assert frame["lang"] == "ruby" and "module" not in frame


def test_go_frame() -> None:
    frame = resolve_frame({"platform": "go", "filename": "main.go", "function": "main.main", "lineno": 42}).frame
    assert (frame["source"], frame["line"], frame["lang"], frame["resolved"]) == ("main.go", 42, "go", True)
    assert frame["resolved_name"] == "main.main" and "column" not in frame


@pytest.mark.parametrize("resolved", [True, False])
def test_custom_frame_keeps_resolved_flag_and_always_has_a_resolved_name(resolved: bool) -> None:
    raw = {"platform": "custom", "lang": "elixir", "function": "f/1", "lineno": 3, "colno": 4, "resolved": resolved}
    frame = resolve_frame(raw).frame
    assert frame["resolved"] is resolved and frame["resolved_name"] == "f/1"
    assert (frame["lang"], frame["line"], frame["column"]) == ("elixir", 3, 4)


def test_custom_resolved_defaults_to_false() -> None:
    assert resolve_frame({"platform": "custom", "lang": "lua", "function": "g"}).frame["resolved"] is False


def test_node_frame_without_chunk_id_passes_through_without_column() -> None:
    raw = {
        "platform": "node:javascript",
        "filename": "/srv/a.js",
        "function": "f",
        "lineno": 3,
        "colno": 9,
        "module": "m",
    }
    frame = resolve_frame(raw).frame
    assert (frame["source"], frame["line"], frame["lang"], frame["module"]) == ("/srv/a.js", 3, "javascript", "m")
    assert "column" not in frame and frame["resolved"] is True and frame["resolved_name"] == "f"


def test_node_frame_with_chunk_id_but_no_position_passes_through() -> None:
    raw = {"platform": "node:javascript", "filename": "/srv/a.js", "function": "f", "lineno": 3, "chunk_id": "c"}
    assert resolve_frame(raw).frame["source"] == "/srv/a.js"


def node_with_lines(length: int) -> dict[str, Any]:
    line = "x" * length
    return {
        "platform": "node:javascript",
        "filename": "/srv/dist/a.js",
        "function": "a",
        "lineno": 10,
        "colno": 500,
        "chunk_id": "c1",
        "context_line": "ctx",
        "pre_context": [line],
        "post_context": [line],
    }


def test_node_frame_with_chunk_id_and_no_symbols_fails_and_drops_source() -> None:
    frame = resolve_frame(node_with_lines(10)).frame
    assert frame["resolve_failure"] == "No sourcemap uploaded for chunk id: c1"
    assert "source" not in frame
    assert (frame["line"], frame["column"]) == (10, 500)
    assert frame["resolved"] is True and frame["resolved_name"] == "a"  # short lines: not minified


def test_node_minified_when_context_lines_average_over_300_bytes() -> None:
    at_limit = resolve_frame(node_with_lines(300)).frame  # exactly 300: not over
    assert at_limit["resolved"] is True
    # 301 characters are cut to 300 plus "...✂️" (9 bytes): 309 bytes on average.
    over = resolve_frame(node_with_lines(301)).frame
    assert over["resolved"] is False and "resolved_name" not in over


def test_node_frame_without_symbols_takes_the_callers_error() -> None:
    error = JsResolveError.token_not_found("a", 10, 500)
    frame = node_frame_without_symbols(node_with_lines(1), error)
    assert frame["resolve_failure"] == "Token not found for frame: a:10:500"


# --- web frames without symbols --------------------------------------------------------------


def web(**fields: Any) -> dict[str, Any]:
    return {"platform": "web:javascript", "function": "Kt", "in_app": True, **fields}


URL = "https://x.com/assets/app.js"


@pytest.mark.parametrize(
    ("error", "column", "minified"),
    [
        (JsResolveError.no_url_or_chunk_id(), 5000, False),
        (JsResolveError.no_source_url(), 5000, False),
        (JsResolveError.no_sourcemap(URL), 300, False),
        (JsResolveError.no_sourcemap(URL), 301, True),
        (JsResolveError.no_sourcemap_uploaded("c"), 1, True),
        (JsResolveError.token_not_found("Kt", 1, 1), 1, True),
        (JsResolveError.invalid_source_map("bad"), 1, True),
        (JsResolveError.network_error("refused"), 1, True),
    ],
)
def test_was_minified_rules(error: JsResolveError, column: int, minified: bool) -> None:
    frame = js_frame_without_symbols(web(filename=URL, lineno=1, colno=column), error)
    assert frame["resolved"] is not minified
    assert ("resolved_name" in frame) is not minified
    assert frame["resolve_failure"] == error.message
    assert (frame["line"], frame["column"], frame["source"]) == (1, column, "/assets/app.js")


def test_error_messages_are_cymbals() -> None:
    assert str(JsResolveError.no_url_or_chunk_id()) == "This frame had no source url or chunk id"
    assert str(JsResolveError.no_sourcemap("u")) == "Could not find sourcemap for source url: u"
    assert str(JsResolveError.no_sourcemap_uploaded("c")) == "No sourcemap uploaded for chunk id: c"
    assert str(JsResolveError.http_status(404, "u")) == "HTTP error 404 while fetching: u"
    assert JsResolveError.no_sourcemap("u").kind is JsResolveErrorKind.NO_SOURCEMAP


def test_default_errors_without_symbol_sets() -> None:
    assert resolve_frame(web(filename=URL, lineno=1, colno=301)).frame["resolve_failure"] == (
        "Could not find sourcemap for source url: https://x.com/assets/app.js"
    )
    with_chunk = resolve_frame(web(filename=URL, lineno=1, colno=3, chunk_id="c")).frame
    assert with_chunk["resolve_failure"] == "No sourcemap uploaded for chunk id: c"
    assert with_chunk["resolved"] is False
    no_url = resolve_frame(web(filename="node:internal/timers", lineno=1, colno=9000)).frame
    assert no_url["resolve_failure"] == "This frame had no source url or chunk id"
    assert no_url["resolved"] is True and "source" not in no_url


def test_web_frame_without_position_passes_through_whatever_the_error() -> None:
    frame = js_frame_without_symbols(web(filename=URL), JsResolveError.no_sourcemap_uploaded("c"))
    assert frame["resolved"] is True and frame["resolved_name"] == "Kt"
    assert "resolve_failure" not in frame and "line" not in frame and frame["source"] == "/assets/app.js"


def test_anonymous_source_is_never_in_app() -> None:
    assert resolve_frame(web(filename="<anonymous>")).frame["in_app"] is False


def test_failed_web_frames_keep_the_raw_in_app_even_for_node_modules() -> None:
    raw = web(filename="https://x.com/node_modules/lib.js", lineno=1, colno=1)
    assert resolve_frame(raw).frame["in_app"] is True


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://127.0.0.1:18766/static/zz-app.js", "/static/zz-app.js"),
        ("https://x.com/path/to/file.js:1:2", "/path/to/file.js"),
        ("https://x.com/a.js?v=3#top", "/a.js"),
        ("https://x.com/a b/ü.js", "/a%20b/%C3%BC.js"),
        ("https://x.com/a/./b/../c.js", "/a/c.js"),
        ("http://127.0.0.1:18766", "/"),
        ("https://x.com", "/"),
        ("https://X.COM:443/A.js", "/A.js"),
    ],
)
def test_source_is_the_url_path_as_the_rust_url_crate_gives_it(url: str, path: str) -> None:
    assert resolve_frame(web(filename=url)).frame["source"] == path


@pytest.mark.parametrize(
    "url", ["/opt/app.js", "node:fs", "webpack-internal:///./a.js", "http://", "http://x.com:99999/a"]
)
def test_unusable_urls_give_no_source(url: str) -> None:
    assert "source" not in resolve_frame(web(filename=url)).frame


def test_no_source_map_message_uses_the_normalised_url() -> None:
    frame = resolve_frame(web(filename="HTTPS://X.com:443/a b.js:10:20", lineno=10, colno=20)).frame
    # The prefix check is case-sensitive, as cymbal's: an upper-case scheme is no URL at all.
    assert frame["resolve_failure"] == "This frame had no source url or chunk id"
    frame = resolve_frame(web(filename="https://X.com:443/a b.js:10:20", lineno=10, colno=20)).frame
    assert frame["resolve_failure"] == "Could not find sourcemap for source url: https://x.com/a%20b.js"


def test_suspicious_only_for_posthog_sources() -> None:
    assert suspicious_source("webpack://app/node_modules/posthog-js@1.2.3/dist/module.js")
    assert not suspicious_source("https://us.posthog.com/static/array.js")
    assert not suspicious_source(None)
    assert resolve_frame(web(filename="https://us.posthog.com/static/array.js")).frame["suspicious"] is False


# --- context ----------------------------------------------------------------------------------


def test_python_context_numbers_lines_nearest_first() -> None:
    context = raw_frame_context(PYTHON)
    assert context == {
        "before": [{"number": 14, "line": "    x = 1"}, {"number": 13, "line": "def handle():"}],
        "line": {"number": 15, "line": "    raise ValueError()"},
        "after": [{"number": 16, "line": ""}, {"number": 17, "line": "handle()"}],
    }


def test_context_needs_both_a_context_line_and_a_line_number() -> None:
    assert raw_frame_context({**PYTHON, "lineno": None}) is None
    assert raw_frame_context({key: value for key, value in PYTHON.items() if key != "context_line"}) is None
    assert raw_frame_context({"platform": "go", "filename": "a", "function": "f", "lineno": 1}) is None


def test_context_lines_are_cut_at_300_characters_and_nul_replaced() -> None:
    context = raw_frame_context({**PYTHON, "context_line": "é" * 301, "pre_context": ["a\x00b"], "post_context": []})
    assert context is not None
    assert context["line"]["line"] == "é" * 300 + "...✂️"
    assert context["before"] == [{"number": 14, "line": "a\ufffdb"}]
    exact = raw_frame_context({**PYTHON, "context_line": "é" * 300})
    assert exact is not None and exact["line"]["line"] == "é" * 300


def test_context_line_numbers_saturate_at_zero() -> None:
    context = raw_frame_context({**PYTHON, "lineno": 1, "pre_context": ["a", "b", "c"]})
    assert context is not None
    assert [line["number"] for line in context["before"]] == [0, 0, 0]


def test_custom_context_keeps_ten_lines_each_side_with_index_zero_just_above() -> None:
    raw = {
        "platform": "custom",
        "lang": "elixir",
        "function": "f",
        "lineno": 50,
        "context_line": "here",
        "pre_context": [f"above {i}" for i in range(1, 13)],
        "post_context": [f"below {i}" for i in range(1, 13)],
    }
    context = raw_frame_context(raw)
    assert context is not None
    assert len(context["before"]) == len(context["after"]) == 10
    assert context["before"][0] == {"number": 49, "line": "above 1"}
    assert context["after"][-1] == {"number": 60, "line": "below 10"}


# --- unknown platforms, stacks, resolvers ------------------------------------------------------


def test_unknown_platform_degrades_the_frame() -> None:
    raw = {"platform": "cobol", "filename": "A.CBL", "function": "RUN", "lineno": 3, "in_app": False}
    frame = resolve_frame(raw).frame
    assert frame["resolved"] is False and frame["resolve_failure"] == "Unsupported platform: cobol"
    assert (frame["lang"], frame["mangled_name"], frame["source"], frame["line"], frame["in_app"]) == (
        "cobol",
        "RUN",
        "A.CBL",
        3,
        False,
    )
    assert validate_raw_frame(raw) is None
    assert raw_frame_hash(raw) == sha512(
        b'{"filename":"A.CBL","function":"RUN","in_app":false,"lineno":3,"platform":"cobol"}'
    )
    assert resolve_frame({"function": "x"}).frame["resolve_failure"] == "Frame has no platform"


def test_resolve_stack_keeps_order_and_collects_contexts_by_raw_id() -> None:
    go = {"platform": "go", "filename": "main.go", "function": "main", "lineno": 1}
    stack = resolve_stack([PYTHON, go])
    assert [frame["lang"] for frame in stack.frames] == ["python", "go"]
    assert list(stack.contexts) == [stack.frames[0]["raw_id"]]


def test_resolver_frames_get_raw_ids_with_their_index() -> None:
    raw = web(filename=URL, lineno=1, colno=2, chunk_id="c")
    template = js_frame_without_symbols(raw, JsResolveError.no_sourcemap_uploaded("c"))

    def resolver(frame: Any) -> Any:
        if frame["platform"] != "web:javascript":
            return None
        context = {"before": [], "line": {"number": 3, "line": "inner()"}, "after": []}
        return [
            ResolvedFrame({**template, "raw_id": "ignored"}, None),
            ResolvedFrame({**template, "raw_id": "ignored", "resolved_name": "inner"}, context),
        ]

    stack = resolve_stack([raw, PYTHON], resolver)
    digest = raw_frame_hash(raw)
    assert [frame["raw_id"] for frame in stack.frames[:2]] == [f"{digest}/0", f"{digest}/1"]
    assert stack.contexts[f"{digest}/1"]["line"]["line"] == "inner()"
    assert f"{digest}/0" not in stack.contexts
    assert next(iter(stack.frames[0])) == "raw_id"
    assert stack.frames[2]["lang"] == "python"
    with pytest.raises(ValueError, match="at least one frame"):
        resolve_stack([raw], lambda frame: [])


def test_already_resolved_frames_are_normalised() -> None:
    frame = normalize_resolved_frame(
        {"raw_id": "abc", "mangled_name": "f", "in_app": True, "lang": "go", "resolved": True, "extra": 1, "line": None}
    )
    assert frame == {
        "raw_id": "abc/0",
        "mangled_name": "f",
        "in_app": True,
        "lang": "go",
        "resolved": True,
        "synthetic": False,
        "suspicious": False,
    }
    assert normalize_resolved_frame({**frame, "raw_id": "abc/+3"})["raw_id"] == "abc/3"
    for broken, message in [
        ({**frame, "raw_id": "abc/x"}, "invalid digit"),
        ({**frame, "raw_id": "abc/"}, "empty string"),
        ({key: value for key, value in frame.items() if key != "in_app"}, "missing field `in_app`"),
        ({**frame, "resolved": "yes"}, "expected a boolean"),
    ]:
        with pytest.raises(WireError, match=message):
            normalize_resolved_frame(broken)


# --- properties ---------------------------------------------------------------------------------

texts = st.text(max_size=30)
python_frames = st.fixed_dictionaries(
    {"platform": st.just("python"), "filename": texts, "function": texts},
    optional={
        "lineno": st.integers(0, 2**32 - 1),
        "module": texts,
        "context_line": texts,
        "pre_context": st.lists(texts, max_size=3),
        "post_context": st.lists(texts, max_size=3),
        "in_app": st.booleans(),
        "abs_path": texts,
    },
)
web_frames = st.fixed_dictionaries(
    {"platform": st.sampled_from(["web:javascript", "javascript"]), "function": texts},
    optional={
        "filename": st.one_of(texts, st.just(URL)),
        "lineno": st.integers(0, 2**32 - 1),
        "colno": st.integers(0, 2**32 - 1),
        "chunk_id": texts,
        "in_app": st.booleans(),
    },
)


@given(st.one_of(python_frames, web_frames))
def test_raw_ids_are_deterministic_lowercase_sha512_hex(raw: dict[str, Any]) -> None:
    digest = raw_frame_hash(raw)
    assert digest == raw_frame_hash(dict(raw))
    assert len(digest) == 128 and set(digest) <= set("0123456789abcdef")
    frame = resolve_frame(raw).frame
    assert frame["raw_id"] == f"{digest}/0"


@given(web_frames, st.booleans(), texts)
def test_web_raw_id_ignores_in_app_and_chunk_id(raw: dict[str, Any], in_app: bool, chunk_id: str) -> None:
    assert raw_frame_hash({**raw, "in_app": in_app, "chunk_id": chunk_id}) == raw_frame_hash(raw)


@given(web_frames)
def test_web_frames_resolve_iff_not_minified(raw: dict[str, Any]) -> None:
    frame = resolve_frame(raw).frame
    assert frame["resolved"] == ("resolved_name" in frame)
    assert frame["mangled_name"] == raw["function"] and frame["lang"] == "javascript"
