"""Run a pipeline step as its command line: ``python -m tasks.<step> <args>``, a process of its own.

Forked from the step's launcher, as the embedded runtime runs it (:mod:`tests.support.launchers`:
its imports paid once per test process); ``TEST_FRESH_INTERPRETERS=1``: a fresh interpreter
per run, as a pod starts. Tests of the start itself (imports, a process killed mid-run) start
:func:`command` themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import launchers

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StepRun:
    """One finished run: exit code, its streams, its XCom result (None: none written), seconds."""

    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None
    seconds: float


def command(step: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"tasks.{step}", *args]


#: a started step: ``communicate(timeout)``, then ``returncode``
StepProcess = subprocess.Popen[str] | launchers.ForkedProcess


def start_step(step: str, env: dict[str, str], *args: str) -> StepProcess:
    """Start the step with exactly ``env`` (stdout and stderr collected): forked from its
    launcher, or a fresh interpreter with ``TEST_FRESH_INTERPRETERS=1``. Both answer
    ``communicate(timeout)`` and ``returncode`` as :class:`subprocess.Popen` does (a forked run
    that times out is killed)."""
    if launchers.enabled():
        return launchers.ForkedProcess(f"tasks.{step}", list(args), env)
    return subprocess.Popen(
        command(step, *args),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_step(step: str, env: dict[str, str], *args: str, timeout: float = 600) -> StepRun:
    """Run the step with ``env`` over this process's environment; its XCom file is removed
    first, so ``result`` is this run's or None."""
    merged = {**os.environ, **env}
    xcom = Path(merged["XCOM_RETURN_PATH"]) if "XCOM_RETURN_PATH" in merged else None
    if xcom is not None:
        xcom.unlink(missing_ok=True)
    started = time.monotonic()
    process = start_step(step, merged, *args)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if isinstance(process, subprocess.Popen):  # as subprocess.run does
            process.kill()
            process.communicate()
        raise
    returncode = process.returncode
    result = json.loads(xcom.read_text()) if xcom is not None and xcom.exists() else None
    return StepRun(returncode, stdout, stderr, result, time.monotonic() - started)


def run_step_ok(step: str, env: dict[str, str], *args: str, timeout: float = 600) -> StepRun:
    """:func:`run_step`, which must exit 0 and write its result (else AssertionError)."""
    run = run_step(step, env, *args, timeout=timeout)
    assert run.returncode == 0, (
        f"tasks.{step} {args} exited {run.returncode}:\n{run.stderr[-3000:]}"
    )
    assert run.result is not None, f"tasks.{step} {args} wrote no result"
    return run
