"""Start a prepared container's process and wait for its own probe, as the kubelet would:
readinessProbe (else startupProbe) by httpGet, tcpSocket or exec, every periodSeconds after
initialDelaySeconds; or, for compose, the service's healthcheck test. A Job's container is
waited for until it exits, 0 being success."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
from workloads.container import Prepared


class NotReadyError(RuntimeError):
    pass


def start(prepared: Prepared, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        handle.write(f"$ {' '.join(prepared.argv)}\n  (cwd {prepared.cwd})\n".encode())
    return subprocess.Popen(
        prepared.argv,
        cwd=prepared.cwd,
        env=prepared.env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port(prepared: Prepared, port: int | str) -> int:
    number = prepared.named_ports.get(port, port) if isinstance(port, str) else port
    number = int(number)
    if number not in prepared.ports:
        raise NotReadyError(f"the probe's port {port} is no containerPort of the container")
    return prepared.ports[number]


def choose(container: dict) -> tuple[str, dict | None]:
    """The probe that says ready: readinessProbe, else startupProbe, else livenessProbe (what
    the kubelet would act on first), else the compose healthcheck; else none (exited = done)."""
    for key in ("readinessProbe", "startupProbe", "livenessProbe", "x-healthcheck"):
        if container.get(key):
            return key.removeprefix("x-"), container[key]
    return "no probe", None


def probe_once(prepared: Prepared, probe: dict, timeout: float) -> str | None:
    """None when the probe passes, else what it saw."""
    if "httpGet" in probe:
        get = probe["httpGet"]
        scheme = get.get("scheme", "HTTP").lower()
        url = f"{scheme}://127.0.0.1:{_port(prepared, get['port'])}{get.get('path', '/')}"
        try:
            # as the kubelet: an HTTPS probe does not check the certificate
            response = httpx.get(url, timeout=timeout, verify=False)  # noqa: S501
        except httpx.HTTPError as exc:
            return f"GET {get.get('path', '/')}: {type(exc).__name__}"
        return None if 200 <= response.status_code < 400 else f"HTTP {response.status_code}"
    if "tcpSocket" in probe:
        try:
            socket.create_connection(
                ("127.0.0.1", _port(prepared, probe["tcpSocket"]["port"])), timeout
            ).close()
        except OSError as exc:
            return f"tcp: {exc}"
        return None
    if "exec" in probe:
        from workloads.container import remap_command

        command = remap_command(prepared, probe["exec"]["command"])
        try:
            done = subprocess.run(
                command, cwd=prepared.cwd, env=prepared.env, capture_output=True, text=True,
                timeout=max(timeout, 30),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "exec: timed out"
        if done.returncode == 0:
            return None
        return f"exec exited {done.returncode}: {(done.stdout + done.stderr).strip()[-300:]}"
    raise NotReadyError(f"unknown probe {sorted(probe)}")


def wait_ready(
    prepared: Prepared, process: subprocess.Popen[bytes], probe: dict | None, log: Path,
    budget: float,
) -> None:  # fmt: skip
    """Until ``probe`` passes (``budget`` seconds at most); NotReadyError with the log's tail."""
    if probe is None:
        return
    deadline = time.monotonic() + budget
    time.sleep(min(float(probe.get("initialDelaySeconds", 0)), 2.0))
    period = min(float(probe.get("periodSeconds", 10)), 1.0)
    last = "not probed"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReadyError(f"exited {process.returncode} before ready; log:\n{tail(log)}")
        last = probe_once(prepared, probe, float(probe.get("timeoutSeconds", 5))) or ""
        if not last:
            return
        time.sleep(period)
    raise NotReadyError(f"probe not passing after {budget:.0f}s ({last}); log:\n{tail(log)}")


def wait_exit(process: subprocess.Popen[bytes], log: Path, budget: float) -> None:
    try:
        code = process.wait(timeout=budget)
    except subprocess.TimeoutExpired as exc:
        raise NotReadyError(f"still running after {budget:.0f}s; log:\n{tail(log)}") from exc
    if code != 0:
        raise NotReadyError(f"exited {code}; log:\n{tail(log)}")
