"""The storage module against a directory and a real S3 store (SeaweedFS)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasks.core.settings import TaskSettings
from tasks.core.storage import FileStore, ObjectStore, StorageError, open_store
from tests.support.seaweed import S3Endpoint


def s3_settings(s3: S3Endpoint) -> TaskSettings:
    return TaskSettings(
        s3_endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
    )


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'lake'}")
    s3 = request.getfixturevalue("s3")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/prefix", s3_settings(s3))


def test_put_get_exists_list(store: ObjectStore):
    assert not store.exists("raw/a.parquet")
    store.put_bytes("raw/a.parquet", b"abc")
    store.put_bytes("raw/b.parquet", b"defg")
    store.put_bytes("curated/c.parquet", b"h")
    assert store.exists("raw/a.parquet")
    assert store.get_bytes("raw/b.parquet") == b"defg"
    assert store.list_keys("raw/") == ["raw/a.parquet", "raw/b.parquet"]
    assert store.uri("raw/a.parquet").endswith("raw/a.parquet")
    store.delete("raw/a.parquet")
    assert not store.exists("raw/a.parquet")


def test_file_store_writes_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = FileStore(tmp_path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("tasks.core.storage.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put_bytes("raw/x.parquet", b"123")
    assert list(tmp_path.rglob("*")) == [tmp_path / "raw"]  # no object, no temporary file


def test_file_store_refuses_keys_outside_its_root(tmp_path: Path):
    with pytest.raises(ValueError, match="escapes"):
        FileStore(tmp_path / "lake").put_bytes("../outside", b"x")


def test_unknown_schemes_and_missing_buckets_are_clear_errors():
    with pytest.raises(ValueError, match="unsupported storage URL"):
        open_store("ftp://host/dir")
    with pytest.raises(ValueError, match="names no bucket"):
        open_store("s3://")


def test_s3_errors_name_the_object(s3: S3Endpoint):
    store = open_store("s3://no-such-bucket-here", s3_settings(s3))
    with pytest.raises(StorageError, match="no-such-bucket-here/raw/x"):
        store.get_bytes("raw/x")


def test_creating_a_bucket_that_exists_is_success(s3: S3Endpoint):
    """`weed mini` creates its first bucket itself while it starts: creating it again (as the
    test set-up does, whether or not the server got there first) must not fail."""
    s3.create_bucket(s3.bucket)
    s3.create_bucket(s3.bucket)
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    s3.create_bucket(name)
    assert {s3.bucket, name} <= {b["Name"] for b in s3.client().list_buckets()["Buckets"]}
