"""Capture's landing log (trapline.events.landing): what capture answered 200 for is in a synced
file, and workers move each record into the queue exactly once, whatever died when."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.capture import exception_event
from tests.factories import Tenant
from trapline.db import migrate
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import utcnow
from trapline.events import landing, queue
from trapline.events.models import QueuedPayload, QueuedRequest, SessionSignal
from trapline.events.queue_file import load_landed, load_stalled
from trapline.ingest.spool import Spool


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = open_database(f"sqlite:///{tmp_path / 'trapline.db'}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def folder(database: Database) -> Path:
    assert database.queue.path is not None
    return landing.folder_for(database.queue.path)


def request(project_id: int = 1, payload: bytes = b"[]", events: int = 1) -> queue.NewRequest:
    return queue.NewRequest(project_id=project_id, received_at=utcnow(), sent_at="2026-12-05T10:00:00Z",
                            payload=payload, event_count=events)  # fmt: skip


def queued(database: Database) -> list[tuple[int, str | None, int, bytes]]:
    with database.queue.session(write=False) as session:
        rows = session.execute(
            select(QueuedRequest.project_id, QueuedRequest.sent_at, QueuedRequest.event_count, QueuedPayload.payload)
            .join(QueuedPayload, QueuedPayload.id == QueuedRequest.id)
            .order_by(QueuedRequest.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def land(writer: landing.LandingWriter, *requests: queue.NewRequest) -> None:
    writer.append(queue.landing_records(requests))
    writer.sync()


def test_records_read_back_as_the_rows_they_were_made_from() -> None:
    rows = [(7, "2026-12-05 10:00:00.000001", None, 3, b'[{"event":"$exception"}]'), (8, "t", "s", 0, b"")]
    signals = [(7, "session", "url:https://x", "2026-12-05 10:00:00.000000", "2026-12-06 10:00:00.000000")]
    data = b"".join([landing.signal_record(signals[0]), *map(landing.request_record, rows)])
    parsed = landing.parse(data)
    assert (parsed.requests, parsed.signals, parsed.end, parsed.bad) == (rows, signals, len(data), False)
    # A record cut short ends the readable part; one whose bytes changed is flagged.
    cut = landing.parse(data[:-5])
    assert (len(cut.requests), cut.end, cut.bad) == (1, len(data) - len(landing.request_record(rows[1])), False)
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    broken = landing.parse(bytes(damaged))
    assert (len(broken.requests), broken.bad) == (1, True)


def test_what_capture_lands_is_moved_into_the_queue_once_and_the_file_goes_when_its_writer_does(db: Database):
    writer = landing.LandingWriter(folder(db))
    land(writer, request(payload=b"[1]"), request(payload=b"[2]", events=2))
    assert queued(db) == []  # nothing in SQLite until a worker claims
    assert load_landed(db.queue) == 2
    assert queued(db) == [(1, "2026-12-05T10:00:00Z", 1, b"[1]"), (1, "2026-12-05T10:00:00Z", 2, b"[2]")]
    assert load_landed(db.queue) == 0  # nothing new
    land(writer, request(payload=b"[3]"))
    assert load_landed(db.queue) == 1
    assert writer.path.exists()  # its writer still holds it
    writer.close()
    assert load_landed(db.queue) == 0
    assert not writer.path.exists()
    assert [row[3] for row in queued(db)] == [b"[1]", b"[2]", b"[3]"]
    with db.queue.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM landing_mark").scalar_one() == 0


def test_a_claim_moves_what_was_landed_first(db: Database):
    writer = landing.LandingWriter(folder(db))
    land(writer, request(payload=b"[1]"))
    claimed = queue.claim(db, "w1", 10, queue.timedelta(seconds=60))
    assert [c.payload for c in claimed] == [b"[1]"]
    writer.close()


def test_signals_and_drops_land_with_their_requests(db: Database):
    writer = landing.LandingWriter(folder(db))
    signal_ = queue.NewSignal(1, "session-1", "url", utcnow())
    drop = queue.NewDrop(1, "rate_limited_project", 5, "over its limit")
    writer.append(queue.landing_records([request()], [signal_, signal_], [drop]))
    writer.sync()
    load_landed(db.queue)
    assert [row[2] for row in queued(db)] == [1, 0]  # a drop count is a request without events
    with db.queue.session(write=False) as session:
        assert [s.session_id for s in session.scalars(select(SessionSignal))] == ["session-1"]
    writer.close()


def test_a_torn_tail_left_by_a_dead_writer_is_skipped_and_logged(db: Database, caplog: pytest.LogCaptureFixture):
    writer = landing.LandingWriter(folder(db))
    land(writer, request(payload=b"[1]"))
    whole = landing.request_record((1, "t", None, 1, b"[2]"))
    with open(writer.path, "ab") as file:  # the power went between the write and its sync
        file.write(whole[: len(whole) // 2])
    writer.close()
    with caplog.at_level(logging.WARNING, "trapline.events.queue_file"):
        assert load_landed(db.queue) == 1
    assert [row[3] for row in queued(db)] == [b"[1]"]
    assert not writer.path.exists()
    assert any("torn" in r.message and r.bytes == len(whole) // 2 for r in caplog.records)  # type: ignore[attr-defined]


def test_a_record_cut_short_while_its_writer_lives_waits_for_the_rest(db: Database):
    writer = landing.LandingWriter(folder(db))
    whole = landing.request_record((1, "t", None, 1, b"[2]"))
    with open(writer.path, "ab") as file:  # what a loader may see in the middle of a write
        file.write(whole[:10])
        assert load_landed(db.queue) == 0
        file.write(whole[10:])
    assert load_landed(db.queue) == 1
    writer.close()


_KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from trapline.events import landing
writer = landing.LandingWriter(Path(sys.argv[1]))
writer.append([landing.request_record((1, "t", None, 1, b"[%d]" % n)) for n in range(3)])
writer.sync()
writer.append([landing.request_record((1, "t", None, 1, b"[unsynced]"))[:20]])
print(writer.path, flush=True)
time.sleep(60)
"""


def test_a_writer_killed_mid_file_leaves_a_file_the_next_load_finishes(db: Database):
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder(db))], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    path = Path(child.stdout.readline().strip())
    assert load_landed(db.queue) == 3
    assert path.exists()  # locked: its writer may still append
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert load_landed(db.queue) == 0
    assert not path.exists()
    assert [row[3] for row in queued(db)] == [b"[0]", b"[1]", b"[2]"]


def test_loaders_racing_move_each_record_once(db: Database):
    writer = landing.LandingWriter(folder(db))
    for n in range(50):
        land(writer, *(request(payload=b"[%d,%d]" % (n, k)) for k in range(20)))
    writer.close()
    errors: list[BaseException] = []

    def load() -> None:
        try:
            other = open_database(f"sqlite:///{Path(db.engine.url.database or '')}")  # another process's view
            try:
                load_landed(other.queue)
            finally:
                other.dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load_landed(db.queue)
    assert errors == []
    payloads = [row[3] for row in queued(db)]
    assert sorted(payloads) == sorted(b"[%d,%d]" % (n, k) for n in range(50) for k in range(20))
    assert os.listdir(folder(db)) == []


def test_a_writer_moves_to_a_new_file_past_its_size_and_the_old_one_goes_once_moved(db: Database):
    writer = landing.LandingWriter(folder(db), rotate_bytes=200)
    first = writer.path
    land(writer, request(payload=b"x" * 300))
    land(writer, request(payload=b"y"))
    assert writer.path != first
    assert load_landed(db.queue) == 2
    assert not first.exists() and writer.path.exists()
    writer.close()


def test_a_record_larger_than_a_load_reads_is_moved_whole(db: Database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(landing, "READ_BYTES", 100)
    writer = landing.LandingWriter(folder(db))
    land(writer, request(payload=b"a" * 500), request(payload=b"b" * 500))
    writer.close()
    moved = [load_landed(db.queue) for _ in range(3)]
    assert moved == [1, 1, 0]
    assert [len(row[3]) for row in queued(db)] == [500, 500]


def test_a_failed_write_leaves_the_file_and_the_next_flush_goes_to_a_new_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    writer = landing.LandingWriter(folder(db))
    first = writer.path
    land(writer, request(payload=b"[1]"))
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[:7]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(landing.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        writer.append(queue.landing_records([request(payload=b"[lost]")]))
    monkeypatch.setattr(landing.os, "write", real_write)
    land(writer, request(payload=b"[2]"))
    assert writer.path != first
    assert load_landed(db.queue) == 2
    assert [row[3] for row in queued(db)] == [b"[1]", b"[2]"]
    assert not first.exists()
    writer.close()


def test_with_no_worker_claiming_the_backlog_check_moves_what_waits(db: Database):
    writer = landing.LandingWriter(folder(db))
    land(writer, request())
    seen = load_stalled(db.queue, {})
    assert queued(db) == []  # landed just now: a worker may claim it yet
    seen = load_stalled(db.queue, seen)
    assert len(queued(db)) == 1
    land(writer, request())
    seen = load_stalled(db.queue, seen)
    load_landed(db.queue)  # a worker's claim
    load_stalled(db.queue, seen)
    assert len(queued(db)) == 2
    writer.close()


@pytest.mark.anyio
async def test_the_spool_answers_once_its_records_are_synced(db: Database, monkeypatch: pytest.MonkeyPatch):
    spool = Spool(db)
    await spool.start()
    synced: list[int] = []
    real_sync = landing.LandingWriter.sync

    def watched(self: landing.LandingWriter) -> None:
        synced.append(os.path.getsize(self.path))
        real_sync(self)

    monkeypatch.setattr(landing.LandingWriter, "sync", watched)
    try:
        await spool.append([request(payload=orjson.dumps([exception_event()]))])
        assert synced and synced[-1] > 0  # the record was written before the answer, then synced
    finally:
        await spool.stop()
    assert load_landed(db.queue) == 1
    assert os.listdir(folder(db)) == []  # the stopped spool's file, moved whole, is gone


def test_capture_lands_and_a_worker_stores(client: Any, tenant: Tenant, database: Database) -> None:
    if not database.queue_apart:
        pytest.skip("PostgreSQL: capture inserts into the queue table")
    event = exception_event()
    response = client.post("/batch/", json={"api_key": tenant.project_token, "batch": [event]})
    assert response.status_code == 200
    files = landing.sizes(folder(database))
    assert files and sum(files.values()) > len(orjson.dumps(event))
    assert load_landed(database.queue) == 1
