"""Helpers for the live tests: projects, the REST API, load, worker processes, the stored state.

Everything here talks to real ``trapline`` processes from the outside: over HTTP, through the
command line, or by reading the database read-only. Nothing imports trapline's own code.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from tests.server import TRAPLINE, run_trapline, trapline_env
from trapline.events.queue_file import queue_path

T = TypeVar("T")

# How long processing may take before a test gives up; events normally land in well under a second.
DEADLINE_SECONDS = 30.0


# --- projects and the REST API ------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    id: int
    token: str
    api_key: str
    sentry_dsn: str = ""


def bootstrap(data_dir: Path, name: str, extra_env: Mapping[str, str] | None = None) -> Project:
    """A new project (same user and organization every time) and a fresh personal API key."""
    result = run_trapline(
        "bootstrap", "--email", "live@example.com", "--password", "password123",
        "--organization", "Live", "--project", name, "--json",
        env=trapline_env(data_dir, extra_env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    creds = json.loads(result.stdout)
    return Project(
        id=int(creds["project_id"]),
        token=creds["project_api_token"],
        api_key=creds["personal_api_key"],
        sentry_dsn=creds["sentry_dsn"],
    )


def sourcemap_process(server_url: str, project: Project, dist: Path, data_dir: Path) -> None:
    """`trapline sourcemap process` (inject, then upload) of ``dist`` to the server at ``server_url``."""
    env = {
        **trapline_env(data_dir),
        "POSTHOG_CLI_HOST": server_url,
        "POSTHOG_CLI_API_KEY": project.api_key,
        "POSTHOG_CLI_PROJECT_ID": str(project.id),
    }
    result = subprocess.run(
        [TRAPLINE, "sourcemap", "process", "--directory", str(dist)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def poll(
    fetch: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = DEADLINE_SECONDS, every: float = 0.05
) -> T:
    """Fetch every ``every`` seconds until ``done`` holds; fail with the last value seen after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}; last seen: {value!r}")
        time.sleep(every)


class Api:
    """The project's error tracking REST API."""

    def __init__(self, server_url: str, project: Project) -> None:
        self.base = f"{server_url}/api/projects/{project.id}/error_tracking"
        self.headers = {"Authorization": f"Bearer {project.api_key}"}

    def get_all(self, path: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every result of a paginated list, following ``next``."""
        results: list[dict[str, Any]] = []
        url: str | None = f"{self.base}/{path}"
        query: Mapping[str, str] | None = {"limit": "1000", **(params or {})}
        while url is not None:
            response = httpx.get(url, params=query, headers=self.headers, timeout=10)
            assert response.status_code == 200, response.text
            page = response.json()
            results.extend(page["results"])
            url, query = page["next"], None
        return results

    def issues(self) -> list[dict[str, Any]]:
        return self.get_all("issues/")

    def update_settings(self, **values: int | None) -> dict[str, Any]:
        """PATCH the project's error tracking settings (rate limits, retention)."""
        response = httpx.patch(f"{self.base}/settings/update_settings/", json=values, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        settings: dict[str, Any] = response.json()
        return settings

    def fingerprints(self, issue_id: str) -> list[str]:
        return [fp["fingerprint"] for fp in self.get_all("fingerprints/", {"issue_id": issue_id})]

    def events(self, issue_id: str) -> list[dict[str, Any]]:
        return self.get_all(f"issues/{issue_id}/events/")

    def wait_for_occurrences(self, total: int) -> list[dict[str, Any]]:
        """The issues, once their occurrences add up to ``total`` (fails on more, or on a timeout)."""
        issues = poll(self.issues, lambda found: occurrences(found) >= total, f"{total} occurrences")
        assert occurrences(issues) == total, issues
        return issues


def occurrences(issues: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(issue["aggregations"]["occurrences"]) for issue in issues)


# --- the fingerprint cymbal-v1 prescribes for python stacks ------------------------------------


@dataclass(frozen=True)
class PyFrame:
    """What a resolved python frame feeds the hasher: source (the SDK's filename), module, function."""

    source: str
    module: str
    function: str


def python_fingerprint(exceptions: Sequence[tuple[str, Sequence[PyFrame]]]) -> str:
    """SHA-512 over, per exception in list order, its type then, per frame, source + module + function.

    Written from the algorithm's description for stacks whose frames are all in-app and resolved
    (python frames always resolve; posthog-python leaves ``in_app`` out or true for code outside
    site-packages), so that the message never counts.
    """
    hasher = hashlib.sha512()
    for exception_type, frames in exceptions:
        hasher.update(exception_type.encode("utf-8"))
        for frame in frames:
            for piece in (frame.source, frame.module, frame.function):
                hasher.update(piece.encode("utf-8"))
    return hasher.hexdigest()


# --- load -------------------------------------------------------------------------------------


def exception_event(kind: int) -> dict[str, Any]:
    """A posthog-python shaped ``$exception`` event; events of one ``kind`` share a fingerprint."""
    return {
        "event": "$exception",
        "distinct_id": f"user-{kind % 7}",
        "uuid": str(uuid.uuid4()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "properties": {
            "$exception_list": [
                {
                    "type": f"LoadError{kind}",
                    "value": f"load failure {kind}",
                    "mechanism": {"type": "generic", "handled": True, "synthetic": False},
                    "stacktrace": {
                        "type": "raw",
                        "frames": [
                            {
                                "platform": "python",
                                "filename": "app/load.py",
                                "abs_path": "/srv/app/load.py",
                                "function": f"handle_{kind}",
                                "module": "app.load",
                                "lineno": 10 + kind,
                                "in_app": True,
                            }
                        ],
                    },
                }
            ],
        },
    }


@dataclass
class Load:
    """Threads posting batches of ``$exception`` events to ``/batch/``, as fast as they can.

    A thread stops after ``requests_per_thread`` requests, when ``stop`` is set, or at the first
    request that got no answer (the server is gone). Each batch is kept with its outcome.
    """

    url: str
    token: str
    threads: int = 4
    events_per_request: int = 5
    kinds: int = 5
    requests_per_thread: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    accepted: list[list[dict[str, Any]]] = field(default_factory=list)  # answered 200
    unanswered: list[list[dict[str, Any]]] = field(default_factory=list)  # no answer at all
    refused: list[tuple[int, str]] = field(default_factory=list)  # answered, not 200
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float = 60) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a load thread did not finish"

    def run(self) -> None:
        self.start()
        self.join()

    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def sent_uuids(self) -> set[uuid.UUID]:
        return _uuids(self.accepted + self.unanswered)

    def accepted_uuids(self) -> set[uuid.UUID]:
        return _uuids(self.accepted)

    def _run(self, n: int) -> None:
        sent = 0
        with httpx.Client(timeout=15) as client:
            while not self.stop.is_set() and (self.requests_per_thread is None or sent < self.requests_per_thread):
                batch = [exception_event((n + sent + i) % self.kinds) for i in range(self.events_per_request)]
                sent += 1
                try:
                    response = client.post(f"{self.url}/batch/", json={"api_key": self.token, "batch": batch})
                except httpx.TransportError:
                    with self._lock:
                        self.unanswered.append(batch)
                    return
                with self._lock:
                    if response.status_code == 200:
                        self.accepted.append(batch)
                    else:
                        self.refused.append((response.status_code, response.text))


def _uuids(batches: Sequence[Sequence[Mapping[str, Any]]]) -> set[uuid.UUID]:
    return {uuid.UUID(event["uuid"]) for batch in batches for event in batch}


def post_batch(url: str, token: str, batch: Sequence[Mapping[str, Any]]) -> httpx.Response:
    return httpx.post(f"{url}/batch/", json={"api_key": token, "batch": list(batch)}, timeout=15)


# --- worker processes ---------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    log_path: Path

    def log_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def start_worker(data_dir: Path, log_path: Path, extra_env: Mapping[str, str], *args: str) -> WorkerProcess:
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [TRAPLINE, "worker", *args],
            env=trapline_env(data_dir, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return WorkerProcess(process, log_path)


@contextmanager
def workers(started: list[WorkerProcess]) -> Iterator[list[WorkerProcess]]:
    """Kill whatever worker is still running when the block ends, however it ends."""
    try:
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=10)


# --- the stored state, read directly ------------------------------------------------------------


def _read_only(database_url: str) -> str:
    if not database_url.startswith("sqlite:///"):
        return database_url
    return f"sqlite:///file:{database_url.removeprefix('sqlite:///')}?mode=ro&uri=true"


def sqlite_url(data_dir: Path) -> str:
    """The database ``trapline`` keeps in its data dir unless TRAPLINE_DATABASE_URL says otherwise."""
    return f"sqlite:///{data_dir / 'trapline.db'}"


class StoredState:
    """Read-only queries on the database the processes write (SQLite opened with mode=ro)."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(_read_only(database_url), poolclass=NullPool)
        # SQLite keeps the ingest queue in a file of its own (trapline.events.queue_file).
        queue_file = queue_path(database_url)
        self.queue_engine = (
            create_engine(_read_only(f"sqlite:///{queue_file}"), poolclass=NullPool)
            if queue_file is not None
            else self.engine
        )

    def close(self) -> None:
        self.engine.dispose()
        self.queue_engine.dispose()

    def queue_scalar(self, sql: str) -> int:
        with self.queue_engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def scalar(self, sql: str) -> int:
        with self._connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]

    def queue_length(self) -> int:
        return self.queue_scalar("SELECT count(*) FROM ingest_queue")

    def stored_count(self) -> int:
        return self.scalar("SELECT count(*) FROM exception_event")

    def stored_uuids(self) -> list[uuid.UUID]:
        with self._connect() as connection:
            values = connection.execute(text("SELECT uuid FROM exception_event")).scalars()
            return [uuid.UUID(str(value)) for value in values]

    def occurrence_totals(self) -> dict[str, tuple[int, int]]:
        """Per fingerprint: (the running total the pipeline keeps, the events stored with it)."""
        sql = """
            SELECT f.fingerprint, f.occurrences,
                   (SELECT count(*) FROM exception_event e
                     WHERE e.project_id = f.project_id AND e.fingerprint = f.fingerprint)
            FROM issue_fingerprint f
        """
        with self._connect() as connection:
            return {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(text(sql))}


@contextmanager
def stored_state(database_url: str) -> Iterator[StoredState]:
    state = StoredState(database_url)
    try:
        yield state
    finally:
        state.close()


def assert_exactly_once(state: StoredState, must: set[uuid.UUID], may: set[uuid.UUID]) -> None:
    """Every event in ``must`` is stored once, nothing outside ``may`` is, and the totals agree."""
    assert state.queue_length() == 0
    stored = state.stored_uuids()
    assert len(stored) == len(set(stored)), "an event was stored twice"
    missing = must - set(stored)
    assert not missing, f"{len(missing)} accepted events were lost, e.g. {sorted(missing)[:3]}"
    phantom = set(stored) - may
    assert not phantom, f"{len(phantom)} stored events were never sent, e.g. {sorted(phantom)[:3]}"
    totals = state.occurrence_totals()
    wrong = {fp[:12]: counts for fp, counts in totals.items() if counts[0] != counts[1]}
    assert not wrong, f"fingerprint occurrence totals differ from the stored events: {wrong}"
    assert sum(total for total, _ in totals.values()) == len(stored)
