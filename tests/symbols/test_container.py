"""The symbol data container in both versions: what current PostHog CLIs upload (version 2,
zstd) must read the same as what older ones did (version 1)."""

from __future__ import annotations

import struct

import pytest
import zstandard

from trapline.symbols.container import (
    HEADER_BYTES,
    MAGIC,
    ContainerError,
    Kind,
    header_kind,
    pack,
    pack_source_and_map,
    unpack,
    unpack_source_and_map,
)


def v2(kind: int, flag: int, body: bytes) -> bytes:
    return MAGIC + struct.pack("<II", 2, kind) + bytes((flag,)) + body


def test_version_2_header_bytes_and_zstd_payload():
    data = pack(Kind.PROGUARD_MAPPING, b"com.example.A -> a:\n")
    assert data[:22] == b"posthog_error_tracking"
    assert data[22:31] == bytes.fromhex("020000000400000001")
    # The frame pledges its size, as the CLI's encoder does: readers can size buffers up front.
    assert zstandard.frame_content_size(data[31:]) == len(b"com.example.A -> a:\n")
    assert unpack(data).payload == b"com.example.A -> a:\n"


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("compress", [True, False])
def test_every_kind_round_trips(kind: Kind, compress: bool):
    container = unpack(pack(kind, b"payload " * 50, compress=compress))
    assert container.kind is kind and container.payload == b"payload " * 50


def test_a_source_and_map_in_version_2_reads_as_in_version_1():
    payload = pack_source_and_map(b"var a=1;", b'{"version":3}')[30:]
    assert unpack_source_and_map(v2(2, 1, zstandard.ZstdCompressor().compress(payload))) == (
        b"var a=1;",
        b'{"version":3}',
    )
    assert unpack_source_and_map(v2(2, 0, payload)) == (b"var a=1;", b'{"version":3}')


def test_several_zstd_frames_are_read_as_one_payload():
    compressor = zstandard.ZstdCompressor()
    assert unpack(v2(3, 1, compressor.compress(b"{") + compressor.compress(b"}"))).payload == b"{}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 a zip file", "posthog_error_tracking header is missing"),
        (MAGIC + b"\x02\x00", "cut short after its header"),
        (MAGIC + struct.pack("<II", 3, 2), "version 3 is not supported"),
        (MAGIC + struct.pack("<II", 2, 9) + b"\x00", "type 9 is unknown"),
        (MAGIC + struct.pack("<II", 2, 4), "cut short before its compression byte"),
        (v2(4, 7, b"x"), "compression 7 is unknown"),
        (v2(4, 1, b"not zstd at all"), "zstd payload is corrupt"),
    ],
)
def test_bad_containers_say_what_is_wrong(data: bytes, message: str):
    with pytest.raises(ContainerError, match=message):
        unpack(data)


def test_a_small_upload_cannot_inflate_past_the_limit():
    bomb = pack(Kind.HERMES_MAP, b"\0" * 10_000_000)
    assert len(bomb) < 2_000
    with pytest.raises(ContainerError, match="decompresses to more than 1000000 bytes"):
        unpack(bomb, max_size=1_000_000)


def test_the_kind_is_read_from_the_first_bytes_alone():
    data = pack(Kind.ELF_DEBUG_INFO, b"PK zip")
    assert header_kind(data[:HEADER_BYTES]) is Kind.ELF_DEBUG_INFO
    assert header_kind(pack_source_and_map(b"a", b"b")[:HEADER_BYTES]) is Kind.SOURCE_AND_MAP


def test_a_source_and_map_reader_names_the_kind_it_got():
    with pytest.raises(ContainerError, match="is a ProGuard mapping, not a source and map"):
        unpack_source_and_map(pack(Kind.PROGUARD_MAPPING, b"x"))
