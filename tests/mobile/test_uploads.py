"""Mobile and native symbol sets through PostHog's upload protocol: real artefacts in the
containers posthog-cli writes are accepted; what cannot be a symbol set is refused when the
upload is confirmed, with the reason, and leaves nothing behind."""

from __future__ import annotations

import functools
import io
import struct
import uuid
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_symbol_sets import error, presigned_upload, sha512, start, url
from tests.factories import Tenant
from tests.mobile.artefacts import dsym_build, hermes_build, native_build, proguard_build
from tests.mobile.test_resolution import dwarf_zip
from trapline.db.engine import Database
from trapline.symbols.container import MAGIC, Kind, pack
from trapline.symbols.models import SymbolSet


def finish(client: TestClient, tenant: Tenant, ref: str, data: bytes) -> Any:
    started = start(client, tenant, {"chunk_id": ref, "content_hash": sha512(data)})
    assert started.status_code == 201, started.text
    entry = started.json()["id_map"][ref]
    assert presigned_upload(client, entry["presigned_url"], data).status_code == 204
    return client.post(
        url(tenant, "bulk_finish_upload"),
        json={"content_hashes": {entry["symbol_set_id"]: sha512(data)}},
        headers=tenant.headers(),
    )


@functools.cache  # built once for all the cases (a parametrised test calls it per case)
def good_uploads() -> dict[str, bytes]:
    dsym = dsym_build()
    return {
        "hermes": pack(Kind.HERMES_MAP, hermes_build().map_path.read_bytes()),
        "proguard": pack(Kind.PROGUARD_MAPPING, proguard_build().mapping_path.read_bytes()),
        "elf": pack(Kind.ELF_DEBUG_INFO, dwarf_zip(native_build().debug_file_path.read_bytes())),
        "dsym": pack(Kind.APPLE_DSYM, dwarf_zip(dsym.dwarf_path.read_bytes())),
        "uncompressed": pack(Kind.PROGUARD_MAPPING, proguard_build().mapping_path.read_bytes(), compress=False),
    }


@pytest.mark.parametrize("kind", ["hermes", "proguard", "elf", "dsym", "uncompressed"])
def test_real_symbol_sets_of_every_kind_are_accepted(client: TestClient, tenant: Tenant, kind: str):
    response = finish(client, tenant, f"ref-{kind}", good_uploads()[kind])
    assert (response.status_code, response.json()) == (201, {"success": True})


@functools.cache
def corrupt_uploads() -> dict[str, tuple[bytes, str]]:
    def zipped(**files: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        return buffer.getvalue()

    garbage_zstd = MAGIC + struct.pack("<II", 2, 4) + b"\x01" + b"this is not zstd"
    mapping = proguard_build().mapping_path.read_bytes()
    return {
        "not a container": (b"com.example.Foo -> a:\n", "posthog_error_tracking header is missing"),
        "unknown type": (MAGIC + struct.pack("<II", 2, 9) + b"\x00{}", "symbol set type 9 is unknown"),
        "corrupt zstd": (garbage_zstd, "zstd payload is corrupt"),
        "truncated": (pack(Kind.PROGUARD_MAPPING, mapping)[:60], "zstd payload is corrupt"),
        "hermes map not json": (pack(Kind.HERMES_MAP, b"{not json"), "the Hermes map is not JSON"),
        "a mapping as hermes map": (pack(Kind.HERMES_MAP, b'{"version": 3}'), "has no mappings"),
        "a hermes map as mapping": (pack(Kind.PROGUARD_MAPPING, hermes_build().map_path.read_bytes()), "no class"),
        "zip without dwarf": (pack(Kind.ELF_DEBUG_INFO, zipped(readme=b"hi")), "holds no debug file"),
        "dwarf not an object": (pack(Kind.APPLE_DSYM, zipped(dwarf=b"just text")), "debug file cannot be read"),
        "not a zip": (pack(Kind.ELF_DEBUG_INFO, b"ELF? no"), "not a readable ZIP"),
        # The limit is lowered to 1 MB for the tests (see below): 2 MB of spaces pack to a few bytes.
        "zip bomb": (pack(Kind.HERMES_MAP, b" " * (2 * 1024 * 1024)), "decompresses to more than 1048576 bytes"),
    }


@pytest.mark.parametrize("case", list(corrupt_uploads()))
def test_what_cannot_be_a_symbol_set_is_refused_on_finish(
    client: TestClient, tenant: Tenant, database: Database, case: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("trapline.symbols.service.MAX_UNPACKED", 1024 * 1024)
    data, reason = corrupt_uploads()[case]
    detail = error(finish(client, tenant, "broken", data), 400, "invalid_file")
    assert "is not a usable symbol set" in detail and reason in detail, detail
    with database.session(write=False) as session:
        assert session.query(SymbolSet).filter_by(project_id=tenant.project_id, ref="broken").count() == 0


def test_a_symbol_set_over_the_size_limit_is_refused_before_upload(client: TestClient, tenant: Tenant):
    too_big = {"chunk_id": str(uuid.uuid4()), "content_hash": "h", "content_length": 101 * 1024 * 1024}
    detail = error(start(client, tenant, too_big), 400, "file_too_large")
    assert "over the" in detail
