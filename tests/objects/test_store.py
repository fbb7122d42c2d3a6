"""The ObjectStore contract, run against every store: memory, a local folder and S3 (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.objects.conftest import s3_settings
from trapline.objects.local import LocalStore
from trapline.objects.s3 import S3Store
from trapline.objects.store import InvalidKey, ObjectStore, open_store, validate_key
from trapline.settings import load_settings

KEY = "symbolsets/0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11"

# Each is a way out of the store's folder, or a name that means something else on some system.
BAD_KEYS = [
    "",
    "..",
    ".",
    "../x",
    "a/../../x",
    "a/./b",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/",
    "a\\b",
    "..\\x",
    "%2e%2e/x",
    "..%2fx",
    "%2e%2e%2fx",
    "a/%2e%2e",
    ".hidden",
    "a/.b",
    "a\x00b",
    "a\nb",
    "a/b\n",
    "a b",
    "é",
    "-rf",
    "a/" + "b" * 256,
    "k" * 1025,
]


def test_put_then_get_returns_the_bytes(store: ObjectStore):
    store.put(KEY, b'{"version": 3}')
    assert store.get(KEY) == b'{"version": 3}'


def test_a_missing_key_is_none_and_deleting_it_is_fine(store: ObjectStore):
    assert store.get("symbolsets/missing") is None
    assert store.size("symbolsets/missing") is None
    store.delete("symbolsets/missing")
    assert store.get("never/was/here") is None


def test_size_is_the_byte_length(store: ObjectStore):
    store.put(KEY, "é€😀".encode())
    assert store.size(KEY) == 9
    store.put("empty", b"")
    assert store.size("empty") == 0
    assert store.get("empty") == b""


def test_put_overwrites(store: ObjectStore):
    store.put(KEY, b"first version, longer than the second")
    store.put(KEY, b"second")
    assert store.get(KEY) == b"second"
    assert store.size(KEY) == 6


def test_binary_data_round_trips_unchanged(store: ObjectStore):
    data = bytes(range(256)) * 4096 + b"\r\n\x00\xff"
    store.put(KEY, data)
    assert store.get(KEY) == data
    assert store.size(KEY) == len(data)


def test_delete_removes_only_that_key(store: ObjectStore):
    for key in ("a/b", "a/c", "ab", "a/b.map"):
        store.put(key, key.encode())
    store.delete("a/b")
    store.delete("a/b")
    assert store.get("a/b") is None
    assert store.size("a/b") is None
    assert [store.get(key) for key in ("a/c", "ab", "a/b.map")] == [b"a/c", b"ab", b"a/b.map"]


def test_a_prefix_of_a_key_is_not_an_object(store: ObjectStore):
    store.put("symbolsets/one/file", b"x")
    assert store.get("symbolsets/one") is None
    assert store.size("symbolsets/one") is None
    assert store.get("symbolsets") is None


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(store: ObjectStore, key: str):
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    with pytest.raises(InvalidKey):
        store.get(key)
    with pytest.raises(InvalidKey):
        store.size(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    with pytest.raises(InvalidKey):
        store.presigned_post(key, max_size=10, expires_in=60)
    with pytest.raises(InvalidKey):
        store.presigned_get(key, expires_in=60)


@pytest.mark.parametrize("key", ["a", "A-1_b.c", "symbolsets/0198f1c2-7a3e", "a/b/c/d.js.map", "x" * 255])
def test_ordinary_keys_are_accepted(key: str):
    assert validate_key(key) == key


def test_presigned_post_names_the_key_in_its_fields(store: ObjectStore):
    post = store.presigned_post(KEY, max_size=1024, expires_in=60)
    # S3's key field carries the store's prefix; what matters is that there is one to send.
    assert post.fields["key"].endswith(KEY)
    assert all(isinstance(value, str) for value in post.fields.values())
    assert isinstance(store.presigned_get(KEY, expires_in=60), str)


@pytest.mark.parametrize(("max_size", "expires_in"), [(-1, 60), (10, 0), (10, -5), (10, 8 * 24 * 3600)])
def test_presign_arguments_no_store_could_honour_are_refused(store: ObjectStore, max_size: int, expires_in: int):
    with pytest.raises(ValueError, match=r"max_size|expires_in"):
        store.presigned_post(KEY, max_size=max_size, expires_in=expires_in)


def test_open_store_picks_the_store_by_url(data_dir: Path, s3_endpoint: str):
    local = open_store(load_settings(data_dir=data_dir))
    assert isinstance(local, LocalStore)
    assert local.root == (data_dir / "objects").resolve()
    s3 = open_store(s3_settings(data_dir, s3_endpoint, "some/prefix/"))
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("trapline-objects", "some/prefix")
