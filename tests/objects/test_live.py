"""Presigned uploads against the real ``trapline serve``: uvicorn's streaming, not TestClient's.

TestClient hands the app the whole body at once, so only a real server shows that an upload
is refused while it is still arriving, without the server reading (or storing) all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import Server, running_server
from trapline.objects.store import ObjectStore, PresignedPost, open_store
from trapline.settings import load_settings

pytestmark = pytest.mark.slow

KEY = "symbolsets/0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11"
BOUNDARY = "trapline-live-test"
CHUNK = b"m" * 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("live") / "data", {"TRAPLINE_WORKERS": "0"}) as live:
        yield live


@pytest.fixture(scope="module")
def store(server: Server) -> ObjectStore:
    # Same data dir, so the same folder and secret key as the server: its presigned URLs are ours.
    port = int(server.url.rsplit(":", 1)[1])
    return open_store(load_settings(data_dir=server.data_dir, port=port))


def streamed_form(post: PresignedPost, file_chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A multipart body produced as it is sent (chunked), the way a large file would go."""
    for name, value in post.fields.items():
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.js.map"\r\n\r\n'.encode()
    yield from file_chunks
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def post_form(post: PresignedPost, body: Iterator[bytes]) -> httpx.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return httpx.post(post.url, content=body, headers=headers, timeout=30)


def test_a_streamed_upload_is_stored(server: Server, store: ObjectStore):
    post = store.presigned_post(KEY, max_size=10 * len(CHUNK), expires_in=60)
    response = post_form(post, streamed_form(post, iter([CHUNK] * 10)))
    assert response.status_code == 204, response.text
    assert store.get(KEY) == CHUNK * 10
    download = httpx.get(store.presigned_get(KEY, expires_in=60), timeout=30)
    assert download.content == CHUNK * 10


def test_an_endless_upload_is_refused_once_it_passes_the_limit(server: Server, store: ObjectStore):
    sent = 0
    give_up = 512 * 1024 * 1024

    def endless() -> Iterator[bytes]:
        nonlocal sent
        while sent < give_up:
            sent += len(CHUNK)
            yield CHUNK

    post = store.presigned_post("symbolsets/endless", max_size=1024 * 1024, expires_in=60)
    response = post_form(post, streamed_form(post, endless()))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    # The server stopped reading near the limit and closed the connection (without that,
    # uvicorn reads and discards the rest of the body); what else got sent sat in socket buffers.
    assert sent < 64 * 1024 * 1024
    assert store.get("symbolsets/endless") is None
    assert list(Path(server.data_dir, "objects").rglob(".*")) == []
