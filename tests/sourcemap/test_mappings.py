"""The VLQ codec and the two edits, on hand-written mappings."""

from __future__ import annotations

import pytest

from trapline.sourcemap.mappings import (
    MappingsError,
    decode,
    decode_values,
    encode,
    encode_values,
    insert_columns,
    insert_lines,
)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("A", [0]),
        ("C", [1]),
        ("D", [-1]),
        ("gB", [16]),
        ("hB", [-16]),
        ("AAgBC", [0, 0, 16, 1]),
        ("+/D", [2047]),
        ("//D", [-2047]),
    ],
)
def test_vlq_values(text: str, values: list[int]):
    assert decode_values(text) == values
    assert encode_values(values) == text


@pytest.mark.parametrize("bad", ["A!", "g"])
def test_invalid_vlq_is_an_error(bad: str):
    with pytest.raises(MappingsError):
        decode_values(bad)


def test_decode_gives_absolute_values_across_lines():
    # Line 0: col 0 -> src 0 line 0 col 0; col 4 -> same src, col 2, name 0. Line 1: unmapped col 3, then col 5.
    lines = decode("AAAA,IAAEA;G,EAAC")
    assert lines == [[(0, 0, 0, 0), (4, 0, 0, 2, 0)], [(3,), (5, 0, 0, 3)]]
    assert encode(lines) == "AAAA,IAAEA;G,EAAC"


def test_insert_lines_adds_empty_groups():
    assert insert_lines("AAAA;CAAC", 0) == ";AAAA;CAAC"
    assert insert_lines("AAAA;CAAC", 1, count=2) == "AAAA;;;CAAC"
    assert insert_lines("AAAA;", 1) == "AAAA;;"
    assert insert_lines("AAAA", 1) == "AAAA"  # nothing mapped that far: unchanged


def test_insert_columns_shifts_only_what_is_after_the_insertion():
    mappings = "AAAA,IAAE,EAAC;AACA"
    shifted = insert_columns(mappings, 0, 4, 10)
    # (4,): the segment at 0 covered 0..3 and must not cover the inserted text.
    assert decode(shifted) == [[(0, 0, 0, 0), (4,), (14, 0, 0, 2), (16, 0, 0, 3)], [(0, 0, 1, 3)]]
    # Only line 0's group changed; the next line's relative values still decode the same.
    assert shifted.split(";")[1] == mappings.split(";")[1]


def test_insert_columns_cuts_a_segment_that_covered_the_insertion_point():
    # One segment from column 0 covers columns 0..7; 10 columns are inserted at 3.
    shifted = insert_columns("AAAAA,QAAEC;AACA", 0, 3, 10)
    assert decode(shifted) == [
        [(0, 0, 0, 0, 0), (3,), (13, 0, 0, 0, 0), (18, 0, 0, 2, 1)],
        [(0, 0, 1, 2)],
    ]


def test_insert_columns_resumes_a_covering_segment_that_was_last_on_its_line():
    assert decode(insert_columns("AAAAA;AACA", 0, 3, 10)) == [[(0, 0, 0, 0, 0), (3,), (13, 0, 0, 0, 0)], [(0, 0, 1, 0)]]


def test_insert_columns_leaves_an_unmapped_stretch_alone():
    assert decode(insert_columns("AAAA,C,SAAC", 0, 4, 10)) == [[(0, 0, 0, 0), (1,), (20, 0, 0, 1)]]
    assert insert_columns("AAAA;;CAAC", 1, 0, 10) == "AAAA;;CAAC"  # an empty line


def test_insert_columns_past_the_last_line_changes_nothing():
    assert insert_columns("AAAA", 2, 0, 5) == "AAAA"
