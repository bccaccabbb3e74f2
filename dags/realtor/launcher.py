"""A fork server for one task of the local runtime: its imports paid once, each run forked.

    <tasks' python> dags/realtor/launcher.py --socket PATH tasks.<name>

Started by :class:`realtor.local.LocalTaskOperator` when ``PIPELINE_LOCAL_PRELOAD`` is on (the
default). It imports ``tasks.<name>.step`` and calls its ``STEP.preload()`` if it has one (the
heavy libraries its runs import, and the environment defaults its runs set before importing
them), then says ``ready`` on stdout and serves on the Unix socket PATH. Each connection asks
for one run: the arguments, the environment and the working directory as JSON, the run's stdout
and stderr as file descriptors (SCM_RIGHTS). The launcher forks; the child becomes the run, as
``python -m tasks.<name> <arguments>`` would be: its own session (so the operator can stop its
process group), stdin from /dev/null, the given stdout and stderr, the working directory first on
``sys.path``, the run's environment and arguments, then the module as ``__main__`` and the
interpreter's normal exit (exit code, ``atexit``, threads). The launcher answers the child's pid
at once and, when the child ends, its wait status and peak RSS (``wait4``).

It ends when its stdin reaches end of file (the process that started it is gone) or on SIGTERM,
and stops the runs still going (SIGTERM to their process groups).

The client's side is here too (:func:`start`, :class:`Readiness`, :func:`request_run`,
:func:`read_status`), so that the local runtime (``realtor.local.launcher_client``) and the
tests (``tests/support/launchers.py``) speak one protocol.

What differs from a fresh interpreter: what ``STEP.preload()`` imports was imported once, before the
run's environment was set, so a library that reads an environment variable at import time reads
the launcher's (the Airflow process's environment; the tasks read their settings at run time).
Only the standard library is imported here: this file runs with the tasks' interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import IO, Any

HEADER = struct.Struct("!I")  # the request's length, sent with the two file descriptors


# --- the client's side ---
class LauncherError(RuntimeError):
    """A launcher did not start, did not start a run, or ended during one."""


def start(
    python: str, module: str, socket_path: str, cwd: str, env: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """A launcher of ``module`` serving ``socket_path``; it imports meanwhile (:class:`Readiness`).

    Its stdin is a pipe from this process: end of file (this process closed it, or ended) stops
    it. Its own session, so that a signal to the caller's process group does not reach it.
    """
    return subprocess.Popen(
        [python, os.path.abspath(__file__), "--socket", socket_path, module],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )


class Readiness:
    """The launcher's first line, read on a thread of its own: ``ready`` once it has imported
    its task's libraries (the caller goes on meanwhile, then :meth:`wait`)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._lines: list[bytes] = []
        stdout = process.stdout
        assert stdout is not None
        self._reader = threading.Thread(
            target=lambda: self._lines.append(stdout.readline()), name="launcher-ready", daemon=True
        )
        self._reader.start()

    def wait(self, timeout: float) -> bool:
        """True once it said ``ready``; False if it ended, said something else, or is still
        importing after ``timeout`` seconds."""
        self._reader.join(timeout)
        return bool(self._lines) and self._lines[0].strip() == b"ready"


def request_run(
    socket_path: str,
    module: str,
    args: list[str],
    cwd: str,
    env: dict[str, str],
    streams: tuple[int, int],
) -> tuple[socket.socket, IO[bytes], int]:
    """Ask the launcher at ``socket_path`` for one run writing to ``streams`` (stdout, stderr
    descriptors; the caller closes its copies): the connection, its answers, the run's pid."""
    payload = json.dumps({"module": module, "args": args, "cwd": cwd, "env": env}).encode()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)
        socket.send_fds(connection, [HEADER.pack(len(payload))], list(streams))
        connection.sendall(payload)
        answers = connection.makefile("rb")
        first = json.loads(answers.readline() or b"{}")
    except (OSError, ValueError) as exc:
        connection.close()
        raise LauncherError(str(exc)) from exc
    if "pid" not in first:
        connection.close()
        raise LauncherError(first.get("error") or "no answer")
    return connection, answers, int(first["pid"])


def read_status(answers: IO[bytes]) -> tuple[int, int]:
    """The run's exit code and peak RSS (KiB), once it ended (blocks; the connection's timeout
    applies). LauncherError if the launcher ended first."""
    line = answers.readline()
    if not line:
        raise LauncherError("the launcher ended during the run")
    answer = json.loads(line)
    return os.waitstatus_to_exitcode(answer["status"]), int(answer["maxrss_kib"])


# --- the launcher's side ---


def receive_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request on ``conn``: its JSON and the stdout/stderr descriptors sent with it."""
    header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 2)
    if len(header) != HEADER.size or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request starts with its length and two file descriptors")
    (length,) = HEADER.unpack(header)
    payload = b""
    while len(payload) < length:
        chunk = conn.recv(length - len(payload))
        if not chunk:
            raise ValueError("the request ended early")
        payload += chunk
    request = json.loads(payload)
    return request, fds


def reply(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the operator went away: nothing to tell
        conn.sendall(json.dumps(message).encode() + b"\n")


def reap(running: dict[int, socket.socket]) -> None:
    """Tell the operators of the runs that ended their wait status and peak RSS (KiB)."""
    while running:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = running.pop(pid, None)
        if conn is not None:
            reply(conn, {"status": status, "maxrss_kib": usage.ru_maxrss})
            conn.close()


def serve(listener: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Fork a run per request until stdin ends; returns only in a forked child, with its request."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    running: dict[int, socket.socket] = {}
    try:
        while True:
            ready, _, _ = select.select([listener, sys.stdin, wake_read], [], [], 5.0)
            if wake_read in ready:
                os.read(wake_read, 512)
            reap(running)
            if sys.stdin in ready and not os.read(sys.stdin.fileno(), 512):
                sys.exit(0)  # the process that started this one is gone
            if listener not in ready:
                continue
            conn, _ = listener.accept()
            try:
                conn.settimeout(30)
                request, fds = receive_request(conn)
                conn.settimeout(None)
            except (OSError, ValueError) as exc:
                reply(conn, {"error": f"bad request: {exc}"})
                conn.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the run: leave the server's state behind
                signal.set_wakeup_fd(-1)
                for handled in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(handled, signal.SIG_DFL)
                for other in (listener, conn, *running.values()):
                    other.close()
                running.clear()  # the server's runs are not this child's to stop
                os.close(wake_read)
                os.close(wake_write)
                return request, fds
            for fd in fds:
                os.close(fd)
            running[pid] = conn
            reply(conn, {"pid": pid})
    finally:
        for pid in running:  # the server stops: so do its runs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)


def become(request: dict[str, Any], fds: list[int]) -> None:
    """This forked process becomes ``python -m <module> <args>`` in the request's environment."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in (devnull, *fds):
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # as ``python -m`` puts it
    sys.argv = [request["module"], *request["args"]]
    for stream in (sys.stdout, sys.stderr):  # the operator reads lines as they are written
        stream.reconfigure(line_buffering=True)


def preload(module: str) -> None:
    """Import the step's module (``<module>.step``) and what its runs import (its
    ``STEP.preload()``). Each run then executes ``<module>.__main__`` afresh, as ``python -m``
    would."""
    loaded = importlib.import_module(f"{module}.step")
    step = getattr(loaded, "STEP", None)
    if step is not None:
        step.preload()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to serve on")
    parser.add_argument("module", help="the task's module, e.g. tasks.validate")
    args = parser.parse_args()
    sys.path[0] = os.getcwd()  # the task's package, as ``python -m`` finds it (not this folder)
    preload(args.module)
    # what the imports created lives as long as the launcher and every run: out of the
    # collector's sight, in the launcher and in the runs it forks (their collections and their
    # exits do not walk it again, and do not touch the pages they share with the launcher)
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(8)
    print("ready", flush=True)
    request, fds = serve(listener)
    become(request, fds)
    import runpy

    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
