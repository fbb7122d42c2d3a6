"""A store in a dict, for tests of the modules that use one.

It checks keys and presign arguments like the real stores, so a test that passes here does
not fail only because LocalStore or S3Store is stricter. Its URLs cannot be fetched.
"""

from __future__ import annotations

import threading

from trapline.objects.store import PresignedPost, check_presign, validate_key

__all__ = ["InMemoryStore"]


class InMemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        # Route handlers run in a thread pool; the lock keeps that safe on free-threaded Pythons too.
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[validate_key(key)] = bytes(data)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self.objects.get(validate_key(key))

    def size(self, key: str) -> int | None:
        data = self.get(key)
        return None if data is None else len(data)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(validate_key(key), None)

    def presigned_post(self, key: str, *, max_size: int, expires_in: int) -> PresignedPost:
        check_presign(max_size=max_size, expires_in=expires_in)
        # Callers read the key back from the fields, as they must from S3's.
        return PresignedPost(url="memory://upload", fields={"key": validate_key(key), "max_size": str(max_size)})

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        check_presign(expires_in=expires_in)
        return f"memory://download/{validate_key(key)}"
