"""Start and stop a real data API server (``python -m data_api``) for tests.

Reusable from any test folder::

    from tests.data_api.server import running_data_api

    with running_data_api(scale=0.01, seed=7) as base_url:
        httpx.get(f"{base_url}/data", params={"group_number": 1})

Inherited ``DATA_API_*`` variables are dropped so the caller's environment cannot change the
server; pass ``env`` to set some. The server's output goes to a temporary log file whose path
is in any startup error.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DATA_API_")}
    path = base.get("PYTHONPATH")
    base["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT)
    base.update(env or {})
    return base


def start_data_api(
    port: int,
    scale: float,
    seed: int,
    env: Mapping[str, str] | None = None,
    *,
    startup_timeout: float = 30.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m data_api`` on 127.0.0.1:``port``; return it once /health answers."""
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the process owner
        prefix=f"data-api-{port}-", suffix=".log", delete=False
    )
    cmd = [
        sys.executable,
        "-m",
        "data_api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--scale",
        str(scale),
        "--seed",
        str(seed),
    ]
    process = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=_server_env(env), stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_data_api(process)
    tail = Path(log.name).read_text(errors="replace")[-3000:]
    raise RuntimeError(f"data API did not start on {base_url} (log {log.name}):\n{tail}")


def stop_data_api(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@contextmanager
def running_data_api(
    port: int | None = None,
    scale: float = 0.01,
    seed: int = 7,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """A server for the duration of the ``with`` block; yields its base URL."""
    process, base_url = start_data_api(port or free_port(), scale, seed, env)
    try:
        yield base_url
    finally:
        stop_data_api(process)
