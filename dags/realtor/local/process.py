"""A task run as a fresh interpreter (``subprocess``): its streams, exit code and peak RSS."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from typing import IO

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


class FreshProcess:
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
