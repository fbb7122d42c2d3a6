"""Capture's landing log: accepted requests appended to a plain file and synced before the 200.

On SQLite, committing each flush of accepted requests to the queue's file cost capture most of
its own CPU besides decoding: the statements, the pages of both tables and their interior
pages rewritten per commit (~9 kB written per ~2.5 kB request), and the checkpoint writing
them again. Here capture only appends each flush's records to a file of its own and syncs it
(``fdatasync``): one write and one sync, no SQLite. Workers move the records into the queue's
tables when they claim (``queue.load_landed``), the file's mark of what was moved in the same
transaction as the rows, so each record is queued once.

The format: one record after another, each ``<length><checksum>`` (little-endian, 4 bytes
each) and then its body: a kind byte, the length of a JSON header, the header, and (for
requests) the payload. The checksum is Adler-32: a sixth of CRC-32's cost on these records,
and enough to tell a torn write (zeros, or a stale block) from a whole one. A record whose
length runs past the end of the file, or whose checksum does not match, ends what can be
read: while its writer lives it is still being written; once the writer is gone (a crash or
power cut between the write and the sync) it is a torn tail, and nothing after it was ever
answered 200.

Each file has one writer, for its life: a server's spool opens a new file when it starts
(named by time, process and a random part) and holds an exclusive ``flock`` on it until it
closes it, so a loader knows a file whose lock it can take will not grow any more. Such a
file, loaded to its end, is deleted. A writer also moves to a new file past ``ROTATE_BYTES``,
and after a failed write or sync: what follows a failure in the old file is never appended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "ROTATE_BYTES",
    "Landed",
    "LandingWriter",
    "folder_for",
    "read_landed",
    "request_record",
    "signal_record",
    "sizes",
    "sync_folder",
    "writer_gone",
]

SUFFIX = ".log"
# A writer moves on to a new file past this size: loaded files are deleted whole.
ROTATE_BYTES = 64 << 20
# At most this much of a file is read per load: a backlog left by stopped workers is moved a
# bounded slice per transaction.
READ_BYTES = 16 << 20

_FRAME = struct.Struct("<II")  # body length, Adler-32 of the body
_KIND = struct.Struct("<BI")  # record kind, header length
_REQUEST = 1
_SIGNAL = 2

# A queued request's row as the queue inserts it: project, received_at (SQLite's text),
# sent_at, event count, payload.
RequestRow = tuple[int, str, str | None, int, bytes]
# A session signal's row: project, session, signal, first_at and expires_at (SQLite's text).
SignalRow = tuple[int, str, str, str, str]


def folder_for(queue_file: str) -> Path:
    """The landing folder beside the queue's SQLite file (``trapline.queue.db`` →
    ``trapline.queue.landing``)."""
    path = Path(queue_file)
    return path.with_name(f"{path.stem}.landing")


# --- records (pure) ---------------------------------------------------------------------------


def request_record(row: RequestRow) -> bytes:
    project_id, received_at, sent_at, event_count, payload = row
    return _record(_REQUEST, [project_id, received_at, sent_at, event_count], payload)


def signal_record(row: SignalRow) -> bytes:
    return _record(_SIGNAL, list(row), b"")


def _record(kind: int, header: list[Any], payload: bytes) -> bytes:
    head = orjson.dumps(header)
    body = b"".join((_KIND.pack(kind, len(head)), head, payload))
    return _FRAME.pack(len(body), zlib.adler32(body)) + body


@dataclass
class Parsed:
    """What a slice of a landing file holds: its whole records' rows, and where they end."""

    requests: list[RequestRow] = field(default_factory=list)
    signals: list[SignalRow] = field(default_factory=list)
    end: int = 0  # bytes of the slice taken by whole, valid records
    bad: bool = False  # stopped at a record whose checksum does not match (or not readable)


def parse(data: bytes | memoryview) -> Parsed:
    """The records at the start of ``data``, up to its end or the first incomplete or damaged one."""
    view = memoryview(data)
    parsed = Parsed()
    at = 0
    frame = _FRAME.size
    while len(view) - at >= frame:
        length, checksum = _FRAME.unpack_from(view, at)
        start, end = at + frame, at + frame + length
        if end > len(view):
            break  # still being written, or torn
        body = view[start:end]
        if zlib.adler32(body) != checksum or length < _KIND.size:
            parsed.bad = True
            break
        try:
            kind, head_length = _KIND.unpack_from(body)
            header = orjson.loads(body[_KIND.size : _KIND.size + head_length])
            if kind == _REQUEST:
                project_id, received_at, sent_at, event_count = header
                payload = bytes(body[_KIND.size + head_length :])
                parsed.requests.append((project_id, received_at, sent_at, event_count, payload))
            elif kind == _SIGNAL:
                project_id, session_id, signal, first_at, expires_at = header
                parsed.signals.append((project_id, session_id, signal, first_at, expires_at))
            else:
                raise ValueError(f"unknown record kind {kind}")
        except (ValueError, orjson.JSONDecodeError):
            # Checksummed, so written by a version that knew it, or damaged past the checksum.
            parsed.bad = True
            break
        at = end
    parsed.end = at
    return parsed


# --- the writer -------------------------------------------------------------------------------


class LandingWriter:
    """Appends records to this process's landing file, and syncs them (one thread at a time)."""

    def __init__(self, folder: Path, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.folder = folder
        self._rotate_bytes = rotate_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0
        self.path = self._open()

    def _open(self) -> Path:
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The new name must survive a power cut before anything in it is answered 200.
            sync_folder(self.folder)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._size = fd, 0
        return path

    def append(self, records: Sequence[bytes]) -> None:
        """Write ``records`` (not yet synced: see ``sync``). On a failure the file is left
        behind, what was written of them a torn tail, and the next append goes to a new file."""
        data = b"".join(records)
        try:
            if self._fd < 0:
                self.path = self._open()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self._size += written
        except BaseException:
            self._abandon()
            raise

    def sync(self) -> None:
        """Make every record appended so far survive a power loss."""
        try:
            os.fdatasync(self._fd)
        except BaseException:
            self._abandon()
            raise
        if self._size >= self._rotate_bytes:
            self._abandon()  # synced and whole: loaders finish it and delete it

    def _abandon(self) -> None:
        """Close the current file (giving up its lock): nothing more is written to it."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self._abandon()


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ----------------------------------------------------------------------------------


def sizes(folder: Path) -> dict[str, int]:
    """Each landing file in ``folder`` and its size now (none if the folder does not exist)."""
    found: dict[str, int] = {}
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return found
    with entries:
        for entry in entries:
            if entry.name.endswith(SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    found[entry.name] = entry.stat().st_size
    return found


@dataclass
class Landed:
    """What one load read: rows to queue, each file's new mark, and files finished (their writer
    gone and every whole record in them read), and the bytes of torn tails skipped."""

    requests: list[RequestRow] = field(default_factory=list)
    signals: list[SignalRow] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    torn: dict[str, int] = field(default_factory=dict)
    _locks: list[int] = field(default_factory=list)

    def release(self) -> None:
        """Give up the locks taken on finished files (after they are deleted, or not)."""
        for fd in self._locks:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._locks.clear()


def writer_gone(path: Path) -> bool:
    """Whether the file at ``path`` has no writer any more (or is gone itself)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def read_landed(folder: Path, marks: dict[str, int], names: Iterable[str]) -> Landed:
    """Read the records of ``names`` in ``folder`` past their ``marks`` (offsets already moved
    into the queue), about ``READ_BYTES`` in all. Call ``release`` on the answer once its
    finished files are dealt with."""
    landed = Landed()
    budget = READ_BYTES
    for name in sorted(names):
        if budget <= 0:
            break
        try:
            fd = os.open(folder / name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # deleted by another loader meanwhile
        # The writer's lock, taken first: a file whose writer is gone does not grow any more,
        # so reading to its end (after taking the lock) reads everything it will ever hold.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            writer_gone = True
        except BlockingIOError:
            writer_gone = False
        offset = marks.get(name, 0)
        try:
            size = os.fstat(fd).st_size
            data, parsed = _read_past(fd, offset, size, budget)
        except BaseException:
            os.close(fd)
            raise
        budget -= len(data)
        landed.requests += parsed.requests
        landed.signals += parsed.signals
        if parsed.end:
            landed.marks[name] = offset + parsed.end
        read_to_end = offset + len(data) == size
        if writer_gone and (read_to_end or parsed.bad):
            if offset + parsed.end < size:
                landed.torn[name] = size - offset - parsed.end
            landed.finished.append(name)
            landed._locks.append(fd)  # held until the file is deleted
        else:
            os.close(fd)
    return landed


def _read_past(fd: int, offset: int, size: int, budget: int) -> tuple[bytes, Parsed]:
    """About ``budget`` bytes of the file past ``offset``, and their records; at least one
    whole record when there is one, however large."""
    data = os.pread(fd, min(size - offset, budget), offset) if size > offset else b""
    parsed = parse(data)
    if not parsed.end and not parsed.bad and len(data) >= _FRAME.size and offset + len(data) < size:
        whole = _FRAME.size + _FRAME.unpack_from(data)[0]
        data = os.pread(fd, min(size - offset, whole), offset)
        parsed = parse(data)
    return data, parsed
