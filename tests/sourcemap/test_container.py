"""The uploaded bytes, exactly."""

from __future__ import annotations

import hashlib

from trapline.sourcemap.container import content_hash, source_and_map
from trapline.symbols.container import unpack_source_and_map


def test_source_and_map_container_bytes():
    data = source_and_map(b"var a=1;", b'{"version":3}')
    assert data == (
        b"posthog_error_tracking"
        + bytes.fromhex("01000000")  # version 1, u32 LE
        + bytes.fromhex("02000000")  # type 2 = SourceAndMap, u32 LE
        + bytes.fromhex("0800000000000000")  # u64 LE length of the source
        + b"var a=1;"
        + bytes.fromhex("0d00000000000000")  # u64 LE length of the map
        + b'{"version":3}'
    )


def test_content_hash_is_lowercase_hex_sha512():
    assert content_hash(b"abc") == hashlib.sha512(b"abc").hexdigest()
    assert len(content_hash(b"")) == 128 and content_hash(b"x").islower()


def test_the_server_reads_back_what_the_client_packs():
    assert unpack_source_and_map(source_and_map(b"var a=1;", b'{"version":3}')) == (b"var a=1;", b'{"version":3}')
