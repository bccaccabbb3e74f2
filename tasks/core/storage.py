"""Object storage behind one small interface, addressed by URL.

``s3://bucket[/prefix]`` talks to any S3 endpoint (SeaweedFS, MinIO, AWS) through boto3;
``file:///abs/dir`` or ``file://./rel/dir`` uses a local directory. Writes are atomic: one
PUT on S3, a temporary file and a rename on a filesystem, so a failed write leaves nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pydantic import SecretStr


class ObjectStore(Protocol):
    """What the tasks need from a store. Keys are relative, ``/``-separated."""

    url: str

    def put_bytes(self, key: str, data: bytes, content_type: str = ...) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str) -> str: ...


class StorageError(RuntimeError):
    """A store could not be reached or answered an error; the message says which and why."""


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes the store root {self.root}")
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        keys = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"S3 {action} of s3://{self.bucket}/{self._key(key)} failed: {exc}")

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("PUT", key, exc) from exc

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("GET", key, exc) from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._fail("HEAD", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("HEAD", key, exc) from exc
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("LIST", prefix, exc) from exc
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


class StoreSettings(Protocol):
    """What :func:`open_store` reads of a settings object (tasks', serving's, the UI's)."""

    s3_endpoint_url: str | None
    aws_access_key_id: str | None
    aws_secret_access_key: SecretStr | None
    aws_region: str
    s3_connect_timeout_seconds: float
    s3_read_timeout_seconds: float
    s3_max_attempts: int


def open_store(url: str, settings: StoreSettings | None = None) -> ObjectStore:
    """The store for ``url``; S3 endpoint, credentials and timeouts come from ``settings``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
        return FileStore(path.resolve())
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket: use s3://<bucket>[/<prefix>]")
        secret = settings.aws_secret_access_key if settings else None
        return S3Store(
            parsed.netloc,
            parsed.path,
            endpoint_url=settings.s3_endpoint_url if settings else None,
            access_key=settings.aws_access_key_id if settings else None,
            secret_key=secret.get_secret_value() if secret else None,
            region=settings.aws_region if settings else "us-east-1",
            **(
                {
                    "connect_timeout": settings.s3_connect_timeout_seconds,
                    "read_timeout": settings.s3_read_timeout_seconds,
                    "max_attempts": settings.s3_max_attempts,
                }
                if settings
                else {}
            ),
        )
    raise ValueError(
        f"unsupported storage URL {url!r}: use s3://<bucket>[/<prefix>] or file://<dir>"
    )
