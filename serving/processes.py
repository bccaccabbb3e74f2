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
import gc
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, NoReturn

__all__ = [
    "HelperGoneError",
    "KeptProcess",
    "cpu_seconds",
    "death",
    "lower_priority",
    "serve_requests",
    "spawn",
]


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


def serve_requests(connection: Any, handle: Callable[[Any], Any]) -> NoReturn:
    """The helper's side: answer each request with ``handle(request)`` until serving's end
    closes, then exit at once (no interpreter teardown: hundreds of MB of objects). Nothing of a
    request outlives its answer (a collection after each)."""
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):  # serving closed its end, or is gone
            break
        answer = handle(request)
        try:
            connection.send(answer)
        except OSError:  # serving is gone
            break
        del answer, request
        gc.collect()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(0)


class HelperGoneError(RuntimeError):
    """The helper died, or did not answer in time; it was stopped and forgotten."""

    def __init__(self, reason: Literal["died", "timeout"], how: str) -> None:
        super().__init__(how)
        self.reason = reason
        self.how = how


class KeptProcess:
    """One helper process, started on first use (:meth:`ensure`) and kept; asked one request at
    a time (:meth:`ask`; the caller serialises). A helper that died or timed out is stopped and
    forgotten, so the next :meth:`ensure` starts a new one."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        self._target, self._args, self.name = target, args, name
        self.process: Any = None
        self.connection: Any = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.pid)

    def ensure(self) -> str | None:
        """Start the helper if none runs. How the last one ended if it was found dead (the
        caller says so), else None. Raises whatever stops a process from starting."""
        if self.process is not None and self.process.is_alive():
            return None
        gone = None if self.process is None else death(self.process.exitcode)
        self.stop(kill=True)
        self.process, self.connection = spawn(self._target, self._args, self.name)
        return gone

    def ask(
        self,
        request: Any,
        timeout: float,
        *,
        step: float = 0.5,
        between: Callable[[], None] | None = None,
    ) -> Any:
        """Send ``request`` and wait for the answer, checking every ``step`` seconds that the
        helper lives (``between`` runs after each step without an answer). HelperGoneError if it
        dies or ``timeout`` passes: it is then killed and forgotten."""
        process, connection = self.process, self.connection
        deadline = time.monotonic() + timeout
        try:
            with contextlib.suppress(OSError):  # it died: found below, as any death
                connection.send(request)
            while True:
                try:
                    if connection.poll(step):
                        return connection.recv()
                    if between is not None:
                        between()
                except (EOFError, OSError):  # its end closed without an answer: it died
                    time.sleep(0.05)
                if not process.is_alive():
                    raise HelperGoneError("died", death(process.exitcode))
                if time.monotonic() > deadline:
                    raise HelperGoneError("timeout", f"still busy after {timeout:g} s: killed")
        except HelperGoneError:
            self.stop(kill=True)
            raise

    def stop(self, *, kill: bool) -> None:
        """Close serving's end (an idle helper then leaves by itself); with ``kill``, kill it
        whatever it is doing. Waits for its end (killed after 5 s)."""
        process, connection = self.process, self.connection
        self.process = self.connection = None
        if process is None:
            return
        with contextlib.suppress(OSError):
            connection.close()
        if kill:
            with contextlib.suppress(ProcessLookupError, ValueError, AttributeError):
                process.kill()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
