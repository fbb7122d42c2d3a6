"""A low or full disk, in process: uploads refused below the watermark, and a full disk met
mid-write answered 503 (API), a page in words (UI), retried later (spool, worker, alerts).

The database's disk fills up on demand: a statement hook raises the driver's own disk-full
error (SQLite's SQLITE_FULL, PostgreSQL's DiskFull), which SQLAlchemy wraps as it would the
real one. ``tests/live/test_full_disk.py`` fills a real filesystem.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection

from tests.api.test_symbol_sets import CHUNK, container, presigned_upload, sha512, start, url
from tests.capture import exception_event, post_batch
from tests.factories import Tenant
from tests.ui.conftest import sign_in, user_email
from tests.ui.test_project_settings import post as ui_post
from tests.ui.test_project_settings import settings_url
from trapline import alerts, cli, worker
from trapline.alerts.dispatch import Dispatcher
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.diskspace import DiskSpace
from trapline.events import queue
from trapline.events.models import ExceptionEvent, QueuedRequest
from trapline.ingest.pressure import Backlog, Pressure
from trapline.objects.local import AtomicWriter, LocalStore
from trapline.releases.models import Release
from trapline.settings import Settings
from trapline.worker import Worker, WorkerOptions

_WRITES = ("INSERT", "UPDATE", "DELETE")
FULL = r"database or disk is full|No space left on device"  # SQLite's words, PostgreSQL's


def pressure(app: FastAPI) -> Pressure:
    door: Pressure = app.state.pressure
    return door


@pytest.fixture
def low_disk(app: FastAPI, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data folder's disk is below its watermark (no filesystem has 4 EiB free)."""
    monkeypatch.setattr(pressure(app), "disk", DiskSpace([tmp_path], 4 << 60))


def full_disk_error(database: Database) -> Exception:
    """What the driver raises when the disk is full."""
    if database.is_sqlite:
        return sqlite3.OperationalError("database or disk is full")
    return psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device')


@contextmanager
def disk_fills(database: Database, when: Callable[[str], bool]) -> Iterator[list[str]]:
    """Statements ``when`` picks fail as on a full disk; yields the statements that failed."""
    failed: list[str] = []

    def hook(conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> Any:
        if when(statement):
            failed.append(statement)
            raise full_disk_error(database)
        return statement, params

    event.listen(database.engine, "before_cursor_execute", hook, retval=True)
    try:
        yield failed
    finally:
        event.remove(database.engine, "before_cursor_execute", hook)


def writes_to(*tables: str) -> Callable[[str], bool]:
    def when(statement: str) -> bool:
        words = statement.split(None, 3)
        if not words or words[0].upper() not in _WRITES:
            return False
        return any(f" {table}" in statement.split("(")[0].lower() for table in tables)

    return when


def every_write(statement: str) -> bool:
    return statement.lstrip().upper().startswith(_WRITES)


def unavailable(response: Any, code: str) -> str:
    """A 503 in PostHog's error body, with Retry-After; returns its detail."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "60"
    body = response.json()
    assert body == {"type": "server_error", "code": code, "detail": body["detail"], "attr": None}
    detail: str = body["detail"]
    return detail


def chunk(data: bytes) -> dict[str, Any]:
    return {"chunk_id": CHUNK, "content_hash": sha512(data), "content_length": len(data)}


# --- uploads below the watermark ---------------------------------------------------------------


def test_symbol_set_uploads_are_refused_while_the_disk_is_low(
    client: TestClient, tenant: Tenant, low_disk: None, app: FastAPI
):
    data = container()
    detail = unavailable(start(client, tenant, chunk(data)), "disk_low")
    assert "low on disk space" in detail and "TRAPLINE_DISK_MIN_FREE" in detail
    unavailable(
        client.post(url(tenant, "start_upload"), params={"chunk_id": CHUNK}, headers=tenant.headers()), "disk_low"
    )
    unavailable(
        client.post(url(tenant, "bulk_finish_upload"), json={"content_hashes": {}}, headers=tenant.headers()),
        "disk_low",
    )
    unavailable(
        client.put(url(tenant, "0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11", "finish_upload"), json={"content_hash": "x"},
                   headers=tenant.headers()),
        "disk_low",
    )  # fmt: skip
    # Reading goes on; and a caller without access learns nothing of the disk.
    assert client.get(url(tenant), headers=tenant.headers()).status_code == 200
    assert start(client, tenant, chunk(data)).status_code == 503
    no_key = client.post(url(tenant, "bulk_start_upload"), json={"symbol_sets": [chunk(data)]})
    assert no_key.status_code == 401


def test_an_upload_started_before_the_disk_ran_low_is_refused_before_a_byte_is_written(
    client: TestClient, tenant: Tenant, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = container()
    started = start(client, tenant, chunk(data))
    assert started.status_code == 201
    presigned = started.json()["id_map"][CHUNK]["presigned_url"]
    monkeypatch.setattr(pressure(app), "disk", DiskSpace([tmp_path], 4 << 60))
    response = presigned_upload(client, presigned, data)
    unavailable(response, "disk_low")
    assert response.headers["connection"] == "close"
    store = app.state.objects
    assert isinstance(store, LocalStore)
    assert store.size(presigned["fields"]["key"]) is None
    # Room again: the same upload goes through.
    monkeypatch.undo()
    assert presigned_upload(client, presigned, data).status_code == 204


def test_a_backed_up_queue_does_not_stop_uploads(client: TestClient, tenant: Tenant, app: FastAPI):
    door = pressure(app)
    door.queue_max_events = 1
    door.backlog = Backlog(events=1000)
    assert door.installation() is not None  # capture would refuse
    assert start(client, tenant, chunk(container())).status_code == 201


class _FillingFile:
    """A temporary file on a disk that fills up: part of the first write lands, then ENOSPC."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return int(self.real.fileno())

    def close(self) -> None:
        # As a buffered file does: closes, then reports that flushing what it held failed.
        self.real.close()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_that_fills_during_an_upload_answers_503_and_leaves_no_partial_file(
    client: TestClient, tenant: Tenant, app: FastAPI, monkeypatch: pytest.MonkeyPatch
):
    data = container()
    presigned = start(client, tenant, chunk(data)).json()["id_map"][CHUNK]["presigned_url"]
    opened = AtomicWriter.__init__

    def on_a_filling_disk(writer: AtomicWriter, target: Path) -> None:
        opened(writer, target)
        writer._file = _FillingFile(writer._file)  # type: ignore[assignment]

    monkeypatch.setattr(AtomicWriter, "__init__", on_a_filling_disk)
    detail = unavailable(presigned_upload(client, presigned, data), "disk_full")
    assert "disk is full" in detail
    store = app.state.objects
    assert isinstance(store, LocalStore)
    key = presigned["fields"]["key"]
    assert store.size(key) is None
    assert list(store.path(key).parent.glob(".*")) == []  # the temporary file is gone too
    monkeypatch.undo()
    assert presigned_upload(client, presigned, data).status_code == 204


# --- a full disk met by a write of the REST API or the UI ---------------------------------------


def releases(tenant: Tenant) -> str:
    return f"/api/projects/{tenant.project_id}/error_tracking/releases"


def release_count(database: Database) -> int:
    with database.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


def test_an_api_write_on_a_full_disk_is_503_and_saves_nothing(
    client: TestClient, tenant: Tenant, database: Database, caplog: pytest.LogCaptureFixture
):
    body = {"version": "1.4.2", "project": "checkout"}
    with disk_fills(database, writes_to("error_tracking_release", "release")) as failed:
        response = client.post(releases(tenant), json=body, headers=tenant.headers())
    assert failed, "the hook never fired: the release table has another name"
    assert "nothing was saved" in unavailable(response, "disk_full")
    assert release_count(database) == 0
    [record] = [r for r in caplog.records if r.getMessage() == "request failed: the disk is full"]
    assert record.exc_info is None  # no traceback for a full disk
    # Room again: the same request succeeds, once.
    assert client.post(releases(tenant), json=body, headers=tenant.headers()).status_code == 201
    assert release_count(database) == 1


def test_reading_the_api_goes_on_while_the_disk_is_full(client: TestClient, tenant: Tenant, database: Database):
    # A key not used for an hour gets its last_used_at stamped, a write.
    with disk_fills(database, every_write) as failed:
        response = client.get(releases(tenant), headers=tenant.headers())
    assert failed
    assert response.status_code == 200, response.text


def test_a_ui_write_on_a_full_disk_is_a_page_in_words(client: TestClient, tenant: Tenant, database: Database):
    sign_in(client, user_email(database, tenant.user_id))
    with disk_fills(database, every_write):
        answer = ui_post(client, settings_url(tenant, "autocapture", "exceptions"), {"enabled": "false"})
    assert answer.status_code == 503
    assert "text/html" in answer.headers["content-type"]
    assert "disk is full" in answer.text and "Nothing was saved" in answer.text


# --- capture: the spool's commit on a full disk ------------------------------------------------


def test_a_failed_flush_is_503_and_the_spool_goes_on(
    client: TestClient, tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
):
    real = queue.enqueue
    calls = 0

    def enqueue(db: Database, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise full_disk_error(db)
        real(db, *args, **kwargs)

    monkeypatch.setattr("trapline.ingest.spool.enqueue", enqueue)
    refused = post_batch(client, tenant.project_token, exception_event())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "60"
    assert refused.json()["code"] == "disk_full"
    assert "nothing was saved" in refused.json()["detail"]
    assert post_batch(client, tenant.project_token, exception_event()).status_code == 200
    with database.queue.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(QueuedRequest)) == 1


# --- the worker ------------------------------------------------------------------------------------


def enqueue(database: Database, project_id: int, count: int) -> list[str]:
    events = [exception_event() for _ in range(count)]
    queue.enqueue(
        database,
        [
            queue.NewRequest(project_id=project_id, received_at=utcnow(), sent_at=None, payload=orjson.dumps([e]))
            for e in events
        ],
    )
    return [e["uuid"] for e in events]


def queue_rows(database: Database) -> list[QueuedRequest]:
    with database.queue.session(write=False) as session:
        return list(session.scalars(select(QueuedRequest).order_by(QueuedRequest.id)))


def stored(database: Database) -> set[str]:
    with database.session(write=False) as session:
        return {str(u) for u in session.scalars(select(ExceptionEvent.uuid))}


def assert_waiting_untouched(database: Database, count: int) -> None:
    rows = queue_rows(database)
    assert len(rows) == count
    for row in rows:
        assert (row.attempts, row.failed_at, row.claimed_by) == (0, None, None)


def inserts(statement: str) -> bool:
    # Claiming and giving back are UPDATEs; storing a batch begins with INSERTs.
    return statement.lstrip().upper().startswith("INSERT")


def test_a_batch_failing_on_a_full_disk_is_given_back_and_never_parked(database: Database, tenant: Tenant):
    uuids = enqueue(database, tenant.project_id, 3)
    busy = Worker(database, WorkerOptions(max_attempts=2))
    with disk_fills(database, inserts):
        for _ in range(5):  # more failures than max_attempts
            with pytest.raises(Exception, match=FULL):
                busy.run_once()
            assert_waiting_untouched(database, 3)
    assert busy.drain().stored == 3
    assert stored(database) == set(uuids)
    assert queue_rows(database) == []


def test_rows_that_could_not_be_given_back_are_before_anything_else(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    enqueue(database, tenant.project_id, 2)
    busy = Worker(database)
    real = queue.release

    def release_on_a_full_disk(db: Database, worker_id: str, ids: Sequence[int]) -> int:
        raise full_disk_error(db)

    with disk_fills(database, inserts):
        monkeypatch.setattr(queue, "release", release_on_a_full_disk)
        with pytest.raises(Exception, match=FULL):
            busy.run_once()
        # Still leased to the worker, one attempt spent: nothing could be written.
        assert {(r.attempts, r.claimed_by) for r in queue_rows(database)} == {(1, busy.id)}
        with pytest.raises(Exception, match=FULL):
            busy.run_once()  # the disk is still full: it tries to give them back, and claims nothing
        monkeypatch.setattr(queue, "release", real)
        with pytest.raises(Exception, match=FULL):
            busy.run_once()  # given back, claimed again, failed again, given back again
    assert_waiting_untouched(database, 2)
    assert busy.drain().stored == 2


def test_a_request_failing_on_a_full_disk_one_by_one_gives_back_the_rest(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    enqueue(database, tenant.project_id, 3)

    def failing(db: Database, worker_id: str, claimed: Sequence[queue.Claimed], *args: Any, **kw: Any) -> Any:
        if len(claimed) > 1:
            raise RuntimeError("bug in processing")
        raise full_disk_error(db)

    monkeypatch.setattr("trapline.worker.process_batch", failing)
    with pytest.raises(Exception, match=FULL):
        Worker(database, WorkerOptions(max_attempts=1)).run_once()
    assert_waiting_untouched(database, 3)


def test_run_forever_waits_for_room_logs_once_and_resumes(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    uuids = enqueue(database, tenant.project_id, 2)
    monkeypatch.setattr(worker, "DISK_FULL_WAIT_SECONDS", 0.01)
    caplog.set_level(logging.INFO, logger="trapline.worker")
    busy = Worker(database, WorkerOptions(idle_wait_seconds=0.01))
    stop = threading.Event()
    thread = threading.Thread(target=busy.run_forever, args=(stop,))
    with disk_fills(database, inserts) as failed:
        thread.start()
        deadline = time.monotonic() + 10
        while len(failed) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(failed) >= 5
    deadline = time.monotonic() + 10
    while stored(database) != set(uuids) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(10)
    assert stored(database) == set(uuids)
    messages = [r.getMessage() for r in caplog.records if r.name == "trapline.worker"]
    assert messages.count("the disk is full: processing waits for room; queued requests stay queued") == 1
    assert messages.count("the disk has room again; processing resumes") == 1
    assert not any("parked" in m or "processing failed" in m for m in messages)


# --- the alert sender --------------------------------------------------------------------------------


def test_the_alert_sender_waits_for_room(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(alerts.dispatch, "DISK_FULL_WAIT_SECONDS", 0.01)
    sender = Dispatcher(
        database, alerts.make_senders(settings), sender_id="test-sender", base_url="http://testserver",
        poll_seconds=0.01,
    )  # fmt: skip
    stop = threading.Event()
    calls = 0
    real = alerts.outbox.claim

    def claim(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls >= 10:
            stop.set()
        if calls <= 5:
            raise full_disk_error(database)
        return real(*args)

    monkeypatch.setattr(alerts.outbox, "claim", claim)
    thread = threading.Thread(target=sender.run, args=(stop,))
    thread.start()
    thread.join(10)
    sender.close()
    assert not thread.is_alive()
    assert calls >= 10  # went on asking after the disk was full, and after it had room
    errors = [r for r in caplog.records if r.name == "trapline.alerts" and r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["alert notifications wait: the disk is full"]


# --- the command line ------------------------------------------------------------------------------


def test_a_command_on_a_full_disk_says_so_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    # What SQLite answers when a connection is opened on a full disk (its -shm cannot grow).
    opened = sqlite3.OperationalError("disk I/O error")
    opened.sqlite_errorname = "SQLITE_IOERR_SHMSIZE"  # type: ignore[attr-defined]

    def upgrade(engine: Any) -> None:
        raise opened

    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(data_dir))
    monkeypatch.setattr(cli.migrate, "upgrade", upgrade)
    assert cli.main(["migrate"]) == 2
    assert capsys.readouterr().err == "trapline: the disk is full (disk I/O error); free some space and try again\n"
