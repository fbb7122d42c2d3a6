"""Flattening index maps (the shapes esbuild does not produce)."""

from __future__ import annotations

import pytest

from trapline.sourcemap.mappings import decode
from trapline.sourcemap.maps import SourceMapError, dump, flatten, load


def test_sections_share_sources_names_and_keep_source_roots_and_ignore_lists():
    shared = {"version": 3, "sources": ["a.js"], "sourcesContent": ["a"], "names": ["x"], "mappings": "AAAAA"}
    other = {
        "version": 3,
        "sourceRoot": "lib",
        "sources": ["vendor.js", "a.js"],
        "names": ["y", "x"],
        "mappings": "AAAAA,ECAAC",
        "ignoreList": [0],
    }
    flat = flatten(
        {
            "version": 3,
            "file": "out.js",
            "sections": [
                {"offset": {"line": 0, "column": 0}, "map": shared},
                {"offset": {"line": 2, "column": 5}, "map": other},
                {"offset": {"line": 3, "column": 0}, "map": shared},
            ],
        }
    )
    assert list(flat) == ["version", "file", "sources", "sourcesContent", "names", "mappings", "ignoreList"]
    assert flat["sources"] == ["a.js", "lib/vendor.js", "lib/a.js"]
    assert flat["sourcesContent"] == ["a", None, None]
    assert flat["names"] == ["x", "y"]
    assert flat["ignoreList"] == [1]
    assert decode(flat["mappings"]) == [
        [(0, 0, 0, 0, 0)],
        [],
        [(5, 1, 0, 0, 1), (7, 2, 0, 0, 0)],
        [(0, 0, 0, 0, 0)],
    ]


def test_a_section_is_cut_where_the_next_begins_and_does_not_cover_its_start():
    long = {"version": 3, "sources": ["a.js"], "names": [], "mappings": "AAAA,KAAC,KAAC"}  # cols 0, 5, 10
    late = {"version": 3, "sources": ["b.js"], "names": [], "mappings": "EAAA"}  # its first token at col 2
    flat = flatten(
        {
            "version": 3,
            "sections": [
                {"offset": {"line": 0, "column": 0}, "map": long},
                {"offset": {"line": 0, "column": 8}, "map": late},
            ],
        }
    )
    # a.js's token at 10 lies in the second section and is dropped; 8..9 belong to no token.
    assert decode(flat["mappings"]) == [[(0, 0, 0, 0), (5, 0, 0, 1), (8,), (10, 1, 0, 0)]]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[]", "not a JSON object"),
        (b"{", "not JSON"),
        (b'{"version": 3}', "mappings"),
        (b'{"sections": {}}', "not a list"),
    ],
)
def test_load_refuses_what_is_not_a_source_map(document: bytes, message: str):
    with pytest.raises(SourceMapError, match=message):
        load(document)


def test_sections_with_urls_are_refused():
    with pytest.raises(SourceMapError, match="url"):
        flatten({"version": 3, "sections": [{"offset": {"line": 0, "column": 0}, "url": "a.map"}]})


def test_dump_is_compact_utf8_in_key_order():
    assert dump({"b": "é", "a": [1, 2]}) == '{"b":"é","a":[1,2]}'.encode()
