"""Many boxes: two ``trapline serve`` (no workers) behind nginx, two ``trapline worker``, one
PostgreSQL and S3 (moto's server), as docs/SCALING.md deploys them; nothing shared on disk.

A user signed in through nginx is signed in on each server, asked directly on its own port (so
which one answered is known), and a form one server rendered is accepted by the other (one
secret key). The real posthog-python client then sends minified JavaScript errors through
nginx while one server and one worker are SIGKILLed: every event that got a 200 is stored once,
in its issue, with its frames resolved by the source map that `trapline sourcemap process`
uploaded through the server that was killed. A map uploaded again through the survivor resolves
the next events, though the surviving worker had parsed the first one.

Skipped without PostgreSQL (TRAPLINE_TEST_DATABASE_URL) or nginx (/usr/sbin/nginx).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from posthog import Posthog

from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.live.support import (
    Api,
    Project,
    WorkerProcess,
    bootstrap,
    poll,
    sourcemap_process,
    start_worker,
    stored_state,
    workers,
)
from tests.server import Server, free_port, running_server
from trapline.sourcemap.container import content_hash, source_and_map

pytestmark = pytest.mark.slow

NGINX = Path("/usr/sbin/nginx")
FIXTURES = Path(__file__).parents[1] / "symbols" / "fixtures"
BUCKET = "trapline-boxes"
REGION = "eu-west-1"
S3_KEY_ID, S3_SECRET = "AKIATRAPLINEBOXES", "trapline-boxes-secret-access-key"
URL = "https://shop.example/assets/shop.min.js"
T = TypeVar("T")
# Where shop.min.js throws (s) and calls (a), once `sourcemap process` put its snippet on line 1.
THROW, CALL = (2, 528), (2, 585)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("TRAPLINE_TEST_DATABASE_URL is not set")
    url = create_postgres_database(POSTGRES_URL)
    try:
        yield url
    finally:
        drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.session.Session().client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url
    server.stop()


def nginx_config(prefix: Path, port: int, upstreams: list[str]) -> str:
    """docs/SCALING.md's configuration, cut down to a test: round robin, capture retried on the
    next server when one is down (safe: events are unique per uuid), the answering upstream
    told in a header."""
    servers = "\n".join(f"    server {address} max_fails=1 fail_timeout=2s;" for address in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  client_max_body_size 20m;
  upstream trapline {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    add_header X-Upstream $upstream_addr always;
    location ~ ^/(batch|e|i/v0/e|capture|track)/?$ {{
      proxy_next_upstream error timeout http_502 non_idempotent;
      proxy_pass http://trapline;
    }}
    location / {{
      proxy_pass http://trapline;
    }}
  }}
}}
"""


@contextmanager
def running_nginx(prefix: Path, upstreams: list[str]) -> Iterator[str]:
    prefix.mkdir(parents=True)
    port = free_port()
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, port, upstreams))
    with (prefix / "stderr.log").open("w") as log:
        process = subprocess.Popen([str(NGINX), "-p", str(prefix), "-c", str(config)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: _answers(url), bool, f"nginx on {url}", timeout=10)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def js_exception(chunk_id: str) -> list[dict[str, Any]]:
    def frame(function: str, position: tuple[int, int]) -> dict[str, Any]:
        line, column = position
        return {
            "platform": "web:javascript",
            "filename": URL,
            "function": function,
            "lineno": line,
            "colno": column,
            "in_app": True,
            "chunk_id": chunk_id,
        }

    return [
        {
            "type": "Error",
            "value": "too expensive",
            "mechanism": {"type": "onerror", "handled": False, "synthetic": False},
            "stacktrace": {"type": "raw", "frames": [frame("a", CALL), frame("s", THROW)]},
        }
    ]


class Senders:
    """Threads each sending one event per request with posthog-python (sync mode), until stopped.

    capture returns the event's uuid only when the server answered 200; None otherwise.
    """

    def __init__(self, url: str, token: str, chunk_id: str, threads: int = 4) -> None:
        self.stop = threading.Event()
        self.accepted: list[str] = []
        self.failed = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(url, token, chunk_id), daemon=True) for _ in range(threads)
        ]

    def __enter__(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive()

    def _run(self, url: str, token: str, chunk_id: str) -> None:
        client = Posthog(token, host=url, sync_mode=True, max_retries=2, timeout=10)
        while not self.stop.is_set():
            sent = client.capture(
                "$exception", distinct_id="shopper", properties={"$exception_list": js_exception(chunk_id)}
            )
            with self._lock:
                if sent is None:
                    self.failed += 1
                else:
                    self.accepted.append(sent)


def replace_map(server_url: str, project: Project, chunk_id: str, source: bytes, source_map: bytes) -> None:
    """Upload a chunk's map again over the one it has: bulk_start_upload with force, the
    presigned POST (to S3), bulk_finish_upload."""
    api = httpx.Client(
        base_url=f"{server_url}/api/projects/{project.id}/error_tracking/symbol_sets",
        timeout=10,
        headers={"Authorization": f"Bearer {project.api_key}"},
    )
    data = source_and_map(source, source_map)
    digest = content_hash(data)
    entry = {"chunk_id": chunk_id, "release_id": None, "content_hash": digest, "content_length": len(data)}
    started = api.post("/bulk_start_upload", json={"symbol_sets": [entry], "force": True, "skip_on_conflict": False})
    assert started.status_code == 201 or started.status_code == 200, started.text
    target = started.json()["id_map"][chunk_id]
    form = target["presigned_url"]
    posted = httpx.post(form["url"], data=form["fields"], files={"file": ("file", data)}, timeout=10)
    assert posted.is_success, posted.text
    finished = api.post("/bulk_finish_upload", json={"content_hashes": {target["symbol_set_id"]: digest}})
    assert finished.is_success, finished.text


def build(dist: Path) -> None:
    dist.mkdir()
    shutil.copy(FIXTURES / "shop.min.js", dist / "shop.min.js")
    shutil.copy(FIXTURES / "shop.min.js.map", dist / "shop.min.js.map")


def resolved_sources(state: Any, uuids: set[str]) -> dict[str, tuple[str, ...]]:
    """Per stored event (of ``uuids``): the source of each frame, or '?' for an unresolved one."""
    found: dict[str, tuple[str, ...]] = {}
    for event_uuid, properties in state.rows("SELECT uuid, properties FROM exception_event"):
        if str(event_uuid) in uuids:
            frames = properties["$exception_list"][0]["stacktrace"]["frames"]
            found[str(event_uuid)] = tuple(f["source"] if f.get("resolved") else "?" for f in frames)
    return found


def enter_together(stack: ExitStack, *managers: AbstractContextManager[T]) -> list[T]:
    """Enter context managers at the same time (servers start in parallel), each exited by ``stack``."""
    with ThreadPoolExecutor(len(managers)) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
        for manager, future in zip(managers, futures, strict=True):
            if future.exception() is None:
                stack.push(manager)
        return [future.result() for future in futures]


def running(worker: WorkerProcess) -> bool:
    return '"worker started"' in worker.log_path.read_text()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def signed_in(server: Server, cookie: str) -> bool:
    answer = httpx.get(f"{server.url}/account", cookies={"trapline_session": cookie}, timeout=10)
    return answer.status_code == 200 and "Sign in" not in answer.text


@pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (apt-get install nginx)")
def test_servers_and_workers_on_many_boxes_share_one_state(postgres_url: str, s3_endpoint: str, tmp_path: Path):
    shared = {
        "TRAPLINE_DATABASE_URL": postgres_url,
        "TRAPLINE_SECRET_KEY": secrets.token_urlsafe(48),
        "TRAPLINE_OBJECT_STORE_URL": f"s3://{BUCKET}/boxes",
        "TRAPLINE_S3_ENDPOINT_URL": s3_endpoint,
        "TRAPLINE_S3_REGION": REGION,
        "TRAPLINE_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "TRAPLINE_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "TRAPLINE_WORKERS": "0",
        "TRAPLINE_WORKER_BATCH_SIZE": "20",
        # What a killed worker had claimed waits for its lease to end (a worker on another box
        # cannot tell it died): short here, so that the survivor takes it over within the test.
        # A lease that runs out on a live worker costs work, never an event twice.
        "TRAPLINE_WORKER_LEASE_SECONDS": "3",
    }
    boxes = [tmp_path / name / "data" for name in ("a", "b", "c", "d")]  # nothing shared on disk
    for box in boxes:
        box.parent.mkdir()
    project = bootstrap(boxes[0], "boxes", shared)  # migrates the fresh database
    # The servers start side by side (on a busy machine one takes seconds just to import); the
    # workers start while the servers are asked, and the map uploads while the sign-in is checked.
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        one, two = enter_together(stack, running_server(boxes[0], shared), running_server(boxes[1], shared))
        started = stack.enter_context(workers([]))
        for n in (2, 3):
            started.append(start_worker(boxes[n], tmp_path / f"worker-{n}.log", shared, "--threads", "1"))
        proxy = stack.enter_context(running_nginx(tmp_path / "nginx", [one.url[7:], two.url[7:]]))
        state = stack.enter_context(stored_state(postgres_url))
        # The map goes up through server one, into S3.
        dist = tmp_path / "dist"
        build(dist)
        uploaded = pool.submit(sourcemap_process, one.url, project, dist, boxes[0])

        # Round robin: nginx hands requests to both servers.
        answering = {httpx.get(f"{proxy}/_health", timeout=5).headers["x-upstream"] for _ in range(4)}
        assert answering == {one.url[7:], two.url[7:]}

        # A sign-in through nginx is a session every server knows, asked directly on its port.
        login = httpx.get(f"{proxy}/login", timeout=10)
        answer = httpx.post(
            f"{proxy}/login",
            data={
                "email": "live@example.com",
                "password": "password123",
                "csrf_token": login.cookies["trapline_login_csrf"],
            },
            cookies=login.cookies,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        cookie = answer.cookies["trapline_session"]
        assert signed_in(one, cookie) and signed_in(two, cookie)
        # A form one server rendered is accepted by the other: they share the secret key.
        token = csrf_of(httpx.get(f"{one.url}/account", cookies={"trapline_session": cookie}, timeout=10).text)
        out = httpx.post(
            f"{two.url}/logout", data={"csrf_token": token}, cookies={"trapline_session": cookie}, timeout=10
        )
        assert out.status_code == 303 and out.headers["location"].startswith("/login")
        assert not signed_in(one, cookie)

        uploaded.result()
        poll(lambda: all(running(worker) for worker in started), bool, "both workers running")
        chunk_id = re.findall(r"//# chunkId=([0-9a-f-]+)", (dist / "shop.min.js").read_text())[-1]

        with Senders(proxy, project.token, chunk_id) as load:
            poll(lambda: len(load.accepted), lambda n: n >= 40, "events accepted through nginx", timeout=15)
            one.stop(signal.SIGKILL)
            started[0].process.send_signal(signal.SIGKILL)
            killed_at = len(load.accepted)
            poll(
                lambda: len(load.accepted), lambda n: n >= killed_at + 60, "events accepted after the kills", timeout=15
            )
        accepted = set(load.accepted)

        poll(lambda: state.queue_length(), lambda n: n == 0, "the queue drained by the surviving worker")
        stored = resolved_sources(state, accepted)
        assert set(stored) == accepted, f"{len(accepted - set(stored))} accepted events were not stored"
        assert set(stored.values()) == {("shop.js", "shop.js")}, "frames not resolved with the uploaded map"
        stored_uuids = [str(u) for u in state.stored_uuids()]
        assert len(stored_uuids) == len(set(stored_uuids)), "an event was stored twice"
        # One issue holds them all (and whatever unanswered requests were stored too).
        [issue] = Api(two.url, project).issues()
        assert int(issue["aggregations"]["occurrences"]) == len(stored_uuids) >= len(accepted)

        # The map again, changed, through the surviving server (replacing it, as PostHog's API
        # allows with force): the next events resolve with it, though the surviving worker had
        # parsed the first one.
        changed = json.loads((dist / "shop.min.js.map").read_text())
        changed["sources"] = ["shop-v2.js"]
        replace_map(two.url, project, chunk_id, (dist / "shop.min.js").read_bytes(), json.dumps(changed).encode())
        client = Posthog(project.token, host=proxy, sync_mode=True)
        after = {
            client.capture("$exception", distinct_id="shopper", properties={"$exception_list": js_exception(chunk_id)})
            for _ in range(5)
        }
        assert None not in after
        poll(lambda: resolved_sources(state, {str(u) for u in after}), lambda found: len(found) == 5, "the next events")
        assert set(resolved_sources(state, {str(u) for u in after}).values()) == {("shop-v2.js", "shop-v2.js")}
