"""Run one task process and measure it: wall seconds, CPU seconds and peak RSS (``wait4``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    result: dict
    seconds: float
    peak_rss_mib: int
    cpu_seconds: float = 0.0  # user + system: the work, whatever the machine's load


def run_task(task: str, env: dict[str, str], *args: str) -> Measured:
    """``python -m tasks.<task> <args>`` as its own process; exits with its stderr on failure."""
    xcom = Path(env["XCOM_RETURN_PATH"])
    xcom.unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", f"tasks.{task}", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()  # until the process closes it, i.e. exits
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"tasks.{task} {args} failed:\n{stderr.decode()[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(json.loads(xcom.read_text()), seconds, usage.ru_maxrss // 1024, cpu)
