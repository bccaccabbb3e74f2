"""Runs forked by a launcher (``realtor/launcher.py``): one fork server per task module in the
tasks' interpreter, which imported the task's libraries once, and the runs it starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

from airflow.sdk.exceptions import AirflowException

from realtor import launcher

#: seconds a launcher may take to import its task's libraries
LAUNCHER_START_TIMEOUT = 300
#: lines of a launcher's log quoted when it fails
LOG_TAIL_LINES = 20


class _Endpoint:
    """A launcher's socket and log: what a run needs to be forked and to explain a failure."""

    module: str
    socket_path: Path
    log_path: Path

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    def start(self, module: str, arguments: list[str], cwd: str, env: dict[str, str]) -> ForkedRun:
        return ForkedRun(self, module, arguments, cwd, env)


class SharedLauncher(_Endpoint):
    """A launcher another process started and owns, serving ``<folder>/<module>.socket``
    (``PIPELINE_LOCAL_LAUNCHERS``): every Airflow process of the machine forks its runs from
    it, so its imports are paid once, not once per process. Its owner ends it; this one only
    connects to it."""

    def __init__(self, folder: Path, module: str) -> None:
        self.module = module
        self.socket_path = folder / f"{module}.socket"
        self.log_path = folder / f"{module}.log"

    @classmethod
    def find(cls, folder: Path, module: str) -> SharedLauncher | None:
        """The launcher of ``module`` in ``folder``, if one serves there."""
        found = cls(folder, module)
        return found if found.alive else None

    @property
    def alive(self) -> bool:
        return self.socket_path.is_socket()

    def wait_ready(self) -> None:
        """Ready as long as it serves (its owner waited for its imports)."""

    def stop(self) -> None:
        """Not this process's to stop."""

    def close(self) -> None:
        """Not this process's to stop."""


class Launcher(_Endpoint):
    """A fork server of one task module in the tasks' interpreter (``realtor/launcher.py``)."""

    def __init__(self, python: str, module: str, cwd: str, env: dict[str, str]) -> None:
        self.module = module
        self.folder = Path(tempfile.mkdtemp(prefix="realtor-launcher-"))
        self.socket_path = self.folder / "socket"
        self.log_path = self.folder / "launcher.log"
        with self.log_path.open("wb") as log:
            self.process = launcher.start(python, module, str(self.socket_path), cwd, env, log)
        self._readiness = launcher.Readiness(self.process)  # wait_ready() before the first run

    def wait_ready(self) -> None:
        """Wait until the launcher has imported its task's libraries; fail loudly if it can't."""
        if not self._readiness.wait(LAUNCHER_START_TIMEOUT):
            tail = self.log_tail()
            self._end()  # the log stays, for a look
            raise AirflowException(
                f"the launcher of {self.module} did not start (PIPELINE_LOCAL_PRELOAD=1; 0 runs "
                f"each task in a fresh interpreter); last lines of {self.log_path}:\n{tail}"
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """End of file on its stdin: the launcher stops (see :meth:`close`)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def _end(self) -> None:
        self.stop()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=10)

    def close(self) -> None:
        self._end()
        shutil.rmtree(self.folder, ignore_errors=True)


class ForkedRun:
    """A task process forked by a :class:`Launcher`: pid, streams, exit code and peak RSS."""

    def __init__(
        self, launcher_: _Endpoint, module: str, arguments: list[str], cwd: str, env: dict[str, str]
    ) -> None:
        self.launcher = launcher_
        self.returncode: int | None = None
        self._answer: tuple[int, int] | None = None
        self._answer_lock = threading.Lock()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            self.connection, self.answers, self.pid = launcher.request_run(
                str(launcher_.socket_path), module, arguments, cwd, env, (out_write, err_write)
            )
        except launcher.LauncherError as exc:
            os.close(out_read)
            os.close(err_read)
            raise AirflowException(
                f"the launcher of {module} did not start the run: {exc}; its log "
                f"{launcher_.log_path}:\n{launcher_.log_tail()}"
            ) from exc
        finally:
            os.close(out_write)
            os.close(err_write)
        self.stdout: IO[str] = open(out_read, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.stderr: IO[str] = open(err_read, encoding="utf-8", errors="replace")  # noqa: SIM115

    def _result(self, timeout: float | None) -> tuple[int, int]:
        # the run's thread and on_kill's may both ask; the first reads, the other gets the same
        if not self._answer_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"no exit status of pid {self.pid} in {timeout} s")
        try:
            if self._answer is None:
                self._answer = self._read_result(timeout)
            return self._answer
        finally:
            self._answer_lock.release()

    def _read_result(self, timeout: float | None) -> tuple[int, int]:
        self.connection.settimeout(timeout)
        try:
            self.returncode, maxrss_kib = launcher.read_status(self.answers)
        except launcher.LauncherError as exc:
            self.connection.close()
            raise AirflowException(
                f"the launcher of {self.launcher.module} ended during the run (pid {self.pid}); "
                f"its log {self.launcher.log_path}:\n{self.launcher.log_tail()}"
            ) from exc
        self.connection.close()  # (a timeout leaves it open: the status may still come)
        return self.returncode, maxrss_kib

    def wait(self) -> tuple[int, int]:
        """Exit code and peak RSS in KiB, as the launcher reaped them."""
        return self._result(None)

    def wait_after_kill(self, timeout: float) -> None:
        try:
            self._result(timeout)
        except (OSError, TimeoutError) as exc:
            raise subprocess.TimeoutExpired(str(self.pid), timeout) from exc
