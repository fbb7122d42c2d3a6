"""Objects in an S3 bucket (or MinIO, R2, Ceph…), under an optional key prefix.

Presigned URLs are S3's own: clients upload and download straight from the bucket, and S3
enforces the size limit (the policy's ``content-length-range``) and the expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

# boto3 ships without type hints (boto3-stubs would add them); its objects are Any here.
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from trapline.objects.store import ObjectStoreError, PresignedPost, check_presign, validate_key

if TYPE_CHECKING:
    from trapline.settings import Settings

__all__ = ["S3Store"]

# HEAD has no body, so S3 can only say "404"; GET says which thing is missing.
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        parts = urlsplit(settings.object_store_url)
        secret = settings.s3_secret_access_key
        if bool(settings.s3_access_key_id) != (secret is not None):
            # boto3 would fail later, on the first request, with a less helpful message.
            raise ObjectStoreError("set both TRAPLINE_S3_ACCESS_KEY_ID and TRAPLINE_S3_SECRET_ACCESS_KEY, or neither")
        config = Config(
            signature_version="s3v4",
            # MinIO and most S3-compatible servers have no per-bucket host names.
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        )
        try:
            # A session of our own: boto3's default one is shared module state, unsafe across threads.
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.s3_endpoint_url or None,
                region_name=settings.s3_region or None,
                # None lets boto3 look further: environment, ~/.aws, the instance's role.
                aws_access_key_id=settings.s3_access_key_id or None,
                aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:
            raise ObjectStoreError(f"cannot set up the S3 client: {exc}") from exc
        return cls(parts.netloc, parts.path, client)

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStoreError(f"S3 {action} of s3://{self.bucket}/{key} failed: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        with self._errors("put", full):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def get(self, key: str) -> bytes | None:
        full = self._key(key)
        with self._errors("get", full):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                # Only a missing key: a missing bucket is a misconfiguration and must raise.
                if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                    return None
                raise
            with response["Body"] as body:
                data: bytes = body.read()
                return data

    def size(self, key: str) -> int | None:
        full = self._key(key)
        with self._errors("head", full):
            try:
                response = self.client.head_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING_KEY:
                    return None
                raise
            length: int = response["ContentLength"]
            return length

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors("delete", full):
            # S3 answers 204 whether or not the key existed.
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def presigned_post(self, key: str, *, max_size: int, expires_in: int) -> PresignedPost:
        check_presign(max_size=max_size, expires_in=expires_in)
        full = self._key(key)
        # Signing is local, but fails when there are no credentials at all.
        with self._errors("presigned post", full):
            post = self.client.generate_presigned_post(
                Bucket=self.bucket,
                Key=full,
                Fields={},
                Conditions=[["content-length-range", 0, max_size]],
                ExpiresIn=expires_in,
            )
        return PresignedPost(url=post["url"], fields={name: str(value) for name, value in post["fields"].items()})

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        check_presign(expires_in=expires_in)
        full = self._key(key)
        with self._errors("presigned get", full):
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_in
            )
        return url
