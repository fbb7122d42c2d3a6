"""to_posthog_event: what a Sentry event becomes, field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.capture import load_payload
from trapline.pipeline.exceptions import ExceptionProperties, normalize_exception_properties
from trapline.sentry.envelope import parse_envelope
from trapline.sentry.mapping import to_posthog_event

PAYLOADS = Path(__file__).parent.parent / "ingest" / "payloads"


def captured(name: str) -> dict[str, Any]:
    envelope = parse_envelope((PAYLOADS / f"sentry-python-2.75.0_envelope_{name}_event.envelope.txt").read_bytes())
    event: dict[str, Any] = json.loads(envelope.items[0].payload)
    return event


def frame(**fields: Any) -> dict[str, Any]:
    return {"filename": "app.py", "function": "f", "lineno": 1, "in_app": True, **fields}


def test_the_captured_exception_is_in_posthogs_order_with_python_frames():
    out = to_posthog_event(captured("exception"))
    assert out["event"] == "$exception"
    assert out["uuid"] == "8152653f-7087-456c-9ef5-0d4ab48e4a73"
    assert out["timestamp"] == "2026-11-23T18:45:39.089843Z"
    props = out["properties"]
    outer, cause = props["$exception_list"]
    assert (outer["type"], outer["value"]) == ("ValueError", "bad quantity")
    assert (cause["type"], cause["value"]) == ("ZeroDivisionError", "division by zero")
    assert outer["mechanism"] == {"type": "generic", "handled": True, "exception_id": 0}
    assert cause["mechanism"]["parent_id"] == 0
    first = outer["stacktrace"]["frames"][0]
    assert outer["stacktrace"]["type"] == "raw"
    assert {k: first[k] for k in ("platform", "filename", "abs_path", "function", "module", "lineno", "in_app")} == {
        "platform": "python",
        "filename": "sentry_app.py",
        "abs_path": "/srv/app/sentry_app.py",
        "function": "<module>",
        "module": "__main__",
        "lineno": 11,
        "in_app": True,
    }
    assert first["context_line"] == '    handle({"qty": "0"})'
    assert len(first["pre_context"]) == 5
    assert cause["stacktrace"]["frames"][1]["code_variables"] == {"raw": {"qty": "'0'"}}
    assert props["$exception_level"] == "error"
    assert props["$lib"] == "sentry.python" and props["$lib_version"] == "2.75.0"
    assert props["$app_version"] == "myapp@1.0.0"
    assert props["$environment"] == "test"
    assert props["$python_runtime"] == "CPython" and props["$python_version"] == "3.11.7"
    assert props["$trace_id"] == "f9409a25bb6140dca05616ababa3a6ee"
    assert props["$sentry_event_id"] == "8152653f7087456c9ef50d4ab48e4a73"
    assert props["server_name"] == "vm"
    assert props["sys.argv"] == ["sentry_app.py"]  # extra
    # no user: a person-less event, as posthog-python sends it
    assert props["$process_person_profile"] is False
    assert "modules" not in props and "breadcrumbs" not in props


def test_posthog_python_and_sentry_sdk_describe_an_exception_alike():
    """The frames the fingerprint reads come out as posthog-python sends them."""
    posthog = load_payload("posthog-python-7.91.1_batch_capture_exception_gzip.json")["body_decoded"]["batch"][0]
    sentry = to_posthog_event(captured("exception"))
    for ours, theirs in zip(
        sentry["properties"]["$exception_list"], posthog["properties"]["$exception_list"], strict=True
    ):
        assert set(ours["stacktrace"]["frames"][0]) - {"code_variables"} <= set(theirs["stacktrace"]["frames"][0])
        assert ours["mechanism"]["exception_id"] == theirs["mechanism"]["exception_id"]


def test_the_captured_message_becomes_an_exception_named_after_its_level():
    out = to_posthog_event(captured("message"))
    [entry] = out["properties"]["$exception_list"]
    assert (entry["type"], entry["value"]) == ("Info", "hello from sentry")
    assert entry["mechanism"]["synthetic"] is True
    assert "stacktrace" not in entry
    assert out["properties"]["$exception_level"] == "info"


def test_a_message_is_named_after_its_logger_and_keeps_an_attached_stack():
    out = to_posthog_event(
        {
            "platform": "python",
            "level": "warning",
            "logger": "shop.payments",
            "logentry": {"message": "card %s declined", "params": ["x"], "formatted": "card x declined"},
            "threads": {"values": [{"id": 1, "current": True, "stacktrace": {"frames": [frame()]}}]},
        }
    )
    [entry] = out["properties"]["$exception_list"]
    assert (entry["type"], entry["value"]) == ("shop.payments", "card x declined")
    assert entry["stacktrace"]["frames"][0]["function"] == "f"
    assert out["properties"]["$exception_level"] == "warning"
    assert out["properties"]["logger"] == "shop.payments"


@pytest.mark.parametrize(
    ("message", "value"),
    [("plain", "plain"), ({"formatted": "f"}, "f"), ({"message": "m"}, "m"), (None, "(no message)")],
)
def test_message_forms(message: Any, value: str):
    event = {"message": message} if message is not None else {}
    assert to_posthog_event(event)["properties"]["$exception_list"][0]["value"] == value


def test_a_browser_event_gets_web_frames_with_debug_ids_as_chunk_ids():
    url = "https://shop.example.com/assets/app.min.js"
    out = to_posthog_event(
        {
            "platform": "javascript",
            "sdk": {"name": "sentry.javascript.browser", "version": "9.1.0"},
            "exception": {
                "values": [
                    {
                        "type": "TypeError",
                        "value": "x is undefined",
                        "mechanism": {"type": "onerror", "handled": False},
                        "stacktrace": {
                            "frames": [
                                {"filename": url, "abs_path": url, "function": "a", "lineno": 1, "colno": 3401},
                                {
                                    "filename": "https://cdn.example.com/lib.js",
                                    "function": "?",
                                    "lineno": 2,
                                    "colno": 9,
                                },
                            ]
                        },
                    }
                ]
            },
            "debug_meta": {"images": [{"type": "sourcemap", "code_file": url, "debug_id": "d2f1-0000"}]},
            "request": {
                "url": "https://shop.example.com/cart",
                "headers": {"User-Agent": "Mozilla/5.0", "Referer": "https://shop.example.com/"},
            },
            "contexts": {"browser": {"name": "Chrome", "version": "131"}, "os": {"name": "Mac OS X"}},
        }
    )
    [entry] = out["properties"]["$exception_list"]
    app, lib = entry["stacktrace"]["frames"]
    assert app == {
        "platform": "web:javascript",
        "filename": url,
        "function": "a",
        "lineno": 1,
        "colno": 3401,
        "chunk_id": "d2f1-0000",
    }
    assert lib["platform"] == "web:javascript" and "chunk_id" not in lib
    assert entry["mechanism"]["handled"] is False
    props = out["properties"]
    assert props["$current_url"] == "https://shop.example.com/cart"
    assert props["$raw_user_agent"] == "Mozilla/5.0"
    assert props["$referrer"] == "https://shop.example.com/"
    assert (props["$browser"], props["$browser_version"], props["$os"]) == ("Chrome", "131", "Mac OS X")
    assert "$os_version" not in props


@pytest.mark.parametrize(
    "hints",
    [
        {"sdk": {"name": "sentry.javascript.node"}},
        {"contexts": {"runtime": {"name": "node", "version": "v22"}}},
        {"platform": "node"},
    ],
)
def test_server_javascript_gets_node_frames(hints: dict[str, Any]):
    event = {
        "platform": "javascript",
        "exception": {
            "values": [
                {
                    "type": "Error",
                    "value": "x",
                    "stacktrace": {
                        "frames": [
                            frame(filename="/srv/dist/server.js", module="server", colno=7, context_line="boom()")
                        ]
                    },
                }
            ]
        },
        **hints,
    }
    [node_frame] = to_posthog_event(event)["properties"]["$exception_list"][0]["stacktrace"]["frames"]
    assert node_frame["platform"] == "node:javascript"
    assert (node_frame["filename"], node_frame["colno"], node_frame["module"]) == ("/srv/dist/server.js", 7, "server")
    assert node_frame["context_line"] == "boom()"


def test_other_platforms_become_custom_frames():
    event = {
        "platform": "java",
        "exception": {
            "values": [
                {
                    "type": "NullPointerException",
                    "value": "",
                    "module": "java.lang",
                    "stacktrace": {
                        "frames": [
                            frame(filename="Orders.java", function="place", module="com.shop.Orders", lineno=42),
                            {"instruction_addr": "0x1000", "platform": "native"},
                            frame(platform="go", filename="main.go", function="main.main", lineno=9),
                        ]
                    },
                }
            ]
        },
    }
    java, native, go = to_posthog_event(event)["properties"]["$exception_list"][0]["stacktrace"]["frames"]
    assert java == {
        "platform": "custom",
        "lang": "java",
        "function": "place",
        "resolved": True,
        "filename": "Orders.java",
        "lineno": 42,
        "module": "com.shop.Orders",
        "in_app": True,
    }
    assert native == {"platform": "custom", "lang": "native", "function": "0x1000", "resolved": False}
    assert go == {"platform": "go", "filename": "main.go", "function": "main.main", "lineno": 9, "in_app": True}


@pytest.mark.parametrize(
    ("fingerprint", "expected"),
    [
        (["{{ default }}"], {}),
        (["{{default}}"], {}),
        (["database-unavailable"], {"$exception_fingerprint": "database-unavailable"}),
        (["db", "timeout"], {"$exception_fingerprint": '["db","timeout"]'}),
        (["{{ default }}", "eu-west"], {"$sentry_fingerprint": ["{{ default }}", "eu-west"]}),
        (["{{ Default }}", 42], {"$sentry_fingerprint": ["{{ default }}", "42"]}),
        ([], {}),
        ("not-a-list", {}),
    ],
)
def test_fingerprints(fingerprint: Any, expected: dict[str, Any]):
    props = to_posthog_event({"message": "m", "fingerprint": fingerprint})["properties"]
    found = {k: props[k] for k in ("$exception_fingerprint", "$sentry_fingerprint") if k in props}
    assert found == expected


def test_user_tags_and_extra():
    out = to_posthog_event(
        {
            "message": "m",
            "user": {"id": 42, "email": "ada@example.com", "ip_address": "10.0.0.1"},
            "tags": [["region", "eu"], ["$lib", "spoofed"]],
            "extra": {"order": 7, "region": "not-this", "$exception_list": "no"},
        }
    )
    props = out["properties"]
    assert out["distinct_id"] == "42"
    assert props["email"] == "ada@example.com" and props["$ip"] == "10.0.0.1"
    assert props["region"] == "eu" and props["order"] == 7
    assert props["$lib"] == "sentry"
    assert isinstance(props["$exception_list"], list)
    assert "$process_person_profile" not in props


@pytest.mark.parametrize(
    ("user", "distinct_id"),
    [
        ({"email": "e@x.com", "username": "u"}, "e@x.com"),
        ({"username": "u", "ip_address": "1.2.3.4"}, "u"),
        ({"ip_address": "1.2.3.4"}, "1.2.3.4"),
    ],
)
def test_the_distinct_id_comes_from_the_user(user: dict[str, Any], distinct_id: str):
    assert to_posthog_event({"message": "m", "user": user})["distinct_id"] == distinct_id


@pytest.mark.parametrize(
    ("level", "expected"),
    [("fatal", "fatal"), ("warn", "warning"), ("DEBUG", "debug"), ("odd", "error"), (None, "error")],
)
def test_levels(level: Any, expected: str):
    assert to_posthog_event({"message": "m", "level": level})["properties"]["$exception_level"] == expected


def test_numeric_timestamps_and_odd_ids():
    out = to_posthog_event({"message": "m", "timestamp": 1795459465.5, "event_id": "not-a-uuid"})
    assert out["timestamp"] == "2026-11-23T18:44:25.500000+00:00"
    assert len(out["uuid"]) == 36


def test_an_exception_without_a_stack_uses_its_threads_stack():
    event = {
        "platform": "python",
        "exception": {"values": [{"type": "E", "value": "v", "thread_id": 7}]},
        "threads": {"values": [{"id": 3, "stacktrace": {"frames": [frame(function="a")]}},
                               {"id": 7, "stacktrace": {"frames": [frame(function="b")]}}]},
    }  # fmt: skip
    [entry] = to_posthog_event(event)["properties"]["$exception_list"]
    assert [f["function"] for f in entry["stacktrace"]["frames"]] == ["b"]
    assert entry["thread_id"] == 7


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["exception", "message", "logentry", "threads", "platform", "level", "user", "request", "tags", "extra",
     "fingerprint", "contexts", "sdk", "timestamp", "event_id", "debug_meta", "logger", "stacktrace"]
)  # fmt: skip


@given(st.dictionaries(KEYS, JSON, max_size=8))
def test_any_event_maps_to_one_the_pipeline_accepts(event: dict[str, Any]):
    out = to_posthog_event(event)
    assert out["event"] == "$exception"
    normalized = normalize_exception_properties(out["properties"], event_uuid=out["uuid"])
    assert isinstance(normalized, ExceptionProperties), normalized
