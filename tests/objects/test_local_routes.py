"""The local store's presigned URLs as Trapline serves them: what they refuse and why."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.objects.conftest import SECRET, Clock, s3_settings
from trapline.app import create_app
from trapline.db.engine import Database
from trapline.objects.local import LocalStore
from trapline.objects.store import InvalidKey, ObjectStoreError, PresignedPost
from trapline.settings import Settings

KEY = "symbolsets/0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11"


def cli_upload(http: TestClient, post: PresignedPost, data: bytes, fields: dict[str, str] | None = None) -> Any:
    fields = post.fields if fields is None else fields
    return http.post(post.url, data=fields, files={"file": ("chunk.js.map", data, "application/octet-stream")})


def denied(response: Any) -> bool:
    return bool(response.status_code == 403 and response.json()["type"] == "authentication_error")


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def download_url(params: dict[str, str]) -> str:
    return "/_objects/download?" + urlencode(params)


def stray_files(root: Path) -> list[Path]:
    """Temporary files an upload left behind."""
    return list(root.rglob(".*"))


# --- uploads -------------------------------------------------------------------------------------


def test_an_upload_at_the_limit_is_accepted(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    assert cli_upload(local_http, post, b"x" * 100).status_code == 204
    assert local_store.size(KEY) == 100


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    response = cli_upload(local_http, post, b"x" * 101)
    assert response.status_code == 413
    assert response.json() == {
        "type": "invalid_request",
        "code": "payload_too_large",
        "detail": "Your proposed upload exceeds the maximum allowed size.",
        "attr": None,
    }
    assert local_store.get(KEY) is None
    assert stray_files(local_store.root) == []


def test_a_refused_upload_keeps_the_previous_version(local_http: TestClient, local_store: LocalStore):
    local_store.put(KEY, b"previous")
    post = local_store.presigned_post(KEY, max_size=10, expires_in=60)
    assert cli_upload(local_http, post, b"y" * 5000).status_code == 413
    assert local_store.get(KEY) == b"previous"


def test_an_expired_upload_is_refused(local_http: TestClient, local_store: LocalStore, clock: Clock):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    clock.now += 59
    assert cli_upload(local_http, post, b"in time").status_code == 204
    clock.now += 1
    response = cli_upload(local_http, post, b"too late")
    assert denied(response)
    assert response.json()["detail"] == "The URL has expired."
    assert local_store.get(KEY) == b"in time"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 64},
        {"signature": ""},
        {"key": "symbolsets/another"},
        {"key": "../outside"},
        {"key": "/tmp/outside"},
        {"max_size": "1000000"},
        {"expires": "9999999999"},
        {"expires": "-1"},
        {"expires": "1e10"},
    ],
)
def test_a_tampered_upload_is_refused(
    local_http: TestClient, local_store: LocalStore, tmp_path: Path, change: dict[str, str]
):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    assert denied(cli_upload(local_http, post, b"data", {**post.fields, **change}))
    assert local_store.get(KEY) is None
    assert not (tmp_path / "outside").exists()
    assert stray_files(local_store.root) == []


@pytest.mark.parametrize("missing", ["key", "expires", "max_size", "signature"])
def test_an_upload_without_a_signed_field_is_refused(local_http: TestClient, local_store: LocalStore, missing: str):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    fields = {name: value for name, value in post.fields.items() if name != missing}
    assert denied(cli_upload(local_http, post, b"data", fields))


def test_a_signature_from_another_secret_is_refused(local_http: TestClient, local_store: LocalStore, tmp_path: Path):
    other = LocalStore(tmp_path / "other", secret=b"o" * 48, base_url="http://testserver")
    post = other.presigned_post(KEY, max_size=100, expires_in=60)
    assert denied(cli_upload(local_http, post, b"data"))


def test_a_file_sent_before_the_fields_is_refused(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    boundary = "b0undary"
    parts = [("file", "data", '; filename="a.map"'), *((name, value, "") for name, value in post.fields.items())]
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n{value}\r\n'
        for name, value, extra in parts
    )
    response = local_http.post(
        post.url,
        content=f"{body}--{boundary}--\r\n",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert denied(response)
    assert local_store.get(KEY) is None


def test_fields_after_the_file_are_ignored(local_http: TestClient, local_store: LocalStore):
    # S3 ignores them too; signed fields can't be changed by sending them again afterwards.
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    boundary = "b0undary"
    parts = [*post.fields.items(), ("file", "data"), ("key", "symbolsets/other")]
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in parts
    )
    response = local_http.post(
        post.url,
        content=f"{body}--{boundary}--\r\n",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 204
    assert local_store.get(KEY) == b"data"
    assert local_store.get("symbolsets/other") is None


def test_a_form_without_a_file_is_a_bad_request(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    response = local_http.post(post.url, data=post.fields, files={"other": ("a", b"x")})
    assert response.status_code == 400
    assert response.json()["detail"] == "POST requires exactly one file upload per request."


def test_a_repeated_field_is_a_bad_request(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    fields = [*post.fields.items(), ("key", KEY)]
    boundary = "b0undary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in [*fields, ("file", "x")]
    )
    response = local_http.post(
        post.url,
        content=f"{body}--{boundary}--\r\n",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "The field 'key' appears more than once."


def test_a_truncated_body_stores_nothing(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    boundary = "b0undary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in post.fields.items()
    )
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"\r\n\r\nhalf a fi'
    response = local_http.post(
        post.url, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 400
    assert local_store.get(KEY) is None
    assert stray_files(local_store.root) == []


def test_endless_fields_are_refused(local_http: TestClient, local_store: LocalStore):
    post = local_store.presigned_post(KEY, max_size=100, expires_in=60)
    response = local_http.post(post.url, data={**post.fields, "junk": "j" * 100_000}, files={"file": ("a", b"x")})
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", "text/plain; boundary=x"])
def test_an_upload_must_be_a_multipart_form(local_http: TestClient, content_type: str):
    response = local_http.post("/_objects/upload", content=b"{}", headers={"Content-Type": content_type})
    assert response.status_code == 415


def test_an_overlong_boundary_is_a_bad_request(local_http: TestClient):
    response = local_http.post(
        "/_objects/upload", content=b"x", headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 300}
    )
    assert response.status_code == 400


# --- downloads -----------------------------------------------------------------------------------


def test_a_download_is_the_file_as_octets(local_http: TestClient, local_store: LocalStore):
    local_store.put(KEY, b"\x00\x01source map")
    response = local_http.get(local_store.presigned_get(KEY, expires_in=60))
    assert response.status_code == 200
    assert response.content == b"\x00\x01source map"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == "12"


def test_an_expired_download_is_refused(local_http: TestClient, local_store: LocalStore, clock: Clock):
    local_store.put(KEY, b"data")
    url = local_store.presigned_get(KEY, expires_in=60)
    clock.now += 59
    assert local_http.get(url).status_code == 200
    clock.now += 1
    response = local_http.get(url)
    assert denied(response)
    assert response.json()["detail"] == "The URL has expired."


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "f" * 64},
        {"key": "symbolsets/other"},
        {"expires": "9999999999"},
        {"key": "../secret_key"},
        {"key": "symbolsets/../../secret_key"},
        {"key": "%2e%2e/secret_key"},
    ],
)
def test_a_tampered_download_is_refused(local_http: TestClient, local_store: LocalStore, change: dict[str, str]):
    local_store.put(KEY, b"data")
    local_store.put("symbolsets/other", b"other")
    params = {**query(local_store.presigned_get(KEY, expires_in=60)), **change}
    assert denied(local_http.get(download_url(params)))


@pytest.mark.parametrize("missing", ["key", "expires", "signature"])
def test_a_download_without_a_signed_parameter_is_refused(
    local_http: TestClient, local_store: LocalStore, missing: str
):
    local_store.put(KEY, b"data")
    params = {k: v for k, v in query(local_store.presigned_get(KEY, expires_in=60)).items() if k != missing}
    assert denied(local_http.get(download_url(params)))


@pytest.mark.parametrize("raw_key", ["..%2Fsecret_key", "%2e%2e%2fsecret_key", "..%252fsecret_key", "%2Fetc%2Fpasswd"])
def test_encoded_traversal_in_a_download_url_is_refused(local_http: TestClient, local_store: LocalStore, raw_key: str):
    params = query(local_store.presigned_get(KEY, expires_in=60))
    response = local_http.get(f"/_objects/download?key={raw_key}&expires={params['expires']}&signature=x")
    assert denied(response)


def sign(method: str, key: str, expires: int, max_size: int) -> str:
    """The signing scheme, written out: HMAC-SHA256 under a key derived from the secret."""
    signing_key = hmac.new(SECRET, b"trapline.objects.presigned.v1", hashlib.sha256).digest()
    return hmac.new(signing_key, f"{method}\n{key}\n{expires}\n{max_size}".encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/outside", "a//b", "a\\b", ".."])
def test_a_correctly_signed_bad_key_is_still_refused(
    local_http: TestClient, local_store: LocalStore, clock: Clock, tmp_path: Path, key: str
):
    # Only a leaked secret could produce these; the key check stands behind the signature anyway.
    expires = int(clock.now) + 60
    (tmp_path / "outside").write_bytes(b"not an object")
    url = download_url({"key": key, "expires": str(expires), "signature": sign("GET", key, expires, 0)})
    assert denied(local_http.get(url))
    fields = {"key": key, "expires": str(expires), "max_size": "100", "signature": sign("POST", key, expires, 100)}
    response = local_http.post("/_objects/upload", data=fields, files={"file": ("a", b"overwritten")})
    assert denied(response)
    assert (tmp_path / "outside").read_bytes() == b"not an object"


def test_the_written_out_scheme_is_the_one_in_use(local_http: TestClient, local_store: LocalStore, clock: Clock):
    local_store.put(KEY, b"data")
    expires = int(clock.now) + 60
    url = download_url({"key": KEY, "expires": str(expires), "signature": sign("GET", KEY, expires, 0)})
    assert local_http.get(url).content == b"data"


# --- the folder --------------------------------------------------------------------------------


def test_a_symlink_out_of_the_folder_is_not_followed(local_store: LocalStore, tmp_path: Path, local_http: TestClient):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "file").write_bytes(b"outside")
    (local_store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        local_store.get("link/file")
    with pytest.raises(InvalidKey):
        local_store.put("link/new", b"x")
    assert not (outside / "new").exists()
    url = download_url(query(local_store.presigned_get(KEY, expires_in=60)) | {"key": "link/file"})
    assert denied(local_http.get(url))


def test_disk_errors_raise(local_store: LocalStore, tmp_path: Path):
    local_store.put("taken", b"a file where a folder would have to be")
    with pytest.raises(ObjectStoreError):
        local_store.put("taken/below", b"x")
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(ObjectStoreError):
        LocalStore(tmp_path / "a-file", secret=SECRET, base_url="http://testserver")


def test_writes_leave_no_temporary_files(local_store: LocalStore):
    for n in range(3):
        local_store.put(f"symbolsets/{n}", b"x" * n)
    assert stray_files(local_store.root) == []
    assert sorted(path.name for path in (local_store.root / "symbolsets").iterdir()) == ["0", "1", "2"]


# --- the application -----------------------------------------------------------------------------


def test_the_app_serves_its_local_store(client: TestClient):
    store = client.app.state.objects  # type: ignore[attr-defined]
    assert isinstance(store, LocalStore)
    post = store.presigned_post(KEY, max_size=1024, expires_in=60)
    assert post.url == "http://testserver/_objects/upload"
    assert cli_upload(client, post, b"through the app").status_code == 204
    assert client.get(store.presigned_get(KEY, expires_in=60)).content == b"through the app"
    store.delete(KEY)


def test_the_app_has_no_object_routes_when_objects_are_in_s3(
    settings: Settings, database: Database, data_dir: Path, s3_endpoint: str
):
    s3 = s3_settings(data_dir, s3_endpoint)
    fields = ["object_store_url", "s3_endpoint_url", "s3_region", "s3_access_key_id", "s3_secret_access_key"]
    app = create_app(settings.model_copy(update={name: getattr(s3, name) for name in fields}), database)
    with TestClient(app) as http:
        assert http.post("/_objects/upload", files={"file": ("a", b"x")}).status_code == 404
        assert http.get("/_objects/download?key=a&expires=1&signature=x").status_code == 404
