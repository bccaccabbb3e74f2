"""The ``local`` runtime: a task's command line as a subprocess in the tasks' virtualenv.

Same contract as the pod: ``python -m tasks.<name> <arguments>`` with the Airflow process's
environment plus the task's own variables, the working directory at the repository root, and
the JSON result read from the file named by ``XCOM_RETURN_PATH`` (a temporary file here,
``/airflow/xcom/return.json`` in a pod). The subprocess's stdout and stderr go into the task
log line by line as they come. A non-zero exit fails the task with the last lines of stderr;
exit 2 (bad arguments) fails it without retries, since a retry would fail the same way.

With ``preload`` (``PIPELINE_LOCAL_PRELOAD``, on by default), the process is forked from a
launcher that imported the task's module and the libraries its runs import once
(``realtor/launcher.py``, one per task module, started on first use, ended with this process):
the same command line, environment, working directory, streams, exit code and peak RSS, without
the interpreter's start and the imports of every run (about 3 s of a validate, drift_check or
promote on 2 cores, more for train).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

EXIT_BAD_ARGUMENTS = 2
STDERR_TAIL_LINES = 20
LAUNCHER = Path(__file__).with_name("launcher.py")
#: seconds a launcher may take to import its task's libraries
LAUNCHER_START_TIMEOUT = 300
#: Airflow's own configuration (database URL, fernet key...) stays out of the tasks' env
_PRIVATE_PREFIXES = ("AIRFLOW__", "_AIRFLOW", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def task_environment(
    base: Mapping[str, str], extra: Mapping[str, str], xcom_path: Path
) -> dict[str, str]:
    """The subprocess's environment: ``base`` without Airflow's private settings, plus ``extra``."""
    env = {k: v for k, v in base.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update({k: str(v) for k, v in extra.items()})
    env["XCOM_RETURN_PATH"] = str(xcom_path)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the log as they are written
    return env


def _pump(stream: IO[str], name: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for line in iter(stream.readline, ""):
        lines.put((name, line.rstrip("\n")))
    lines.put((name, None))


#: seconds between two reads of a fresh task process's own high-water mark
PEAK_SAMPLE_SECONDS = 0.1


def _own_peak_kib(pid: int) -> int | None:
    """``VmHWM`` of a live process: the peak RSS of its own memory since its ``exec``."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None  # gone, a zombie (no memory left), or no /proc


class _Process:
    """A task process started with ``subprocess``: a fresh interpreter.

    Its peak RSS: ``wait4``'s ``ru_maxrss`` when the task grew beyond this (Airflow's) process,
    whose high-water mark Linux carries into the child across ``exec`` (a ``python -c pass``
    started from a 400 MiB process reports 411 MiB); otherwise the child's own ``VmHWM``, read
    every :data:`PEAK_SAMPLE_SECONDS` while it runs (a high-water mark: a read misses only
    growth in the last tenth of a second).
    """

    def __init__(self, command: list[str], cwd: str, env: dict[str, str]) -> None:
        import resource

        self.inherited_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.sampled_kib = 0
        self.popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: on_kill ends its children too
        )
        self.pid = self.popen.pid
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.stdout: IO[str] = self.popen.stdout
        self.stderr: IO[str] = self.popen.stderr
        self.returncode: int | None = None
        self.peak_rss_kib = 0
        self._reaping = threading.Lock()
        threading.Thread(target=self._sample_peak, daemon=True).start()

    def _sample_peak(self) -> None:
        while self.returncode is None:
            peak = _own_peak_kib(self.pid)
            if peak is None:
                return
            self.sampled_kib = max(self.sampled_kib, peak)
            time.sleep(PEAK_SAMPLE_SECONDS)

    def wait(self) -> tuple[int, int]:
        """Exit code and peak RSS in KiB (reaped here, for ``wait4``'s rusage).

        The task's thread waits here while ``on_kill`` may reap the same child from another
        thread: whoever reaps records the outcome under a lock, the other reads it.
        """
        with contextlib.suppress(ChildProcessError):  # already reaped by the other thread
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)  # exited; not reaped yet
        self._reap()
        assert self.returncode is not None
        return self.returncode, self.peak_rss_kib

    def wait_after_kill(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._reap():
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.popen.args, timeout)
            time.sleep(0.05)

    def _reap(self) -> bool:
        """Reap the child if it has exited (once, whichever thread comes first)."""
        with self._reaping:
            if self.returncode is None:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
                if pid == 0:
                    return False
                self.popen.returncode = self.returncode = os.waitstatus_to_exitcode(status)
                grew_beyond_parent = usage.ru_maxrss > self.inherited_kib
                self.peak_rss_kib = (
                    usage.ru_maxrss
                    if grew_beyond_parent or not self.sampled_kib
                    else self.sampled_kib
                )
            return True


class _Launcher:
    """A fork server of one task module in the tasks' interpreter (``realtor/launcher.py``)."""

    def __init__(self, python: str, module: str, cwd: str, env: dict[str, str]) -> None:
        self.module = module
        self.folder = Path(tempfile.mkdtemp(prefix="realtor-launcher-"))
        self.socket_path = self.folder / "socket"
        self.log_path = self.folder / "launcher.log"
        command = [python, str(LAUNCHER), "--socket", str(self.socket_path), module]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,  # its end of file tells the launcher to stop
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        self._ready: list[bytes] = []
        self._reader = threading.Thread(
            target=lambda: self._ready.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        self._reader.start()  # it imports meanwhile: wait_ready() before the first run

    def wait_ready(self) -> None:
        """Wait until the launcher has imported its task's libraries; fail loudly if it can't."""
        self._reader.join(LAUNCHER_START_TIMEOUT)
        if not self._ready or self._ready[0].strip() != b"ready":
            tail = self._log_tail()
            self._end()  # the log stays, for a look
            raise AirflowException(
                f"the launcher of {self.module} did not start (PIPELINE_LOCAL_PRELOAD=1; 0 runs "
                f"each task in a fresh interpreter); last lines of {self.log_path}:\n{tail}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-STDERR_TAIL_LINES:]) or "(empty log)"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, module: str, arguments: list[str], cwd: str, env: dict[str, str]) -> _Forked:
        return _Forked(self, module, arguments, cwd, env)

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


class _Forked:
    """A task process forked by a :class:`_Launcher`: pid, streams, exit code and peak RSS."""

    def __init__(
        self, launcher: _Launcher, module: str, arguments: list[str], cwd: str, env: dict[str, str]
    ) -> None:
        from realtor.launcher import HEADER

        self.launcher = launcher
        self.returncode: int | None = None
        self._answer: tuple[int, int] | None = None
        self._answer_lock = threading.Lock()
        payload = json.dumps({"module": module, "args": arguments, "cwd": cwd, "env": env})
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.connection.connect(str(launcher.socket_path))
            socket.send_fds(
                self.connection, [HEADER.pack(len(payload.encode()))], [out_write, err_write]
            )
            self.connection.sendall(payload.encode())
            self.answers = self.connection.makefile("rb")
            first = json.loads(self.answers.readline() or b"{}")
        except (OSError, ValueError) as exc:
            first = {"error": str(exc)}
        finally:
            os.close(out_write)
            os.close(err_write)
        if "pid" not in first:
            os.close(out_read)
            os.close(err_read)
            self.connection.close()
            raise AirflowException(
                f"the launcher of {module} did not start the run: "
                f"{first.get('error') or 'no answer'}; its log {launcher.log_path}:\n"
                f"{launcher._log_tail()}"
            )
        self.pid: int = first["pid"]
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
        line = self.answers.readline()
        self.connection.close()
        if not line:
            raise AirflowException(
                f"the launcher of {self.launcher.module} ended during the run (pid {self.pid}); "
                f"its log {self.launcher.log_path}:\n{self.launcher._log_tail()}"
            )
        answer = json.loads(line)
        self.returncode = os.waitstatus_to_exitcode(answer["status"])
        return self.returncode, int(answer["maxrss_kib"])

    def wait(self) -> tuple[int, int]:
        """Exit code and peak RSS in KiB, as the launcher reaped them."""
        return self._result(None)

    def wait_after_kill(self, timeout: float) -> None:
        try:
            self._result(timeout)
        except (OSError, TimeoutError) as exc:
            raise subprocess.TimeoutExpired(str(self.pid), timeout) from exc


#: one launcher per (interpreter, module, working directory), for as long as this process runs
_launchers: dict[tuple[str, str, str], _Launcher] = {}
_launchers_lock = threading.Lock()


def launcher_for(
    python: str, module: str, cwd: str, env: dict[str, str], *, wait: bool = True
) -> _Launcher:
    """The launcher of ``module``, started (with ``env``) when there is none or it ended;
    ready to fork runs unless ``wait`` is False (then it goes on importing meanwhile)."""
    key = (python, module, cwd)
    with _launchers_lock:
        launcher = _launchers.get(key)
        if launcher is None or not launcher.alive:
            if not _launchers:
                atexit.register(close_launchers)
            launcher = _launchers[key] = _Launcher(python, module, cwd, env)
    if wait:
        launcher.wait_ready()
    return launcher


def a_core_is_idle() -> bool:
    """The 1-minute load average is below the CPUs this process may use: a pipeline's own
    tasks, one after the other, keep it around 1-1.5 on 2 cores; a test suite on 2 workers
    beside it, above 2 (no load average: no)."""
    try:
        return os.getloadavg()[0] < len(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return False


def start_launchers(operators: Sequence[LocalTaskOperator]) -> None:
    """Start the launchers of these preloading tasks now, without waiting for them, if a core
    is idle: their imports run there while the running task runs (a DAG's tasks run one after
    the other), instead of at each task's first run. On a busy machine they would only slow
    the running task down, and a run that skips a task would import its libraries for nothing:
    then each launcher starts at its task's first run."""
    if not a_core_is_idle():
        return
    for operator in operators:
        if operator.preload:
            env = task_environment(os.environ, operator.env_vars, Path(os.devnull))
            launcher_for(operator.python, operator.module, operator.cwd, env, wait=False)


def close_launchers() -> None:
    """Stop every launcher this process started (also done when it exits)."""
    with _launchers_lock:
        launchers = list(_launchers.values())
        _launchers.clear()
    for launcher in launchers:
        launcher.stop()  # all at once, then wait for each
    for launcher in launchers:
        launcher.close()


class LocalTaskOperator(BaseOperator):
    """Run ``<python> -m tasks.<name> <arguments>`` and push its JSON result as the XCom."""

    template_fields: Sequence[str] = ("arguments", "env_vars")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        module: str,
        arguments: Sequence[str] = (),
        env_vars: Mapping[str, str] | None = None,
        python: str | os.PathLike[str],
        cwd: str | os.PathLike[str],
        preload: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.arguments = list(arguments)
        self.env_vars = dict(env_vars or {})
        self.python = str(python)
        self.cwd = str(cwd)
        self.preload = preload
        self._process: _Process | _Forked | None = None

    @property
    def command(self) -> list[str]:
        return [self.python, "-m", self.module, *(str(a) for a in self.arguments)]

    def _check_interpreter(self) -> None:
        if not Path(self.python).exists():
            raise AirflowFailException(
                f"the tasks' interpreter {self.python} does not exist: create the tasks' "
                "virtualenv (`make setup`), set PIPELINE_TASKS_PYTHON to it, or run with "
                "PIPELINE_RUNTIME=kubernetes"
            )

    def execute(self, context: Any) -> dict[str, Any]:
        self._check_interpreter()
        workdir = Path(tempfile.mkdtemp(prefix=f"xcom-{self.task_id}-"))
        xcom_path = workdir / "return.json"
        env = task_environment(os.environ, self.env_vars, xcom_path)
        self.log.info("running %s (cwd %s)", " ".join(self.command), self.cwd)
        try:
            returncode, stderr_tail = self._run(env)
            if returncode != 0:
                tail = "\n".join(stderr_tail) or "(no stderr)"
                message = f"{self.module} exited with {returncode}; last lines of stderr:\n{tail}"
                if returncode == EXIT_BAD_ARGUMENTS:
                    raise AirflowFailException(f"bad arguments or settings: {message}")
                raise AirflowException(message)
            if not xcom_path.exists():
                raise AirflowException(
                    f"{self.module} exited 0 but wrote no result to XCOM_RETURN_PATH; every "
                    "task must write its JSON result there (tasks.core.cli.run_task does)"
                )
            try:
                result = json.loads(xcom_path.read_text())
            except json.JSONDecodeError as exc:
                raise AirflowException(
                    f"{self.module} wrote an invalid JSON result: {exc}"
                ) from exc
            # what the local runtime measured (the kubernetes runtime has the pod's metrics)
            result["runtime"] = {"peak_rss_mib": self.peak_rss_mib}
            return result
        finally:
            self._stop()
            shutil.rmtree(workdir, ignore_errors=True)

    def _start(self, env: dict[str, str]) -> _Process | _Forked:
        if not self.preload:
            return _Process(self.command, self.cwd, env)
        if self.has_dag():  # the other tasks of its DAG import while this one runs
            start_launchers([t for t in self.dag.tasks if isinstance(t, LocalTaskOperator)])
        launcher = launcher_for(self.python, self.module, self.cwd, env)
        return launcher.start(self.module, [str(a) for a in self.arguments], self.cwd, env)

    def _run(self, env: dict[str, str]) -> tuple[int, list[str]]:
        self._process = process = self._start(env)
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        pumps = [
            threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
            for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
        ]
        for pump in pumps:
            pump.start()
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        open_streams = len(pumps)
        while open_streams:
            name, line = lines.get()
            if line is None:
                open_streams -= 1
                continue
            if name == "stderr":
                tail.append(line)
                self.log.info("%s", line)
            else:
                self.log.info("[stdout] %s", line)
        # reaped by us (wait4) or by the launcher: the exit code and the peak memory
        returncode, peak_rss_kib = process.wait()
        self.peak_rss_mib = peak_rss_kib // 1024
        self.log.info("%s: exit %s, peak RSS %s MiB", self.module, returncode, self.peak_rss_mib)
        return returncode, list(tail)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait_after_kill(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait_after_kill(timeout=10)
        except ProcessLookupError:
            pass

    def on_kill(self) -> None:
        self._stop()
