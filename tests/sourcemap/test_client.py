"""The upload protocol, request by request, against a fake PostHog."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.sourcemap.fake_posthog import (
    API_KEY,
    HOST,
    PREFIX,
    PROJECT,
    UPLOAD_URL,
    FakePostHog,
    StoredSet,
    multipart_parts,
)
from trapline import __version__
from trapline.sourcemap.client import (
    Api,
    ApiError,
    ProtocolError,
    SymbolSet,
    Unreachable,
    UploadForm,
    UploadReport,
    UploadTarget,
    upload_symbol_sets,
)
from trapline.sourcemap.config import ApiConfig
from trapline.sourcemap.container import content_hash
from trapline.sourcemap.release import ReleaseSpec, release_hash_id

CONFIG = ApiConfig(host=HOST, api_key=API_KEY, project_id=PROJECT)
CHUNKS = ["0192c2a0-0000-7000-8000-00000000000a", "0192c2a0-0000-7000-8000-00000000000b"]
RELEASE = "0192c2a0-2222-7000-8000-00000000cafe"


def symbol_set(chunk_id: str, release_id: str | None = None, data: bytes | None = None) -> SymbolSet:
    data = data if data is not None else f"container of {chunk_id}".encode()
    return SymbolSet(
        chunk_id=chunk_id,
        release_id=release_id,
        content_hash=content_hash(data),
        content_length=len(data),
        label=f"dist/{chunk_id[-1]}.js",
        read=lambda: data,
    )


@pytest.fixture
def server() -> FakePostHog:
    return FakePostHog()


@pytest.fixture
def notes() -> list[str]:
    return []


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api(server: FakePostHog, notes: list[str], sleeps: list[float]) -> Api:
    return Api(CONFIG, transport=server.transport(), sleep=sleeps.append, notify=notes.append)


def upload(api: Api, sets: list[SymbolSet], batch_size: int = 50) -> tuple[list[str], UploadReport]:
    progress: list[str] = []
    report = upload_symbol_sets(api, sets, batch_size=batch_size, progress=progress.append)
    return progress, report


def test_release_is_looked_up_by_hash_then_created(api: Api, server: FakePostHog):
    spec = ReleaseSpec("web", "1.2.3", {"git": {"commit_id": "abc"}})
    release_id, created = api.release(spec)

    hash_id = hashlib.sha512(b"web1.2.3").hexdigest()
    assert spec.hash_id == release_hash_id("web", "1.2.3") == hash_id
    lookup, create = server.requests
    assert (lookup.method, lookup.path) == ("GET", f"{PREFIX}releases/hash/{hash_id}")
    assert (create.method, create.path) == ("POST", f"{PREFIX}releases")
    assert create.json() == {
        "hash_id": hash_id,
        "version": "1.2.3",
        "project": "web",
        "metadata": {"git": {"commit_id": "abc"}},
    }
    assert created and release_id == server.releases[hash_id]["id"]

    assert api.release(spec) == (release_id, False)  # now found by its hash
    assert [request.method for request in server.requests] == ["GET", "POST", "GET"]


def test_upload_sends_exactly_what_posthogs_cli_sends(api: Api, server: FakePostHog):
    sets = [symbol_set(CHUNKS[0], RELEASE), symbol_set(CHUNKS[1])]
    progress, report = upload(api, sets)

    check, start, finish = server.api()
    assert [request.path for request in server.api()] == [
        f"/api/projects/{PROJECT}/error_tracking/symbol_sets/bulk_check_upload",
        f"/api/projects/{PROJECT}/error_tracking/symbol_sets/bulk_start_upload",
        f"/api/projects/{PROJECT}/error_tracking/symbol_sets/bulk_finish_upload",
    ]
    assert check.json() == {
        "symbol_sets": [
            {"chunk_id": CHUNKS[0], "release_id": RELEASE, "content_hash": sets[0].content_hash},
            {"chunk_id": CHUNKS[1], "release_id": None, "content_hash": sets[1].content_hash},
        ],
        "force": False,
        "skip_on_conflict": False,
    }
    assert start.json() == {
        "symbol_sets": [
            {
                "chunk_id": CHUNKS[0],
                "release_id": RELEASE,
                "content_hash": sets[0].content_hash,
                "content_length": sets[0].content_length,
            },
            {
                "chunk_id": CHUNKS[1],
                "release_id": None,
                "content_hash": sets[1].content_hash,
                "content_length": sets[1].content_length,
            },
        ],
        "force": False,
        "skip_on_conflict": False,
    }
    ids = {chunk: server.sets[chunk].id for chunk in CHUNKS}
    assert finish.json() == {
        "content_hashes": {ids[CHUNKS[0]]: sets[0].content_hash, ids[CHUNKS[1]]: sets[1].content_hash}
    }
    for request in server.api():
        assert request.method == "POST"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == f"trapline-sourcemap/{__version__}"

    assert [str(request.url) for request in server.uploads()] == [UPLOAD_URL, UPLOAD_URL]
    for request, sent in zip(server.uploads(), sets, strict=True):
        assert "authorization" not in request.headers
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        parts = multipart_parts(request)
        stored = server.sets[sent.chunk_id]
        # The form's fields first, in the server's order, then the file.
        assert parts == [
            ("key", None, f"symbolsets/{stored.id}".encode()),
            ("x-amz-algorithm", None, b"AWS4-HMAC-SHA256"),
            ("policy", None, b"eyJjb25kaXRpb25zIjpbXX0="),
            ("file", "file", sent.read()),
        ]
        assert stored.content_hash == sent.content_hash
    assert progress == [
        "Checking 2 symbol set(s) with the server",
        "Batch 1/1: 2 symbol set(s)",
        "Uploaded 1/2 dist/a.js",
        "Uploaded 2/2 dist/b.js",
    ]
    assert [s.chunk_id for s in report.uploaded] == CHUNKS


def test_chunks_the_check_says_are_there_are_not_started(api: Api, server: FakePostHog):
    sets = [symbol_set(CHUNKS[0]), symbol_set(CHUNKS[1])]
    server.sets[CHUNKS[0]] = StoredSet(id="old", release_id=None, content_hash=sets[0].content_hash, data=b"x")
    progress, report = upload(api, sets)

    start = server.api()[1]
    assert [entry["chunk_id"] for entry in start.json()["symbol_sets"]] == [CHUNKS[1]]
    assert len(server.uploads()) == 1
    assert "1 symbol set(s) already on the server" in progress
    assert [s.chunk_id for s in report.present] == [CHUNKS[0]]


@pytest.mark.parametrize("status", [403, 404, 405])
def test_without_bulk_check_everything_goes_to_bulk_start(api: Api, server: FakePostHog, notes: list[str], status: int):
    sets = [symbol_set(CHUNKS[0]), symbol_set(CHUNKS[1])]
    server.check_status = status
    # Already uploaded: bulk_start_upload leaves it out of id_map, and it is skipped.
    server.sets[CHUNKS[0]] = StoredSet(id="old", release_id=None, content_hash=sets[0].content_hash, data=b"x")
    progress, report = upload(api, sets)

    check, start, finish = server.api()
    assert check.action == "symbol_sets/bulk_check_upload"
    assert [entry["chunk_id"] for entry in start.json()["symbol_sets"]] == CHUNKS
    assert notes == [f"The server has no bulk_check_upload ({status}): asking about every symbol set"]
    assert len(server.uploads()) == 1
    assert finish.json() == {"content_hashes": {server.sets[CHUNKS[1]].id: sets[1].content_hash}}
    assert "Skipped dist/a.js: already on the server" in progress
    assert [s.chunk_id for s in report.present] == [CHUNKS[0]]


def test_release_id_mismatch_is_retried_without_release_ids(api: Api, server: FakePostHog, notes: list[str]):
    other_release = "0192c2a0-3333-7000-8000-000000000000"
    sets = [symbol_set(CHUNKS[0], RELEASE), symbol_set(CHUNKS[1], RELEASE)]
    server.check_status = 404
    server.sets[CHUNKS[0]] = StoredSet(id="old", release_id=other_release, content_hash=sets[0].content_hash, data=b"x")
    _, report = upload(api, sets)

    _, refused, retried, _ = server.api()
    assert refused.action == retried.action == "symbol_sets/bulk_start_upload"
    assert [entry["release_id"] for entry in refused.json()["symbol_sets"]] == [RELEASE, RELEASE]
    assert [entry["release_id"] for entry in retried.json()["symbol_sets"]] == [None, None]
    assert notes[-1].startswith("A chunk belongs to another release (Symbol set")
    assert notes[-1].endswith("retrying without release ids")
    assert [s.chunk_id for s in report.uploaded] == [CHUNKS[1]]
    assert [s.chunk_id for s in report.present] == [CHUNKS[0]]


def test_batches_of_batch_size(api: Api, server: FakePostHog):
    chunks = [f"0192c2a0-0000-7000-8000-00000000000{n}" for n in range(5)]
    progress, _ = upload(api, [symbol_set(chunk) for chunk in chunks], batch_size=2)
    starts = [request for request in server.api() if request.action == "symbol_sets/bulk_start_upload"]
    finishes = [request for request in server.api() if request.action == "symbol_sets/bulk_finish_upload"]
    assert [len(request.json()["symbol_sets"]) for request in starts] == [2, 2, 1]
    assert [len(request.json()["content_hashes"]) for request in finishes] == [2, 2, 1]
    assert [line for line in progress if line.startswith("Batch")] == [
        "Batch 1/3: 2 symbol set(s)",
        "Batch 2/3: 2 symbol set(s)",
        "Batch 3/3: 1 symbol set(s)",
    ]


def test_an_unknown_chunk_id_in_id_map_is_an_error(api: Api, server: FakePostHog):
    server.unknown_chunk_in_id_map = True
    with pytest.raises(ProtocolError, match="ffffffff-ffff-4fff-8fff-ffffffffffff, which was not sent"):
        upload(api, [symbol_set(CHUNKS[0])])
    assert not server.uploads()


def test_invalid_key_is_named(api: Api, server: FakePostHog):
    server.forced["symbol_sets/bulk_check_upload"] = 401
    with pytest.raises(ApiError, match=r"^the API key is invalid \(Invalid personal API key\.\)$") as caught:
        upload(api, [symbol_set(CHUNKS[0])])
    assert caught.value.status == 401


def test_missing_scope_is_named(api: Api, server: FakePostHog):
    server.check_status = 404
    server.forced["symbol_sets/bulk_start_upload"] = 403
    with pytest.raises(ApiError, match="error_tracking:write scope and access to project 42"):
        upload(api, [symbol_set(CHUNKS[0])])


def test_server_errors_are_retried_with_backoff(api: Api, server: FakePostHog, sleeps: list[float]):
    server.failures["symbol_sets/bulk_start_upload"] = 2
    _, report = upload(api, [symbol_set(CHUNKS[0])])
    assert sleeps == [0.5, 1.0]
    assert len(report.uploaded) == 1


def test_an_unreachable_host_fails_after_four_attempts(api: Api, server: FakePostHog, sleeps: list[float]):
    server.network_failures["symbol_sets/bulk_check_upload"] = 10
    with pytest.raises(Unreachable, match=r"^cannot reach https://posthog\.example: connection refused$"):
        upload(api, [symbol_set(CHUNKS[0])])
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.requests) == 4


def test_a_failing_upload_url_is_tried_three_times_then_reported(api: Api, server: FakePostHog, sleeps: list[float]):
    server.failures["upload"] = 3
    _, report = upload(api, [symbol_set(CHUNKS[0]), symbol_set(CHUNKS[1])])
    assert len(server.uploads()) == 4  # three for the first, one for the second
    assert sleeps == [0.5, 1.0]
    assert [(s.chunk_id, error) for s, error in report.failed] == [
        (
            CHUNKS[0],
            "the upload URL answered 503: " + '{"type":"invalid_request","code":"server_error",'
            '"detail":"Service unavailable","attr":null}',
        )
    ]
    finish = server.api()[-1]
    assert finish.json() == {"content_hashes": {server.sets[CHUNKS[1]].id: symbol_set(CHUNKS[1]).content_hash}}


def test_the_fallback_upload_url_is_used_after_two_network_errors(api: Api, server: FakePostHog):
    server.fallback_url = "https://accelerated.uploads.example/bucket"
    server.network_failures["upload"] = 2
    upload(api, [symbol_set(CHUNKS[0])])
    assert [str(request.url) for request in server.uploads()] == [UPLOAD_URL, UPLOAD_URL, server.fallback_url]


def test_a_relative_upload_url_is_on_the_host(api: Api):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    api._http = httpx.Client(transport=httpx.MockTransport(record))
    form = UploadForm("/api/projects/42/error_tracking/symbol_sets/upload", {"token": "signed"})
    api.upload(UploadTarget("id", form=form), b"data")
    assert str(seen[0].url) == f"{HOST}/api/projects/42/error_tracking/symbol_sets/upload"
