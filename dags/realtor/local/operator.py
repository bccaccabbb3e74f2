"""The Airflow operator of the local runtime: a task's command line as a process, its log
lines streamed into the task log, its JSON result as the XCom."""

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

from realtor.local.environment import task_environment
from realtor.local.launcher_client import ForkedRun
from realtor.local.pool import launcher_for, start_launchers
from realtor.local.process import FreshProcess

EXIT_BAD_ARGUMENTS = 2
STDERR_TAIL_LINES = 20


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
        preload: bool = False,
        shared_launchers: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.arguments = list(arguments)
        self.env_vars = dict(env_vars or {})
        self.python = str(python)
        self.cwd = str(cwd)
        self.preload = preload
        self.shared_launchers = Path(shared_launchers) if shared_launchers else None
        self._process: FreshProcess | ForkedRun | None = None

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

    def _start(self, env: dict[str, str]) -> FreshProcess | ForkedRun:
        if not self.preload:
            return FreshProcess(self.command, self.cwd, env)
        if self.has_dag():  # the other tasks of its DAG import while this one runs
            start_launchers([t for t in self.dag.tasks if isinstance(t, LocalTaskOperator)])
        launcher = launcher_for(
            self.python, self.module, self.cwd, env, shared=self.shared_launchers
        )
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
