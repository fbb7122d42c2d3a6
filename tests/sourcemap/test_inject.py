"""The injected text, where it goes, and how chunk ids are chosen."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from trapline.sourcemap.inject import (
    CHUNK_ID_NAMESPACE,
    AlreadyInjected,
    ReleaseMode,
    adopted_debug_id,
    chunk_id_comment,
    content_chunk_id,
    inject,
    random_chunk_id,
    release_neutral,
    snippet,
)
from trapline.sourcemap.mappings import decode

CHUNK = "0192c2a0-1111-7000-8000-00000000abcd"
RELEASE = "0192c2a0-2222-7000-8000-00000000cafe"

# Copied from the reference (sdk-clients.md §3.3 step 1), <CHUNK_ID> filled in.
EXPECTED_SNIPPET = (
    '!function(){try{var e="undefined"!=typeof window?window:"undefined"!=typeof global?global:"undefined"!=typeof '
    'globalThis?globalThis:"undefined"!=typeof self?self:{},n=(new e.Error).stack;n&&(e._posthogChunkIds='
    'e._posthogChunkIds||{},e._posthogChunkIds[n]="0192c2a0-1111-7000-8000-00000000abcd")}catch(e){}}();'
)
EXPECTED_RELEASE_SNIPPET = (
    '!function(){try{var e="undefined"!=typeof window?window:"undefined"!=typeof global?global:"undefined"!=typeof '
    'globalThis?globalThis:"undefined"!=typeof self?self:{};e._posthogReleaseId=e._posthogReleaseId||'
    '"0192c2a0-2222-7000-8000-00000000cafe";var n=(new e.Error).stack;n&&(e._posthogChunkIds='
    'e._posthogChunkIds||{},e._posthogChunkIds[n]="0192c2a0-1111-7000-8000-00000000abcd")}catch(e){}}();'
)


def a_map(**extra: Any) -> dict[str, Any]:
    return {"version": 3, "sources": ["a.js"], "names": [], "mappings": "AAAA,EAAC", **extra}


def test_snippet_is_posthogs_byte_for_byte():
    assert snippet(CHUNK) == EXPECTED_SNIPPET
    assert snippet(CHUNK, RELEASE) == EXPECTED_RELEASE_SNIPPET


def test_plain_file_gets_the_snippet_on_its_own_first_line_and_the_comment_last():
    result = inject(b"var a=1;\n//# sourceMappingURL=a.js.map", a_map(), CHUNK)
    assert result.source == (
        EXPECTED_SNIPPET.encode() + b"\nvar a=1;\n//# sourceMappingURL=a.js.map\n//# chunkId=" + CHUNK.encode()
    )
    assert result.source_map["mappings"] == ";AAAA,EAAC"
    assert result.source_map["chunk_id"] == CHUNK
    assert chunk_id_comment(result.source) == CHUNK


def test_event_mode_puts_the_release_in_the_snippet_and_not_in_the_map():
    result = inject(b"x()", a_map(debugId="8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"), CHUNK, release_id=RELEASE)
    assert result.source.startswith(EXPECTED_RELEASE_SNIPPET.encode() + b"\n")
    assert result.source_map == {**a_map(debugId="8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"), "mappings": ";AAAA,EAAC"} | {
        "chunk_id": CHUNK
    }


def test_symbol_set_mode_puts_the_release_in_the_map_and_not_in_the_snippet():
    result = inject(b"x()", a_map(), CHUNK, release_id=RELEASE, mode=ReleaseMode.SYMBOL_SET)
    assert result.source.startswith(EXPECTED_SNIPPET.encode() + b"\n")
    assert result.source_map["chunk_id"] == CHUNK
    assert result.source_map["release_id"] == RELEASE


def test_the_input_map_is_not_modified():
    original = a_map()
    inject(b"x()", original, CHUNK)
    assert original == a_map()


def test_injecting_twice_is_refused():
    once = inject(b"x()", a_map(), CHUNK)
    with pytest.raises(AlreadyInjected):
        inject(once.source, once.source_map, CHUNK)


@pytest.mark.parametrize(
    ("source", "prefix", "rest", "mappings"),
    [
        # A shebang must stay the first line: the snippet goes on the line below it.
        (b"#!/usr/bin/env node\nx()", b"#!/usr/bin/env node\n", b"\nx()", "AAAA;;EAAC"),
        (b"#!/usr/bin/env node\r\nx()", b"#!/usr/bin/env node\r\n", b"\nx()", "AAAA;;EAAC"),
        # After a directive on its own line: on that line, nothing mapped moves.
        (b'"use strict";\nx()', b'"use strict";', b"\nx()", None),
        # Several directives, comments between them, single quotes.
        (b"/*! MIT */\n'use client';\n\"use strict\";x()", b"/*! MIT */\n'use client';\n\"use strict\";", b"x()", None),
        (b'#!/usr/bin/env node\n"use strict";x()', b'#!/usr/bin/env node\n"use strict";', b"x()", None),
        # Not directives: the snippet goes first.
        (b'"use strict" + x;', b"", b'\n"use strict" + x;', ";AAAA;EAAC"),
        (b'"use strict"\nx()', b"", b'\n"use strict"\nx()', ";AAAA;EAAC"),
        # A licence comment with no directive after it stays below the snippet.
        (b"/*! MIT */x()", b"", b"\n/*! MIT */x()", ";AAAA;EAAC"),
    ],
)
def test_where_the_snippet_goes(source: bytes, prefix: bytes, rest: bytes, mappings: str | None):
    result = inject(source, a_map(mappings="AAAA;EAAC"), CHUNK)
    assert result.source == prefix + EXPECTED_SNIPPET.encode() + rest + b"\n//# chunkId=" + CHUNK.encode()
    if mappings is not None:
        assert result.source_map["mappings"] == mappings


def test_directive_on_the_code_line_moves_the_code_right():
    source = b'"use strict";var a=1;'  # tokens at 13 ("var") and 15 (in the sample mapping, "a")
    result = inject(source, {"version": 3, "sources": ["a.js"], "names": [], "mappings": "aAAA,EAAC"}, CHUNK)
    width = len(EXPECTED_SNIPPET)
    assert decode(result.source_map["mappings"]) == [[(13 + width, 0, 0, 0), (15 + width, 0, 0, 1)]]


def test_bom_stays_first_and_columns_after_it_move():
    source = b"\xef\xbb\xbfvar a=1;"
    result = inject(source, {"version": 3, "sources": ["a.js"], "names": [], "mappings": "CAAA"}, CHUNK)
    assert result.source.startswith(b"\xef\xbb\xbf" + EXPECTED_SNIPPET.encode() + b"var a=1;")
    assert decode(result.source_map["mappings"]) == [[(1 + len(EXPECTED_SNIPPET), 0, 0, 0)]]


def test_a_file_that_is_only_a_shebang_still_gets_a_valid_snippet_line():
    result = inject(b"#!/usr/bin/env node", a_map(mappings=""), CHUNK)
    assert result.source.startswith(b"#!/usr/bin/env node\n" + EXPECTED_SNIPPET.encode() + b"\n")


def test_release_neutral_form_is_the_release_less_injection():
    with_release = inject(b"x()", a_map(), CHUNK, release_id=RELEASE).source
    without = inject(b"x()", a_map(), CHUNK).source
    assert with_release != without
    assert release_neutral(with_release) == without
    assert release_neutral(without) == without


def test_content_chunk_id_is_uuidv5_of_the_bytes():
    source = b"var a=1;"
    assert content_chunk_id(source) == str(uuid.uuid5(CHUNK_ID_NAMESPACE, "var a=1;"))
    assert content_chunk_id(source) == content_chunk_id(bytes(source))
    assert content_chunk_id(source) != content_chunk_id(source + b" ")
    assert uuid.UUID(content_chunk_id(b"\xff\xfe not utf-8")).version == 5


def test_random_chunk_id_is_a_time_ordered_uuidv7():
    chunk = uuid.UUID(random_chunk_id(now=lambda: 1_700_000_000.123, entropy=lambda n: b"\xff" * n))
    assert chunk.version == 7 and chunk.variant == uuid.RFC_4122
    assert chunk.int >> 80 == 1_700_000_000_123
    assert random_chunk_id(now=lambda: 1.0) < random_chunk_id(now=lambda: 2.0)
    assert random_chunk_id() != random_chunk_id()


@pytest.mark.parametrize(
    ("document", "source", "expected"),
    [
        ({"debugId": "8F2A4C4E-0A61-4A5E-9B43-5B2F8C1D6E70"}, b"", "8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"),
        ({"debug_id": "8f2a4c4e0a614a5e9b435b2f8c1d6e70"}, b"", "8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"),
        ({}, b"x()\n//# debugId=8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70\n", "8f2a4c4e-0a61-4a5e-9b43-5b2f8c1d6e70"),
        ({"debugId": "not-a-uuid"}, b"", None),
        ({}, b"x()", None),
    ],
)
def test_debug_id_is_adopted_when_it_is_a_uuid(document: dict[str, Any], source: bytes, expected: str | None):
    assert adopted_debug_id(document, source) == expected
