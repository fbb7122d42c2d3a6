from __future__ import annotations

import os
import random
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from trapline.accounts.api_keys import has_scope
from trapline.ids import new_token, uuid7, uuid7_text


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


def test_uuid7_text_is_a_hyphenated_version_7_uuid_of_now():
    text = uuid7_text()
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert abs((parsed.int >> 80) - time.time() * 1000) < 5000


def test_uuid7_text_is_unique_even_when_someone_seeds_random():
    random.seed(1)
    first = {uuid7_text() for _ in range(10_000)}
    random.seed(1)
    second = {uuid7_text() for _ in range(10_000)}
    assert len(first | second) == 20_000


def test_uuid7_text_differs_in_a_forked_child():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, uuid7_text().encode())
        os._exit(0)
    os.close(write)
    mine = uuid7_text()
    os.waitpid(pid, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    # Same millisecond or not, the random part is the child's own.
    assert uuid.UUID(theirs).int & ((1 << 74) - 1) != uuid.UUID(mine).int & ((1 << 74) - 1)


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
