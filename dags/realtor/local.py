"""The ``local`` runtime: a task's command line as a subprocess in the tasks' virtualenv.

Same contract as the pod: ``python -m tasks.<name> <arguments>`` with the Airflow process's
environment plus the task's own variables, the working directory at the repository root, and
the JSON result read from the file named by ``XCOM_RETURN_PATH`` (a temporary file here,
``/airflow/xcom/return.json`` in a pod). The subprocess's stdout and stderr go into the task
log line by line as they come. A non-zero exit fails the task with the last lines of stderr;
exit 2 (bad arguments) fails it without retries, since a retry would fail the same way.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

EXIT_BAD_ARGUMENTS = 2
STDERR_TAIL_LINES = 20
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.arguments = list(arguments)
        self.env_vars = dict(env_vars or {})
        self.python = str(python)
        self.cwd = str(cwd)
        self._process: subprocess.Popen[str] | None = None

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
                    "task must write its JSON result there (tasks.cli.run_task does)"
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

    def _run(self, env: dict[str, str]) -> tuple[int, list[str]]:
        self._process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: on_kill ends its children too
        )
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        pumps = [
            threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
            for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr))
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
        # reap the process ourselves to read its peak memory (wait4's rusage)
        _, status, usage = os.wait4(self._process.pid, 0)
        self._process.returncode = returncode = os.waitstatus_to_exitcode(status)
        self.peak_rss_mib = usage.ru_maxrss // 1024
        self.log.info("%s: exit %s, peak RSS %s MiB", self.module, returncode, self.peak_rss_mib)
        return returncode, list(tail)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def on_kill(self) -> None:
        self._stop()
