"""The free-space watermark and what counts as a full disk, with a fake statvfs and clock."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from trapline.diskspace import DISK_RETRY_SECONDS, DiskSpace, disk_full_cause, disk_full_error, is_disk_full
from trapline.objects.store import ObjectStoreError

MIB = 1024 * 1024


class FakeDisks:
    """statvfs over made-up filesystems: free bytes per path; missing paths raise like the real one."""

    def __init__(self, free: dict[Path, int]) -> None:
        self.free = free
        self.calls = 0

    def __call__(self, path: Path) -> os.statvfs_result:
        self.calls += 1
        if path not in self.free:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax
        return os.statvfs_result((4096, 4096, 0, 0, self.free[path] // 4096, 0, 0, 0, 0, 255))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_room_above_the_watermark_is_not_low():
    disks = FakeDisks({Path("/data"): 10 * MIB})
    assert DiskSpace([Path("/data")], 4 * MIB, statvfs=disks).low() is None


def test_below_the_watermark_names_the_folder_and_the_setting():
    disks = FakeDisks({Path("/data"): 10 * MIB, Path("/objects"): 2 * MIB})
    low = DiskSpace([Path("/data"), Path("/objects")], 4 * MIB, statvfs=disks).low()
    assert low is not None
    assert low.startswith("/objects has 2 MiB free, below the 4 MiB watermark")
    assert "TRAPLINE_DISK_MIN_FREE" in low


def test_a_folder_not_made_yet_is_judged_by_its_nearest_parent():
    disks = FakeDisks({Path("/srv"): 1 * MIB})
    space = DiskSpace([Path("/srv/trapline/objects")], 4 * MIB, statvfs=disks)
    assert space.low() is not None
    assert space.volumes()[0].free == 1 * MIB


def test_an_unreadable_folder_refuses_nothing():
    def broken(path: Path) -> os.statvfs_result:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    space = DiskSpace([Path("/data")], 4 * MIB, statvfs=broken)
    assert space.low() is None
    assert space.volumes()[0].free is None


def test_a_zero_watermark_never_refuses():
    disks = FakeDisks({Path("/data"): 0})
    assert DiskSpace([Path("/data")], 0, statvfs=disks).low() is None


def test_the_answer_is_kept_for_a_second():
    disks = FakeDisks({Path("/data"): 10 * MIB})
    clock = Clock()
    space = DiskSpace([Path("/data")], 4 * MIB, statvfs=disks, clock=clock)
    assert space.low() is None
    disks.free[Path("/data")] = 1 * MIB
    clock.now += 0.5
    assert space.low() is None  # capture asks on every request: no system call for each
    assert disks.calls == 1
    clock.now += 0.5
    assert space.low() is not None
    disks.free[Path("/data")] = 10 * MIB
    clock.now += 1
    assert space.low() is None  # and room comes back as soon as it is seen


def test_the_same_folder_twice_is_asked_once():
    disks = FakeDisks({Path("/data"): 10 * MIB})
    DiskSpace([Path("/data"), Path("/data")], 4 * MIB, statvfs=disks).low()
    assert disks.calls == 1


def sqlite_full() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("database or disk is full")


def shm_cannot_grow() -> sqlite3.OperationalError:
    # A connection opened on a full disk: WAL's shared-memory file cannot be sized.
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorname = "SQLITE_IOERR_SHMSIZE"  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sqlite_full(),
        OperationalError("INSERT INTO ingest_queue …", {}, sqlite_full()),
        shm_cannot_grow(),
        psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device'),
    ],
    ids=["ENOSPC", "EDQUOT", "sqlite3", "sqlalchemy", "sqlite3-shm", "postgresql"],
)
def test_a_full_disk_is_recognised(exc: BaseException):
    assert is_disk_full(exc)


def test_a_full_disk_is_recognised_as_a_cause():
    exc = ObjectStoreError("cannot write objects/a")
    exc.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_disk_full(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EIO, "Input/output error"),
        sqlite3.OperationalError("database is locked"),
        OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")),
        RuntimeError("disk full"),  # a bug that talks about disks is still a bug
        # An app's own ENOSPC, reported as an event, in the values of a statement that failed.
        IntegrityError(
            "INSERT INTO exception_event …",
            {"properties": "OSError: [Errno 28] No space left on device"},
            sqlite3.IntegrityError("UNIQUE constraint failed: exception_event.uuid"),
        ),
    ],
    ids=["EIO", "locked", "ioerr", "runtime", "event-text"],
)
def test_other_errors_are_not_a_full_disk(exc: BaseException):
    assert not is_disk_full(exc)
    assert disk_full_error(exc) is None


def test_a_full_disk_is_answered_as_unavailable_for_a_while():
    error = disk_full_error(OSError(errno.ENOSPC, "No space left on device"))
    assert error is not None
    assert (error.code, error.retry_after) == ("disk_full", DISK_RETRY_SECONDS)
    assert "nothing was saved" in error.detail


def test_the_cause_is_told_in_the_drivers_words_without_the_statements_values():
    driver = sqlite_full()
    wrapped = OperationalError("INSERT INTO ingest_payload (id, payload) VALUES (?, ?)", (1, b"secret"), driver)
    assert disk_full_cause(wrapped) is driver
    assert disk_full_cause(RuntimeError("disk full")) is None
