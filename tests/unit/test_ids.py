from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from trapline.accounts.api_keys import has_scope
from trapline.ids import new_token, uuid7


def test_uuid7_is_version_7_and_time_ordered():
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first < second
    millis = first.int >> 80
    assert abs(millis - time.time() * 1000) < 5000


def test_uuid7_is_unique():
    assert len({uuid7() for _ in range(10_000)}) == 10_000


def test_tokens_have_prefix_and_entropy():
    tokens = {new_token("phc_") for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(t.startswith("phc_") and len(t) == 47 and t[4:].isalnum() for t in tokens)


def test_scope_rules():
    assert has_scope(["*"], "error_tracking:write")
    assert has_scope(["error_tracking:write"], "error_tracking:read")
    assert has_scope(["error_tracking:read"], "error_tracking:read")
    assert not has_scope(["error_tracking:read"], "error_tracking:write")
    assert not has_scope(["feature_flag:write"], "error_tracking:read")
    assert not has_scope([], "error_tracking:read")


@given(st.lists(st.sampled_from(["error_tracking:read", "error_tracking:write", "insight:read", "*"])))
def test_write_scope_always_covers_read(granted: list[str]):
    if has_scope(granted, "error_tracking:write"):
        assert has_scope(granted, "error_tracking:read")
