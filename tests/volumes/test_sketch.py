"""The HyperLogLog sketches: estimates within their error, small counts exact, storage compact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trapline.volumes import sketch


def sketch_of(values: list[str]) -> sketch.Registers:
    registers: sketch.Registers = {}
    for value in values:
        sketch.update(registers, sketch.hash_value(value))
    return registers


@pytest.mark.parametrize("count", [1, 2, 10, 100, 1_000])
def test_small_counts_come_out_exact_or_nearly(count: int):
    estimate = sketch.estimate(sketch_of([f"user-{n}" for n in range(count)]))
    assert abs(estimate - count) <= max(1, count * 0.02)


@pytest.mark.parametrize("count", [10_000, 200_000])
def test_large_counts_are_within_a_few_percent(count: int):
    estimate = sketch.estimate(sketch_of([f"session-{n}" for n in range(count)]))
    assert abs(estimate - count) / count < 0.05


def test_repeated_values_count_once():
    assert sketch.estimate(sketch_of(["same"] * 500 + ["other"] * 500)) == 2


def test_merging_days_counts_a_user_seen_on_both_once():
    monday = sketch.serialize(sketch_of([f"u{n}" for n in range(0, 3000)]))
    tuesday = sketch.serialize(sketch_of([f"u{n}" for n in range(2000, 5000)]))
    estimate = sketch.estimate(sketch.merge([monday, tuesday, None]))
    assert abs(estimate - 5000) / 5000 < 0.05


def test_a_quiet_day_is_stored_in_a_few_bytes_and_a_busy_one_in_two_kib():
    assert len(sketch.serialize(sketch_of(["a", "b", "c"]))) == 1 + 3 * 3
    assert len(sketch.serialize(sketch_of([str(n) for n in range(100_000)]))) == 1 + sketch.REGISTERS


@settings(max_examples=50)
@given(st.lists(st.text(max_size=20), max_size=300))
def test_serializing_keeps_every_register(values: list[str]):
    registers = sketch_of(values)
    assert sketch.registers(sketch.serialize(registers)) == registers


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=6), st.booleans())
def test_merging_dense_and_sparse_sketches_takes_each_registers_maximum(sizes: list[int], with_none: bool):
    # One busy (dense) and one quiet (sparse) day always, among days of any size.
    days = [sketch_of([f"{day}-{n % 1500}" for n in range(size)]) for day, size in enumerate([3000, 5, *sizes])]
    stored: list[bytes | None] = [sketch.serialize(registers) for registers in days]
    assert stored[0][:1] == b"D" and stored[1][:1] == b"S"  # type: ignore[index]
    if with_none:
        stored.insert(len(stored) // 2, None)
    expected: sketch.Registers = {}
    for registers in days:
        for index, rank in registers.items():
            expected[index] = max(expected.get(index, 0), rank)
    assert sketch.merge(stored) == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4000), min_size=1, max_size=5))
def test_a_merged_estimate_is_the_estimate_of_the_merged_registers(sizes: list[int]):
    stored = [sketch.serialize(sketch_of([f"{day}-{n}" for n in range(size)])) for day, size in enumerate(sizes)]
    assert sketch.estimate_merged(stored) == sketch.estimate(sketch.merge(stored))


@settings(max_examples=200)
@given(
    st.binary(min_size=sketch.REGISTERS, max_size=sketch.REGISTERS),
    st.binary(min_size=sketch.REGISTERS, max_size=sketch.REGISTERS),
)
def test_dense_sketches_merge_byte_by_byte(a: bytes, b: bytes):
    # Ranks stay below 64; any pair of bytes below 128 must come out as their maximum.
    a, b = bytes(x & 0x7F for x in a), bytes(x & 0x7F for x in b)
    assert sketch.merge([b"D" + a, b"D" + b]) == {
        i: max(x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if max(x, y)
    }


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.none(), st.integers(min_value=0, max_value=1200), st.just(5000)),
    st.dictionaries(
        st.integers(min_value=0, max_value=sketch.REGISTERS - 1), st.integers(min_value=1, max_value=20), max_size=800
    ),
)
def test_adding_registers_to_a_stored_sketch_serializes_their_maximum(size: int | None, added: sketch.Registers):
    # None, empty, sparse, sparse turning dense, and dense stored sketches.
    stored = None if size is None else sketch.serialize(sketch_of([str(n) for n in range(size)]))
    before = sketch.registers(stored)
    expected = dict(before)
    for index, rank in added.items():
        expected[index] = max(expected.get(index, 0), rank)
    result = sketch.added_to(stored, added)
    if expected == before:
        assert result is None
    else:
        assert result == sketch.serialize(expected)


@pytest.mark.parametrize("size", [3, 300, 5000])
def test_adding_registers_a_sketch_holds_already_changes_nothing(size: int):
    registers = sketch_of([str(n) for n in range(size)])
    stored = sketch.serialize(registers)
    some = dict(list(registers.items())[::7])
    assert sketch.added_to(stored, some) is None
    assert sketch.added_to(stored, {index: rank - 1 for index, rank in some.items() if rank > 1}) is None
    assert sketch.added_to(None, {}) is None
