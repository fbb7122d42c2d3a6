"""What an uploaded symbol set must be before its upload is confirmed.

The upload request never names a kind (the container's header does), so the server checks
the bytes themselves when the client confirms an upload: a file that is not a symbol set, a
corrupt or truncated one, or one that inflates past the limit is refused there, with the
reason, instead of failing every frame that later asks for it. The checks read structure,
not every symbol: a map that parses as JSON with mappings, a mapping file with classes, a
ZIP holding a debug file whose object headers parse. What only resolution can find (a
missing token, an address outside every function) still shows up on the frames.
"""

from __future__ import annotations

import orjson

from trapline.symbols.container import ContainerError, Kind, unpack, unpack_source_and_map
from trapline.symbols.native import open_debug_zip

__all__ = ["upload_problem"]

_ZIP = b"PK\x03\x04"


def upload_problem(data: bytes, *, max_unpacked: int) -> str | None:
    """Why ``data`` cannot be a symbol set, or None if it can."""
    if data.startswith(_ZIP):
        # An older posthog-cli uploaded a dSYM bundle's ZIP with no container around it.
        return _zip_problem(data, "dSYM ZIP")
    try:
        container = unpack(data, max_size=max_unpacked)
    except ContainerError as exc:
        return str(exc)
    payload = container.payload
    if container.kind is Kind.SOURCE_AND_MAP:
        try:
            unpack_source_and_map(data)
        except ContainerError as exc:
            return str(exc)
        return None
    if container.kind is Kind.HERMES_MAP:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return f"the Hermes map is not JSON: {exc}"
        if not isinstance(document, dict) or not isinstance(document.get("mappings"), str):
            return "the Hermes map is not a source map (it has no mappings)"
        return None
    if container.kind is Kind.PROGUARD_MAPPING:
        if b" -> " not in payload or not any(
            line and not line[:1].isspace() and not line.startswith(b"#") and line.rstrip().endswith(b":")
            for line in payload.splitlines()
        ):
            return "the ProGuard mapping has no class mappings (lines like 'com.example.Foo -> a:')"
        return None
    return _zip_problem(payload, container.kind.label)


def _zip_problem(data: bytes, what: str) -> str | None:
    opened = open_debug_zip(data, what=what)
    return opened if isinstance(opened, str) else None
