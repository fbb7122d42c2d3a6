"""What only the S3 store does: prefixes, failures, and the limits its presigned URLs carry.

moto's server stores a presigned POST without checking its policy (size, expiry, signature)
and serves a presigned GET after it expires, so refusals cannot be watched happening here.
These tests check instead that every URL states its limits and is signed with the configured
credentials: what S3 and S3-compatible servers enforce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.objects.conftest import ACCESS_KEY_ID, BUCKET, REGION, SECRET_ACCESS_KEY, s3_settings
from tests.server import free_port
from trapline.objects.s3 import S3Store
from trapline.objects.store import ObjectStoreError, open_store
from trapline.settings import load_settings

KEY = "symbolsets/0198f1c2-7a3e-7cc1-9f00-5b2d1e0a9c11"


def sigv4(date: str, string_to_sign: str) -> str:
    """AWS Signature Version 4 over ``string_to_sign``, with the test credentials."""
    key = ("AWS4" + SECRET_ACCESS_KEY).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_keys_are_stored_under_the_prefix(s3_store: S3Store, s3_prefix: str):
    s3_store.put(KEY, b"data")
    stored = s3_store.client.get_object(Bucket=BUCKET, Key=f"{s3_prefix}/{KEY}")
    assert stored["Body"].read() == b"data"
    assert s3_store.presigned_post(KEY, max_size=1, expires_in=60).fields["key"] == f"{s3_prefix}/{KEY}"


def test_a_store_without_a_prefix_uses_the_keys_as_they_are(s3_store: S3Store):
    bare = S3Store(BUCKET, "", s3_store.client)
    key = f"{s3_store.prefix}/{KEY}"
    bare.put(key, b"data")
    assert s3_store.get(KEY) == b"data"


def test_the_presigned_post_policy_limits_key_size_and_time(s3_store: S3Store):
    before = time.time()
    post = s3_store.presigned_post(KEY, max_size=12345, expires_in=600)
    policy = json.loads(base64.b64decode(post.fields["policy"]))
    assert ["content-length-range", 0, 12345] in policy["conditions"]
    assert {"key": post.fields["key"]} in policy["conditions"]
    assert {"bucket": BUCKET} in policy["conditions"]
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + 600 - 2 <= expiration <= time.time() + 600
    # Path-style: the endpoint is a plain host, the bucket the first path segment.
    assert urlsplit(post.url).path == f"/{BUCKET}"
    credential = post.fields["x-amz-credential"]
    assert credential.startswith(f"{ACCESS_KEY_ID}/")
    assert post.fields["x-amz-signature"] == sigv4(credential.split("/")[1], post.fields["policy"])


def test_the_presigned_get_url_expires(s3_store: S3Store):
    url = s3_store.presigned_get(KEY, expires_in=300)
    params = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert params["X-Amz-Expires"] == "300"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Credential"].startswith(f"{ACCESS_KEY_ID}/")
    assert urlsplit(url).path == f"/{BUCKET}/{s3_store.prefix}/{KEY}"


def test_a_missing_bucket_raises_rather_than_looking_empty(s3_store: S3Store):
    missing = S3Store("no-such-bucket-here", "", s3_store.client)
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        missing.get(KEY)
    with pytest.raises(ObjectStoreError):
        missing.put(KEY, b"x")


def test_an_unreachable_server_raises(data_dir: Path):
    store = open_store(s3_settings(data_dir, f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ObjectStoreError, match="Could not connect"):
        store.get(KEY)
    with pytest.raises(ObjectStoreError):
        store.put(KEY, b"x")


@pytest.mark.parametrize(
    "credentials", [{"s3_access_key_id": ACCESS_KEY_ID}, {"s3_secret_access_key": SECRET_ACCESS_KEY}]
)
def test_half_a_key_pair_is_refused(data_dir: Path, s3_endpoint: str, credentials: dict[str, str]):
    settings = load_settings(
        data_dir=data_dir, object_store_url=f"s3://{BUCKET}", s3_endpoint_url=s3_endpoint, **credentials
    )
    with pytest.raises(ObjectStoreError, match="both"):
        open_store(settings)
