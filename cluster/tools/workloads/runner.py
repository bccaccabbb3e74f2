"""Start workloads, time them, and keep one outcome line per workload:
started / ready / smoke call passed, with seconds; or why it failed or cannot run here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from workloads import probes
from workloads.container import Prepared, Workload, prepare
from workloads.environment import Sources
from workloads.network import Network


@dataclass
class Outcome:
    name: str
    started: float | None = None
    ready: float | None = None
    smoke: float | None = None
    smoke_what: str = ""
    error: str | None = None
    skipped: str | None = None
    probe: str = ""  # which probe said ready

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.skipped:
            return f"{self.name:<58} not run here: {self.skipped}"
        parts = [
            f"started {self.started:.1f}s" if self.started is not None else "not started",
            (f"ready {self.ready:.1f}s" + (f" ({self.probe})" if self.probe else ""))
            if self.ready is not None
            else "not ready",
        ]
        if self.smoke is not None:
            parts.append(f"smoke passed {self.smoke:.1f}s ({self.smoke_what})")
        if self.error:
            parts.append("FAILED: " + self.error.strip().splitlines()[0])
        return f"{self.name:<58} " + " / ".join(parts)


class Run:
    def __init__(self, run_dir: Path, sources: Sources | None = None) -> None:
        self.dir = run_dir
        self.t0 = time.monotonic()
        self.outcomes: dict[str, Outcome] = {}
        self.details: dict[str, str] = {}  # name -> full error text
        self.processes: list[subprocess.Popen[bytes]] = []
        self.prepared: dict[str, Prepared] = {}
        self.lock = threading.Lock()
        self.net = Network()
        self.stores: dict[str, Sources] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def outcome(self, name: str) -> Outcome:
        with self.lock:
            return self.outcomes.setdefault(name, Outcome(name))

    def skip(self, workload: Workload, why: str) -> None:
        self.outcome(workload.name).skipped = why

    def fail(self, name: str, error: BaseException | str) -> None:
        text = str(error)
        self.outcome(name).error = text.strip().splitlines()[0] if text.strip() else repr(error)
        self.details[name] = text

    def log(self, workload: Workload) -> Path:
        return self.dir / "logs" / (workload.name.replace("/", "_") + ".log")

    def launch(
        self, workload: Workload, sources: Sources, *, extra_env: dict[str, str] | None = None,
        job: bool = False, budget: float = 240.0,
    ) -> Prepared | None:  # fmt: skip
        """Prepare, start and wait: for a Job until it exits 0, else for its probe."""
        outcome = self.outcome(workload.name)
        log = self.log(workload)
        try:
            prepared = prepare(workload, self.dir / "fs", sources, self.net, extra_env)
            process = probes.start(prepared, log)
            with self.lock:
                self.processes.append(process)
                self.prepared[workload.name] = prepared
            outcome.started = self.now()
            if job:
                probes.wait_exit(process, log, budget)
            else:
                kind, probe = probes.choose(workload.container)
                outcome.probe = kind
                probes.wait_ready(prepared, process, probe, log, budget)
            outcome.ready = self.now()
            return prepared
        except Exception as exc:
            self.fail(workload.name, f"{exc}\n(log: {log})")
            return None

    def smoke(self, name: str, what: str, call) -> bool:
        outcome = self.outcome(name)
        if not outcome.ok or outcome.ready is None:
            return False
        try:
            call()
        except Exception as exc:
            self.fail(name, f"smoke call ({what}) failed: {type(exc).__name__}: {exc}")
            return False
        outcome.smoke, outcome.smoke_what = self.now(), what
        return True

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
