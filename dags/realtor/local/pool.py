"""The launchers of this (Airflow) process: one per (interpreter, task module, working
directory), started on first use or ahead of their task when a core is idle, ended with it;
or, with ``PIPELINE_LOCAL_LAUNCHERS``, those another process serves in that folder."""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from realtor.local.environment import task_environment
from realtor.local.launcher_client import Launcher, SharedLauncher

if TYPE_CHECKING:
    from realtor.local.operator import LocalTaskOperator


#: one launcher per (interpreter, module, working directory), for as long as this process runs
_launchers: dict[tuple[str, str, str], Launcher] = {}
_launchers_lock = threading.Lock()


def launcher_for(
    python: str,
    module: str,
    cwd: str,
    env: dict[str, str],
    *,
    wait: bool = True,
    shared: Path | None = None,
) -> Launcher | SharedLauncher:
    """The launcher of ``module``: the one serving in the ``shared`` folder if there is one
    (``PIPELINE_LOCAL_LAUNCHERS``, whose owner started it with this ``python``); else this
    process's own, started (with ``env``) when there is none or it ended; ready to fork runs
    unless ``wait`` is False (then it goes on importing meanwhile)."""
    if shared is not None and (found := SharedLauncher.find(shared, module)) is not None:
        return found
    key = (python, module, cwd)
    with _launchers_lock:
        launcher = _launchers.get(key)
        if launcher is None or not launcher.alive:
            if not _launchers:
                atexit.register(close_launchers)
            launcher = _launchers[key] = Launcher(python, module, cwd, env)
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
            launcher_for(
                operator.python,
                operator.module,
                operator.cwd,
                env,
                wait=False,
                shared=operator.shared_launchers,
            )


def close_launchers() -> None:
    """Stop every launcher this process started (also done when it exits)."""
    with _launchers_lock:
        launchers = list(_launchers.values())
        _launchers.clear()
    for launcher in launchers:
        launcher.stop()  # all at once, then wait for each
    for launcher in launchers:
        launcher.close()
