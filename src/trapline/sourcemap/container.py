"""The bytes uploaded for one symbol set: PostHog's "symbol data" container (see
``trapline.symbols.container``, which the server reads them with), and its content hash."""

from __future__ import annotations

import hashlib
from typing import Final

from trapline.symbols.container import pack_source_and_map

__all__ = ["MAX_SIZE", "content_hash", "source_and_map"]

# PostHog refuses symbol sets above 100 MiB (bulk_start_upload's `file_too_large`).
MAX_SIZE: Final = 100 * 1024 * 1024

source_and_map = pack_source_and_map


def content_hash(data: bytes) -> str:
    """Lowercase hex SHA-512: the equality token the server compares re-uploads with."""
    return hashlib.sha512(data).hexdigest()
