"""The free-space watermark: below it, Trapline takes in nothing new (capture, uploads).

What was accepted before is processed as usual: the watermark leaves room for the workers,
which turn queued requests into events, for SQLite's journal and for retention's deletes.
``os.statvfs`` is a cheap system call, but capture asks on every request, so the answer is
kept for a second.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trapline.errors import Unavailable

__all__ = ["DISK_RETRY_SECONDS", "DiskSpace", "Volume", "disk_full_cause", "disk_full_error", "is_disk_full"]

_CHECK_EVERY_SECONDS = 1.0
# How long callers are asked to wait when the disk is low or full: long enough for someone to
# free space, short enough not to lose the moment.
DISK_RETRY_SECONDS = 60


@dataclass(frozen=True)
class Volume:
    path: Path
    free: int | None  # None: could not be read (the folder does not exist yet)


class DiskSpace:
    """Free space on the filesystems of ``paths``, compared with ``min_free`` bytes."""

    def __init__(
        self,
        paths: Sequence[Path],
        min_free: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        statvfs: Callable[[Path], os.statvfs_result] = os.statvfs,
    ) -> None:
        self.paths = list(dict.fromkeys(paths))
        self.min_free = min_free
        self._clock = clock
        self._statvfs = statvfs
        self._checked = -_CHECK_EVERY_SECONDS
        self._low: str | None = None
        self._volumes: list[Volume] = []

    def low(self) -> str | None:
        """Why new data is refused (which folder is below the watermark), or None."""
        now = self._clock()
        if now - self._checked >= _CHECK_EVERY_SECONDS:
            self._checked = now
            self._volumes = [Volume(path, self._free(path)) for path in self.paths]
            self._low = _describe_low(self._volumes, self.min_free)
        return self._low

    def volumes(self) -> list[Volume]:
        """The watched folders, one per filesystem (the first named of each)."""
        self.low()
        seen: set[int] = set()
        unique: list[Volume] = []
        for volume in self._volumes:
            device = _device(volume.path)
            if device is None or device not in seen:
                unique.append(volume)
                if device is not None:
                    seen.add(device)
        return unique

    def _free(self, path: Path) -> int | None:
        # A folder not made yet (the object store's, before the first upload) is on the
        # filesystem of its nearest existing parent.
        for candidate in (path, *path.parents):
            try:
                stats = self._statvfs(candidate)
            except FileNotFoundError:
                continue
            except OSError:
                return None
            return stats.f_bavail * stats.f_frsize
        return None


def _device(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return None


def _describe_low(volumes: Sequence[Volume], min_free: int) -> str | None:
    for volume in volumes:
        if volume.free is not None and volume.free < min_free:
            return (
                f"{volume.path} has {_mib(volume.free)} free, below the {_mib(min_free)} watermark "
                "(TRAPLINE_DISK_MIN_FREE)"
            )
    return None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk is full: ENOSPC/EDQUOT, SQLite's
    SQLITE_FULL ("database or disk is full") or PostgreSQL's disk_full (53100)."""
    return disk_full_cause(exc) is not None


def disk_full_cause(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain that says the disk is full, or None; in the driver's or
    the system's words, so it can be logged as it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            # SQLAlchemy's message adds the statement and its values, events' text among them
            # (an app's own "No space left on device"): only the driver's words count.
            current = orig
            continue
        if _says_full(current):
            return current
        current = current.__cause__ or current.__context__
    return None


# SQLite's codes: SQLITE_FULL, and the shared-memory file of WAL mode that cannot grow (a
# connection opened on a full disk fails with it, in the words "disk I/O error").
_SQLITE_FULL = {"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE"}


def _says_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if getattr(exc, "sqlite_errorname", None) in _SQLITE_FULL:
        return True
    if getattr(exc, "sqlstate", None) == "53100":  # PostgreSQL's disk_full
        return True
    text = str(exc).lower()
    return "database or disk is full" in text or "no space left on device" in text


def disk_full_error(exc: BaseException) -> Unavailable | None:
    """What to answer instead of a server error when ``exc`` says the disk is full, else None.

    Whatever the request was writing was rolled back (SQLite's journal, the object store's
    temporary file), so the same request can simply be made again once there is room.
    """
    if not is_disk_full(exc):
        return None
    return Unavailable(
        "The server's disk is full, so nothing was saved; retry later.",
        code="disk_full",
        retry_after=DISK_RETRY_SECONDS,
    )
