"""The serving process's helper processes: spawned fresh, kept, at a lower CPU priority.

Two kinds of work would otherwise hold serving's interpreter lock while requests wait: preparing
a model version (:mod:`serving.preparation`) and exporting the inference log to the lake
(:mod:`serving.inference_export`). Each runs in a process of its own, started here: a fresh
interpreter (``spawn``; never a fork of the multi-threaded serving process), a daemon (it dies
with serving), talking to serving over one duplex pipe. When serving's end of the pipe closes
(serving stopped, or was killed), the helper's next read fails and it leaves by itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["cpu_seconds", "death", "lower_priority", "spawn"]


def lower_priority(nice: int) -> None:
    """This process at niceness ``nice`` (best effort: a refusal must not stop the work).

    Niceness ranks the helper among the processes of serving's own scheduling group (its
    autogroup on a VM, its cgroup in a container). Also moving it to a session and autogroup of
    its own (``setsid``, ``/proc/self/autogroup``) was measured and dropped: at load 8 on 2 cores
    the preparation worker then got so little CPU that one version took over 45 s to prepare.
    """
    with contextlib.suppress(OSError):
        os.nice(nice)


def cpu_seconds() -> float:
    """The CPU this process used so far (user + system)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def death(exitcode: int | None) -> str:
    """How a process ended, for a log line: ``killed by SIGKILL``, ``exit code 1``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def spawn(target: Callable[..., None], args: tuple[Any, ...], name: str) -> tuple[Any, Any]:
    """Start ``target(connection, *args)`` in a fresh daemon process: (process, serving's end).

    Raises whatever stops a process from starting (the caller says what that means for it).
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(target=target, args=(theirs, *args), name=name, daemon=True)
    process.start()
    theirs.close()
    return process, ours
