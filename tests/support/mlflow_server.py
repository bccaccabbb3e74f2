"""A real MLflow tracking server: Postgres backend store, artifacts proxied to S3."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, start_process, stop_process, wait_http
from tests.support.seaweed import S3Endpoint


@contextmanager
def mlflow_server(
    backend_store_uri: str, s3: S3Endpoint, workdir: Path, artifacts_bucket: str = "mlflow"
) -> Iterator[str]:
    """Start ``mlflow server`` on a free port; yield its tracking URI."""
    s3.create_bucket(artifacts_bucket)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        f"s3://{artifacts_bucket}",
    ]
    log_path = workdir / "mlflow.log"
    process = start_process(command, log_path=log_path, env=s3.env(), cwd=workdir)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", process, log_path=log_path, timeout=120)
        yield uri
    finally:
        stop_process(process)
