"""The object store interface: bytes under relative keys, plus S3-style presigned URLs.

PostHog's CLI uploads symbol sets with an S3 presigned POST and the server later reads them
back, so every store (a local folder, S3, memory for tests) speaks in those terms. Keys are
relative, slash-separated and checked by ``validate_key`` in every store, so a key that one
store accepts is accepted by all of them and none can name a place outside the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from trapline.settings import Settings

__all__ = ["InvalidKey", "ObjectStore", "ObjectStoreError", "PresignedPost", "open_store", "validate_key"]

# S3 keys are at most 1024 bytes; file names at most 255 on common file systems.
_KEY_MAX_LENGTH = 1024
_SEGMENT_MAX_LENGTH = 255
# A segment starts with a letter or digit: that rules out ".", "..", hidden files (the local
# store's temporary files start with a dot, so no key can collide with them) and "-options".
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# S3 refuses presigned GET URLs valid for longer than 7 days; we keep every store to the same.
_EXPIRES_IN_MAX = 7 * 24 * 3600


class ObjectStoreError(Exception):
    """The store could not do its job (S3 unreachable or refusing, a disk error)."""


class InvalidKey(ValueError):
    """A key is not a relative, slash-separated path of safe characters: a bug in the caller."""


@dataclass(frozen=True)
class PresignedPost:
    """Where and what to POST: every field as a text part, then the file as a part named ``file``."""

    url: str
    fields: dict[str, str]


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes without reading it, or None when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing one is not an error."""
        ...

    def presigned_post(self, key: str, *, max_size: int, expires_in: int) -> PresignedPost:
        """A form upload of at most ``max_size`` bytes to ``key``, valid for ``expires_in`` seconds."""
        ...

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        """A URL anyone can GET the object from for ``expires_in`` seconds."""
        ...


def validate_key(key: str) -> str:
    """``key`` itself when it is safe everywhere, else ``InvalidKey``."""
    if not key or len(key) > _KEY_MAX_LENGTH:
        raise InvalidKey(f"object key must be 1 to {_KEY_MAX_LENGTH} characters: {key!r}")
    for segment in key.split("/"):
        # fullmatch, not match + "$": "$" also matches before a trailing newline.
        if len(segment) > _SEGMENT_MAX_LENGTH or not _SEGMENT.fullmatch(segment):
            raise InvalidKey(f"object key {key!r} is not a relative path of letters, digits, '.', '_' and '-'")
    return key


def check_presign(*, max_size: int | None = None, expires_in: int) -> None:
    """Refuse arguments no store could honour the same way."""
    if max_size is not None and max_size < 0:
        raise ValueError(f"max_size must not be negative: {max_size}")
    if not 1 <= expires_in <= _EXPIRES_IN_MAX:
        raise ValueError(f"expires_in must be between 1 and {_EXPIRES_IN_MAX} seconds: {expires_in}")


def open_store(settings: Settings) -> ObjectStore:
    """The store ``settings.object_store_url`` names (``file:///folder`` or ``s3://bucket/prefix``)."""
    # Imported here: each backend imports this module, and boto3 is only loaded when used.
    parts = urlsplit(settings.object_store_url)
    if settings.objects_folder is not None:
        from trapline.objects.local import LocalStore

        if settings.secret_key is None:
            raise ObjectStoreError("the local object store signs its URLs with the secret key, which is not set")
        return LocalStore(
            settings.objects_folder,
            secret=settings.secret_key.get_secret_value().encode(),
            base_url=settings.base_url,
        )
    if parts.scheme == "s3":
        from trapline.objects.s3 import S3Store

        return S3Store.from_settings(settings)
    raise ObjectStoreError(f"unsupported object store URL {settings.object_store_url!r}")
