"""Objects as files in a folder, with presigned URLs that Trapline itself serves (``routes.py``).

A presigned URL carries the key, an expiry (unix time) and, for uploads, the size limit, plus
an HMAC-SHA256 of them under a key derived from the server's secret: whoever holds the URL may
do that one thing until it expires, and changing any part of it breaks the signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from trapline.errors import PermissionDenied
from trapline.objects.store import InvalidKey, ObjectStoreError, PresignedPost, check_presign, validate_key

__all__ = ["AtomicWriter", "LocalStore", "UploadGrant"]

# The secret key also signs other things; a key derived for this one purpose means a signature
# made here can never be replayed as, or forged from, a signature made elsewhere.
_PURPOSE = b"trapline.objects.presigned.v1"
_INTEGER = re.compile(r"[0-9]{1,19}")
UPLOAD_PATH = "/_objects/upload"
DOWNLOAD_PATH = "/_objects/download"


@dataclass(frozen=True)
class UploadGrant:
    """What a verified presigned POST allows: writing ``key`` with at most ``max_size`` bytes."""

    key: str
    max_size: int


class AtomicWriter:
    """A new version of one file: written to a temporary file, then renamed over the old one.

    Readers see the old file or the whole new one, never a partial write, and a crash leaves
    at worst a stray temporary file (dot-named, which no key can be).
    """

    def __init__(self, target: Path) -> None:
        self._target = target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {target}: {exc}") from exc
        self._temp = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise ObjectStoreError(f"cannot write {self._target}: {exc}") from exc

    def commit(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self._target)
            # The rename is only durable once the directory entry is on disk too.
            directory = os.open(self._target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            self.abort()
            raise ObjectStoreError(f"cannot write {self._target}: {exc}") from exc

    def abort(self) -> None:
        # Closing flushes what is buffered, which fails again on a full disk; the file is
        # closed all the same, and must go.
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._temp.unlink(missing_ok=True)


class LocalStore:
    def __init__(self, root: Path, *, secret: bytes, base_url: str, clock: Callable[[], float] = time.time) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(f"object store folder {root} cannot be created: {exc}") from exc
        if not os.access(root, os.W_OK):
            raise ObjectStoreError(f"object store folder {root} is not writable by this user")
        # Resolved once, so that the containment check compares real paths with a real path.
        self.root = root.resolve()
        self._signing_key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
        self._base_url = base_url.rstrip("/")
        self._clock = clock

    # --- storage ------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """The file for ``key``; never outside the root, even through a symlink."""
        path = self.root / validate_key(key)
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"object key {key!r} leads outside the store")
        return path

    def writer(self, key: str) -> AtomicWriter:
        return AtomicWriter(self.path(key))

    def put(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        writer.write(data)
        writer.commit()

    def open(self, key: str) -> BinaryIO | None:
        """The object opened for reading (the caller closes it), or None when there is none.

        An open file keeps its contents even if the object is replaced or deleted meanwhile.
        """
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            # NotADirectory: "a/b" when "a" is an object; IsADirectory: "a" when "a/b" is one.
            return None
        except OSError as exc:
            raise ObjectStoreError(f"cannot read object {key!r}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        handle = self.open(key)
        if handle is None:
            return None
        try:
            with handle:
                return handle.read()
        except OSError as exc:
            raise ObjectStoreError(f"cannot read object {key!r}: {exc}") from exc

    def size(self, key: str) -> int | None:
        try:
            info = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ObjectStoreError(f"cannot read object {key!r}: {exc}") from exc
        # A directory is where keys below it live, not an object.
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except (NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise ObjectStoreError(f"cannot delete object {key!r}: {exc}") from exc

    # --- presigned URLs -----------------------------------------------------------------------

    def presigned_post(self, key: str, *, max_size: int, expires_in: int) -> PresignedPost:
        check_presign(max_size=max_size, expires_in=expires_in)
        validate_key(key)
        expires = int(self._clock()) + expires_in
        fields = {
            "key": key,
            "expires": str(expires),
            "max_size": str(max_size),
            "signature": self._sign("POST", key, expires, max_size),
        }
        return PresignedPost(url=self._base_url + UPLOAD_PATH, fields=fields)

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        check_presign(expires_in=expires_in)
        validate_key(key)
        expires = int(self._clock()) + expires_in
        query = urlencode({"key": key, "expires": expires, "signature": self._sign("GET", key, expires, 0)}, safe="/")
        return f"{self._base_url}{DOWNLOAD_PATH}?{query}"

    def check_upload(self, fields: Mapping[str, str]) -> UploadGrant:
        """The upload a presigned POST's fields allow, or ``PermissionDenied``."""
        expires = _integer(fields.get("expires"))
        max_size = _integer(fields.get("max_size"))
        key = self._check("POST", fields.get("key"), expires, max_size, fields.get("signature"))
        return UploadGrant(key=key, max_size=max_size)

    def check_download(self, params: Mapping[str, str]) -> str:
        """The key a presigned GET URL's query allows reading, or ``PermissionDenied``."""
        return self._check("GET", params.get("key"), _integer(params.get("expires")), 0, params.get("signature"))

    def _check(self, method: str, key: str | None, expires: int, max_size: int, signature: str | None) -> str:
        if key is None or signature is None:
            raise PermissionDenied("The URL is not signed: key, expires and signature are required.")
        expected = self._sign(method, key, expires, max_size)
        # compare_digest: the time taken must not tell how much of a guessed signature is right.
        if not hmac.compare_digest(expected, signature):
            raise PermissionDenied("The request signature does not match.")
        if self._clock() >= expires:
            raise PermissionDenied("The URL has expired.")
        try:
            self.path(key)
        except InvalidKey as exc:
            raise PermissionDenied("The key is not a valid object key.") from exc
        return key

    def _sign(self, method: str, key: str, expires: int, max_size: int) -> str:
        # Newline-separated: valid keys and integers contain none, so the message is unambiguous.
        message = f"{method}\n{key}\n{expires}\n{max_size}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()


def _integer(value: str | None) -> int:
    if value is None:
        raise PermissionDenied("The URL is not signed: key, expires and signature are required.")
    if not _INTEGER.fullmatch(value):
        raise PermissionDenied("The URL is malformed.")
    return int(value)
