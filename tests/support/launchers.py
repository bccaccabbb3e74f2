"""The task launchers of one test process: each task's imports paid once, not once per run.

The local runtime's fork servers (``dags/realtor/launcher.py``, docs/pipeline.md): one per task
module, started here on first use with this interpreter and the repository as working directory,
serving ``<folder>/<module>.socket``. A run forked from one is ``python -m tasks.<step> <args>``
in its own process group with the run's environment, working directory, arguments and streams,
the module executed as ``__main__`` and the interpreter's normal exit, as in the embedded runtime
(``make demo``). On 2 cores the imports are most of a short step's time (validate 8 s,
drift_check 12 s, train 10 s, promote 9 s of import, measured on a slow machine): the lifecycle
stories and the DAG runs pay them once per test process instead of at every step.

- :class:`ForkedProcess` runs a step through its launcher (:func:`tests.support.steps.start_step`);
- :func:`shared_folder` is the folder ``airflow dags test`` finds them in
  (``PIPELINE_LOCAL_LAUNCHERS``), after :func:`ensure` started the ones a DAG needs.

``TEST_FRESH_INTERPRETERS=1`` runs every step in a fresh interpreter instead. The launchers end
with this process (their stdin closes), and so do the runs still going.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "dags" / "realtor" / "launcher.py"
START_TIMEOUT = 600  # seconds for a launcher's imports on a busy machine

_lock = threading.Lock()
_folder: Path | None = None
_launchers: dict[str, subprocess.Popen[bytes]] = {}
_ready: dict[str, threading.Event] = {}


def enabled() -> bool:
    return os.environ.get("TEST_FRESH_INTERPRETERS", "") not in ("1", "true", "yes")


def _protocol() -> ModuleType:
    """``dags/realtor/launcher.py`` (standard library only): the launcher and its client side."""
    spec = importlib.util.spec_from_file_location("realtor_launcher", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


protocol = _protocol()


def shared_folder() -> Path:
    """This process's launcher folder (short: a socket path has at most 107 bytes)."""
    global _folder
    with _lock:
        if _folder is None:
            _folder = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))
        return _folder


def ensure(modules: Iterable[str]) -> Path:
    """Start the launchers of ``modules`` that are not running yet, all at once, and wait
    until each has imported its libraries; the socket folder."""
    folder = shared_folder()
    started: list[tuple[str, subprocess.Popen[bytes], Any]] = []
    waiting: list[threading.Event] = []
    with _lock:
        for module in modules:
            running = _launchers.get(module)
            if running is not None and running.poll() is None:
                waiting.append(_ready[module])  # another thread may still be waiting for it
                continue
            socket_path = folder / f"{module}.socket"
            socket_path.unlink(missing_ok=True)
            with (folder / f"{module}.log").open("wb") as log:
                process = protocol.start(
                    sys.executable, module, str(socket_path), str(REPO), {**os.environ}, log
                )  # its stdin closes when this process ends: the launcher ends
            _launchers[module] = process
            _ready[module] = threading.Event()
            started.append((module, process, protocol.Readiness(process)))
    for module, process, readiness in started:
        try:
            if not readiness.wait(START_TIMEOUT):
                process.kill()
                log_text = (folder / f"{module}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the launcher of {module} did not start; its log:\n{log_text}")
        finally:
            _ready[module].set()
    for event in waiting:
        event.wait(START_TIMEOUT)
    return folder


class ForkedProcess:
    """``python -m <module> <args>`` forked from its launcher, used like a
    :class:`subprocess.Popen` with text pipes: :meth:`communicate`, then ``returncode``."""

    def __init__(self, module: str, args: list[str], env: dict[str, str]) -> None:
        folder = ensure([module])
        self.command = [module, *args]
        self.returncode: int | None = None
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by communicate)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._connection, self._answers, self.pid = protocol.request_run(
                str(folder / f"{module}.socket"),
                module,
                args,
                str(REPO),
                env,
                (self._out.fileno(), self._err.fileno()),
            )
        except protocol.LauncherError as exc:
            self._out.close()
            self._err.close()
            raise RuntimeError(f"the launcher of {module} did not start the run: {exc}") from exc

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the run's end: its stdout and stderr. On timeout its process group is
        killed and :class:`subprocess.TimeoutExpired` raised."""
        self._connection.settimeout(timeout)
        try:
            self.returncode, _ = protocol.read_status(self._answers)
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self._close()
            raise subprocess.TimeoutExpired(self.command, timeout or 0) from exc
        except protocol.LauncherError as exc:
            self._close()
            raise RuntimeError(f"the launcher of {self.command[0]}: {exc}") from exc
        streams = []
        for stream in (self._out, self._err):
            stream.seek(0)
            streams.append(stream.read().decode("utf-8", "replace"))
        self._close()
        return streams[0], streams[1]

    def _close(self) -> None:
        self._connection.close()
        self._out.close()
        self._err.close()
