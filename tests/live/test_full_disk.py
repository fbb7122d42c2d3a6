"""A real ``trapline serve`` on a small filesystem made for the test (a tmpfs), filled up.

Below the free-space watermark capture and uploads answer 503 with Retry-After; on a disk
filled to the last byte (no watermark) SQLite meets ENOSPC in the middle of its writes, and
requests fail with 503 while the server, its worker and the database come through: once the
filler is gone capture resumes, every event that got a 200 is stored, and SQLite's
``integrity_check`` says ok.

Mounting needs root (CAP_SYS_ADMIN); elsewhere the tests skip.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from posthog import Posthog

from tests.live.conftest import Backend
from tests.live.support import (
    Project,
    StoredState,
    bootstrap,
    exception_event,
    poll,
    post_batch,
    start_worker,
    stored_state,
    workers,
)
from tests.server import Server, running_server

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
DISK_SIZE = 64 * MIB
WATERMARK = 4 * MIB
# Long enough to fill SQLite's write-ahead log quickly once the disk is full.
MESSAGE = "x" * 2000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, unmounted at the end however the test ends."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("cannot mount a tmpfs here: no mount command")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (it needs root): {result.stderr.strip() or result.returncode}")
    try:
        yield mount
    finally:
        # Lazily: a process killed a moment ago may still hold a file open.
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(mount: Path, *, leave: int = 0) -> Path:
    """A file taking the disk's space until ``leave`` bytes are free (0: until ENOSPC)."""
    filler = mount / "filler"
    with filler.open("ab", buffering=0) as handle:
        for chunk in (MIB, 4096, 1):
            while free_bytes(mount) - chunk >= leave:
                try:
                    handle.write(b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    if leave == 0:
        assert free_bytes(mount) == 0
    return filler


def events(count: int) -> list[dict[str, Any]]:
    batch = [exception_event(n % 3) for n in range(count)]
    for event in batch:
        event["properties"]["$exception_list"][0]["value"] = MESSAGE
    return batch


class Sent:
    """What capture answered, by status; the events of every 200."""

    def __init__(self, server: Server, project: Project) -> None:
        self.server = server
        self.project = project
        self.accepted: set[uuid.UUID] = set()
        self.statuses: list[int] = []

    def post(self, count: int = 5) -> httpx.Response:
        batch = events(count)
        response = post_batch(self.server.url, self.project.token, batch)
        self.statuses.append(response.status_code)
        if response.status_code == 200:
            self.accepted |= {uuid.UUID(event["uuid"]) for event in batch}
        return response


@contextmanager
def posthog_client(server: Server, project: Project) -> Iterator[Posthog]:
    client = Posthog(project.token, host=server.url, sync_mode=True, max_retries=0)
    try:
        yield client
    finally:
        client.shutdown()


def capture_with_sdk(client: Posthog) -> uuid.UUID | None:
    """posthog-python's capture_exception: the event's uuid when the server took it, else None."""
    try:
        raise ValueError(f"checkout failed {uuid.uuid4()}")
    except ValueError as exc:
        try:
            sent = client.capture_exception(exc, distinct_id="buyer-1")
        except Exception:
            return None
    return uuid.UUID(sent) if sent else None


def api(server: Server, project: Project, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/api/projects/{project.id}/error_tracking/{path}",
        headers={"Authorization": f"Bearer {project.api_key}"},
        timeout=15,
        **kwargs,
    )


def start_upload(server: Server, project: Project) -> httpx.Response:
    chunk = {"chunk_id": f"chunk-{uuid.uuid4()}", "content_hash": "0" * 128, "content_length": MIB}
    return api(server, project, "POST", "symbol_sets/bulk_start_upload", json={"symbol_sets": [chunk]})


def upload_file(presigned: dict[str, Any], data: bytes) -> httpx.Response:
    return httpx.post(presigned["url"], data=presigned["fields"], files={"file": ("file", data)}, timeout=30)


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "60"
    body = response.json()
    assert (body["type"], body["code"], body["attr"]) == ("server_error", code, None), body


def wait_until_stored(state: StoredState, accepted: set[uuid.UUID], timeout: float = 60) -> None:
    """Every accepted event stored once, the queue empty, nothing parked."""
    poll(
        lambda: (state.queue_length(), len(set(state.stored_uuids()) & accepted)),
        lambda seen: seen == (0, len(accepted)),
        f"{len(accepted)} accepted events stored",
        timeout=timeout,
    )
    stored = state.stored_uuids()
    assert len(stored) == len(set(stored)), "an event was stored twice"


def assert_intact(database_url: str) -> None:
    if not database_url.startswith("sqlite:///"):
        return
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    connection.close()


def on_disk(backend: Backend, mount: Path) -> Backend:
    """The backend with its data dir on the small disk (SQLite's database with it).

    The disk itself is the data dir: the server's log goes next to it, not on it.
    """
    data_dir = mount
    url = backend.database_url
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{data_dir / 'trapline.db'}"
    return Backend(data_dir, backend.env, url)


def test_below_the_watermark_capture_and_uploads_answer_503_then_resume(backend: Backend, small_disk: Path):
    live = on_disk(backend, small_disk)
    project = bootstrap(live.data_dir, "watermark", live.env)
    env = {**live.env, "TRAPLINE_DISK_MIN_FREE": str(WATERMARK)}
    with (
        running_server(live.data_dir, env) as server,
        stored_state(live.database_url) as state,
        posthog_client(server, project) as sdk,
    ):
        sent = Sent(server, project)
        for _ in range(3):
            assert sent.post().status_code == 200
        taken = capture_with_sdk(sdk)
        assert taken is not None
        sent.accepted.add(taken)
        started = start_upload(server, project)
        assert started.status_code == 201, started.text
        [entry] = started.json()["id_map"].values()

        filler = fill(small_disk, leave=WATERMARK // 2)
        time.sleep(1.2)  # the free space is read at most once a second
        for _ in range(3):
            response = sent.post()
            refused(response, "disk_low")
            assert "TRAPLINE_DISK_MIN_FREE" in response.json()["detail"]
        assert capture_with_sdk(sdk) is None
        ready = httpx.get(f"{server.url}/_readyz", timeout=5).json()
        assert ready["accepting_events"] is False
        assert ready["disk"].startswith("low: ")
        assert ready["refusing"]["reason"] == "disk_low"
        refused(start_upload(server, project), "disk_low")
        refused(upload_file(entry["presigned_url"], b"m" * 1000), "disk_low")
        # What was accepted before is processed all the same.
        wait_until_stored(state, sent.accepted)

        filler.unlink()
        time.sleep(1.2)
        assert sent.post().status_code == 200
        taken = capture_with_sdk(sdk)
        assert taken is not None
        sent.accepted.add(taken)
        assert httpx.get(f"{server.url}/_readyz", timeout=5).json()["accepting_events"] is True
        assert start_upload(server, project).status_code == 201
        wait_until_stored(state, sent.accepted)
        assert 500 not in sent.statuses
        assert server.process.poll() is None
        assert server.stop() == 0
    assert_intact(live.database_url)


def test_a_full_disk_fails_requests_not_the_server(backend: Backend, small_disk: Path, tmp_path: Path):
    live = on_disk(backend, small_disk)
    sqlite = live.database_url.startswith("sqlite")
    project = bootstrap(live.data_dir, "full-disk", live.env)
    # The server only queues; a worker process is started once the disk is full, so that it
    # has a backlog to meet the full disk with.
    env = {**live.env, "TRAPLINE_DISK_MIN_FREE": "0", "TRAPLINE_WORKER_POLL_SECONDS": "0.05"}
    with (
        running_server(live.data_dir, {**env, "TRAPLINE_WORKERS": "0"}) as server,
        stored_state(live.database_url) as state,
        posthog_client(server, project) as sdk,
        workers([]) as started,
    ):
        sent = Sent(server, project)
        for _ in range(5):
            assert sent.post().status_code == 200
        upload = start_upload(server, project)
        assert upload.status_code == 201, upload.text
        [entry] = upload.json()["id_map"].values()

        filler = fill(small_disk)
        # SQLite reuses its write-ahead log's space until a checkpoint cannot grow the
        # database file: keep sending until requests fail (on PostgreSQL they never do).
        for _ in range(400):
            sent.post(20)
            if sent.statuses.count(503) >= 10:
                break
        assert set(sent.statuses) <= {200, 503}, sent.statuses
        if sqlite:
            assert sent.statuses.count(503) >= 10
            failed = sent.post()
            assert failed.status_code == 503
            assert int(failed.headers["retry-after"]) >= 1
            release = api(server, project, "POST", "releases", json={"version": "1.0.0", "project": "shop"})
            refused(release, "disk_full")
            # Reading goes on.
            assert api(server, project, "GET", "issues").status_code == 200
        else:
            assert sent.statuses.count(503) == 0
        # The object store is on the full disk with both backends.
        refused(upload_file(entry["presigned_url"], b"m" * MIB), "disk_full")
        assert [p for p in (live.data_dir / "objects").rglob("*") if p.is_file()] == []

        worker = start_worker(live.data_dir, tmp_path / "worker.log", env, "--threads", "1")
        started.append(worker)
        if sqlite:  # (PostgreSQL's own disk is not the small one: its worker writes on)
            # It meets the full disk (starting can take seconds on a loaded machine), again and again.
            full = "the disk is full: processing waits for room; queued requests stay queued"
            poll(lambda: worker.log_path.read_text(), lambda said: full in said, "the worker to meet the full disk")
        time.sleep(1)
        assert worker.process.poll() is None
        assert server.process.poll() is None
        assert httpx.get(f"{server.url}/_health", timeout=5).status_code == 200

        filler.unlink()
        response = poll(sent.post, lambda r: r.status_code == 200, "capture to resume", timeout=20)
        assert response.status_code == 200
        taken = capture_with_sdk(sdk)
        assert taken is not None
        sent.accepted.add(taken)
        assert upload_file(entry["presigned_url"], b"m" * MIB).status_code == 204
        wait_until_stored(state, sent.accepted)
        assert state.queue_scalar("SELECT count(*) FROM ingest_queue WHERE failed_at IS NOT NULL") == 0
        assert 500 not in sent.statuses
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
        assert server.stop() == 0

    said = [str(line.get("msg", "")) for line in worker.log_entries()]
    assert not any("parked" in m or m == "processing failed" for m in said), said
    if sqlite:
        assert said.count("the disk is full: processing waits for room; queued requests stay queued") == 1, said
        assert said.count("the disk has room again; processing resumes") == 1, said
    assert_intact(live.database_url)
