"""Capture's commits are synced to disk after SQLite's write lock is given back, and before
the requests are answered: as durable as ``synchronous=FULL``, without making workers wait
for the disk. The spool commits a flush while the one before it syncs."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trapline.accounts.models import Organization
from trapline.db import migrate
from trapline.db.engine import Database, make_engine
from trapline.db.types import utcnow
from trapline.events.queue import NewRequest, SqliteWriter, enqueue
from trapline.ingest.spool import Spool, SpoolClosed
from trapline.projects.models import Project


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Database, Path, int]]:
    path = tmp_path / "trapline.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    database = Database(engine)
    with database.session(write=True) as session:
        organization = Organization(name="o")
        session.add(organization)
        session.flush()
        project = Project(organization_id=organization.id, name="p", api_token="phc_sync")
        session.add(project)
        session.commit()
        project_id = project.id
    yield database, path, project_id
    database.dispose()


def test_a_flush_is_synced_after_its_commit_with_the_write_lock_free(
    sqlite_file: tuple[Database, Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, path, project_id = sqlite_file
    seen: list[tuple[int, int, bool]] = []
    real_fsync = os.fdatasync

    def watched_fsync(descriptor: int) -> None:
        # Another connection sees the rows (committed) and takes the write lock (free).
        other = sqlite3.connect(path, timeout=0)
        try:
            queued = other.execute("SELECT count(*) FROM ingest_queue").fetchone()[0]
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            lock_free = True
        except sqlite3.OperationalError:
            lock_free = False
        finally:
            other.close()
        seen.append((os.fstat(descriptor).st_ino, queued, lock_free))
        real_fsync(descriptor)

    writer = SqliteWriter(database)
    try:
        assert writer.connection.cursor().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        monkeypatch.setattr(os, "fdatasync", watched_fsync)
        enqueue(database, [NewRequest(project_id, utcnow(), None, b'{"batch": []}')], writer=writer)
        writer.sync()  # what the spool does once the commit is made
    finally:
        writer.close()
    assert seen == [(os.stat(f"{path}-wal").st_ino, 1, True)]


def test_the_writers_connection_goes_back_to_the_pool_as_it_came(sqlite_file: tuple[Database, Path, int]) -> None:
    database, _path, project_id = sqlite_file
    writer = SqliteWriter(database)
    enqueue(database, [NewRequest(project_id, utcnow(), None, b"{}")], writer=writer)
    writer.close()
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        # FULL (2) and the engine's busy timeout, as every other pooled connection has them.
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        connection.close()


# --- the spool: commits and syncs overlap, answers wait for both ------------------------------------


class HeldSyncs:
    """``SqliteWriter.sync`` that waits for the test to let each call through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail_next = False
        real = SqliteWriter.sync

        def held(writer: SqliteWriter) -> None:
            self.started.release()
            assert self.release.acquire(timeout=10), "the test never let the sync through"
            if self.fail_next:
                self.fail_next = False
                raise OSError(5, "Input/output error")
            real(writer)

        monkeypatch.setattr(SqliteWriter, "sync", held)

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.acquire, True, 10), "no sync started"


def queued(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM ingest_queue").fetchone()[0])
    finally:
        connection.close()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def request(project_id: int) -> NewRequest:
    return NewRequest(project_id, utcnow(), None, b"[]")


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> HeldSyncs:
    return HeldSyncs(monkeypatch)


def with_spool(database: Database, syncs: HeldSyncs, scenario: Callable[[Spool], Awaitable[None]]) -> None:
    """``scenario`` on a started spool, stopped at the end with every sync still held let through."""

    async def run() -> None:
        spool = Spool(database)
        await spool.start()
        try:
            await scenario(spool)
        finally:
            for _ in range(3):
                syncs.release.release()
            await spool.stop()

    asyncio.run(run())


def test_a_request_is_answered_only_once_the_log_is_synced_past_its_commit(
    sqlite_file: tuple[Database, Path, int], syncs: HeldSyncs
) -> None:
    database, path, project_id = sqlite_file

    async def scenario(spool: Spool) -> None:
        answered = asyncio.ensure_future(spool.append([request(project_id)]))
        await syncs.wait_started()
        assert queued(path) == 1  # committed...
        await asyncio.sleep(0.05)
        assert not answered.done()  # ...but not answered before its sync
        syncs.release.release()
        await asyncio.wait_for(answered, 10)

    with_spool(database, syncs, scenario)


def test_a_flush_commits_while_the_one_before_it_syncs(
    sqlite_file: tuple[Database, Path, int], syncs: HeldSyncs
) -> None:
    database, path, project_id = sqlite_file

    async def scenario(spool: Spool) -> None:
        first = asyncio.ensure_future(spool.append([request(project_id)]))
        await syncs.wait_started()
        second = asyncio.ensure_future(spool.append([request(project_id), request(project_id)]))
        # The first flush's sync is held, and the second commits all the same.
        await until(lambda: queued(path) == 3)
        assert not first.done() and not second.done()
        syncs.release.release()
        await asyncio.wait_for(first, 10)
        await syncs.wait_started()
        assert not second.done()  # it waits for a sync begun after its commit
        syncs.release.release()
        await asyncio.wait_for(second, 10)

    with_spool(database, syncs, scenario)


def test_a_failed_sync_fails_its_requests_and_the_spool_goes_on(
    sqlite_file: tuple[Database, Path, int], syncs: HeldSyncs
) -> None:
    database, _path, project_id = sqlite_file

    async def scenario(spool: Spool) -> None:
        syncs.fail_next = True
        failed = asyncio.ensure_future(spool.append([request(project_id)]))
        syncs.release.release()
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(failed, 10)
        later = asyncio.ensure_future(spool.append([request(project_id)]))
        syncs.release.release()
        await asyncio.wait_for(later, 10)

    with_spool(database, syncs, scenario)


def test_stopping_answers_what_waits_and_refuses_what_comes_after(
    sqlite_file: tuple[Database, Path, int],
) -> None:
    database, path, project_id = sqlite_file

    async def scenario() -> None:
        spool = Spool(database)
        await spool.start()
        waiting = [asyncio.ensure_future(spool.append([request(project_id)])) for _ in range(20)]
        await asyncio.sleep(0)  # they are all in the spool
        await spool.stop()
        assert all(future.done() and future.exception() is None for future in waiting)
        assert queued(path) == 20
        with pytest.raises(SpoolClosed):
            await spool.append([request(project_id)])

    asyncio.run(scenario())


def test_overlapping_lifespans_on_two_event_loops_share_one_spool(sqlite_file: tuple[Database, Path, int]) -> None:
    # A test client opened while another is open starts the app's lifespan again, on a loop of
    # its own; closing it must neither stop the spool under the first nor hang.
    database, path, project_id = sqlite_file
    spool = Spool(database)
    outer_started, inner_closed = threading.Event(), threading.Event()
    outcome: list[object] = []

    async def outer() -> None:
        await spool.start()
        await spool.append([request(project_id)])
        outer_started.set()
        assert await asyncio.to_thread(inner_closed.wait, 10)
        await spool.append([request(project_id)])  # still running
        await spool.stop()
        outcome.append("outer stopped")

    async def inner() -> None:
        await spool.start()
        await spool.append([request(project_id)])
        await spool.stop()
        outcome.append("inner stopped")

    first = threading.Thread(target=lambda: asyncio.run(outer()))
    first.start()
    assert outer_started.wait(10)
    asyncio.run(asyncio.wait_for(inner(), 10))
    inner_closed.set()
    first.join(10)
    assert outcome == ["inner stopped", "outer stopped"]
    assert queued(path) == 3

    async def after() -> None:
        with pytest.raises(SpoolClosed):
            await spool.append([request(project_id)])

    asyncio.run(after())


def test_what_one_round_of_the_loop_appends_is_committed_together(
    sqlite_file: tuple[Database, Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, path, project_id = sqlite_file
    commits: list[int] = []
    real = enqueue

    def counted(db: Database, requests: Any, *args: Any, **kwargs: Any) -> None:
        commits.append(len(requests))
        real(db, requests, *args, **kwargs)

    monkeypatch.setattr("trapline.ingest.spool.enqueue", counted)

    async def scenario() -> None:
        spool = Spool(database)
        await spool.start()
        try:
            loop = asyncio.get_running_loop()
            appended = []
            for _ in range(20):
                appended.append(asyncio.ensure_future(spool.append([request(project_id)])))
                # Between two requests of one round the loop's thread lets go of Python's lock
                # (in the server: a socket's system call); the commit thread must not start on
                # the first request alone.
                loop.call_soon(time.sleep, 0.002)
            await asyncio.gather(*appended)
            await spool.append([request(project_id)])
        finally:
            await spool.stop()

    asyncio.run(scenario())
    assert commits == [20, 1]  # one hand-over, one transaction, per round
    assert queued(path) == 21
