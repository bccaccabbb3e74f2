"""A real MLflow tracking server: Postgres backend store, artifacts proxied to S3.

The server's job runner (MLflow 3's background jobs for its GenAI features: a huey consumer
per job queue, each a Python process importing MLflow) is switched off: the platform uses
tracking, artifacts and the registry only, and those eight processes doubled the time to start
the server and held up its stop (SIGTERM waited for the consumers) on 2 cores.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, kill_process, start_process, stop_process, wait_http
from tests.support.seaweed import S3Endpoint


class MlflowServer:
    """``mlflow server`` on a port fixed at construction: stoppable and restartable."""

    def __init__(
        self,
        backend_store_uri: str,
        s3: S3Endpoint,
        workdir: Path,
        artifacts_bucket: str = "mlflow",
    ) -> None:
        s3.create_bucket(artifacts_bucket)
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.s3 = s3
        self.workdir = workdir
        self.log_path = workdir / f"mlflow-{self.port}.log"
        self.command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            f"s3://{artifacts_bucket}",
        ]
        self.env = {**s3.env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = None

    def start(self) -> str:
        self.process = start_process(
            self.command, log_path=self.log_path, env=self.env, cwd=self.workdir
        )
        wait_http(f"{self.uri}/health", self.process, log_path=self.log_path, timeout=120)
        return self.uri

    def kill(self) -> None:
        """Stop at once (SIGKILL to the process group): the server is gone, as in a crash."""
        kill_process(self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextmanager
def mlflow_server(
    backend_store_uri: str, s3: S3Endpoint, workdir: Path, artifacts_bucket: str = "mlflow"
) -> Iterator[str]:
    """Start ``mlflow server`` on a free port; yield its tracking URI."""
    server = MlflowServer(backend_store_uri, s3, workdir, artifacts_bucket)
    try:
        yield server.start()
    finally:
        server.stop()
