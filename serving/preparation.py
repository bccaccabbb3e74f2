"""Prepare a version away from the request path: a kept worker process loads it, serving maps it.

:meth:`Preparer.prepare` is the one way serving gets a ready :class:`~serving.state.LoadedModel`
of any version (the production alias's, or a shadow challenger's). It hands the version to **one
kept worker process** (:mod:`serving.processes`): spawned when the first version is prepared,
at niceness ``SERVING_PREPARE_NICE``, and kept for every later version. The worker does
everything slow (:func:`serving.loader.load_version`: registry metadata, download, unpickle,
compile the fast path, parity on the warm-up rows, the explainer), writes the result in its shared-memory form
(:mod:`serving.prepared`), drops it, and waits for the next version. The serving process maps
that file and unpickles its small in-band part (milliseconds: ``preparation.handover_ms`` in
``/model``, ``realtor_model_handover_seconds``); it never holds the interpreter lock for the
load itself.

Why one kept worker rather than a process per version: a new process pays, for every version,
its imports' lazy remainder, a new MLflow client and the first-call costs of every library
(measured on the full-scale model, registry over HTTP: 1.3-2.6 s of CPU per version in a process
forked per version, 0.55 s in the kept one, whose RSS stayed at 386 MiB over twelve versions).
That CPU is what a swap takes from the requests on a small machine (``bench/README.md``).
``preparation.worker_cpu_s`` in ``/model`` and ``realtor_model_preparation_cpu_seconds`` say what
each version cost the worker.

What the worker hands over is what the request path uses: the compiled fast path and the
explainer, built from the same fitted arrays, so answers are the same bytes as an in-process
load. The registered model itself is dropped in the worker when the fast path serves (nothing on
the request path calls it); when the fast path is off for a version, it is handed over too,
since it is then what answers.

Failures, each loud (log line, metric, ``/model`` or ``/ready``):

- the version itself fails (registry error, broken artifacts): :class:`PreparationError` with the
  worker's message, exactly as an in-process load would fail; the previous version keeps serving
  and the worker stays for the next version;
- the worker dies (killed, out of memory, a crash in native code) or exceeds
  ``SERVING_PREPARE_TIMEOUT_SECONDS``: :class:`PreparationError`, the previous version keeps
  serving, ``realtor_model_preparation_worker_failures_total{reason}``; the next version gets a
  new worker (so does one that finds the kept worker dead while it waited);
- preparation *in a worker* is impossible (no process can start, the prepared form cannot be
  written to ``SERVING_PREPARE_DIR`` or mapped back, or ``SERVING_PREPARE_IN_WORKER=false``): the
  version is prepared in the serving process as before, with an error log line
  ``model.prepared_in_serving_process``, ``realtor_model_preparation_fallbacks_total`` and
  ``preparation: {where: serving_process, reason}`` in ``/model``.

The worker's file is removed by the serving process whatever happens (it chose the name). The
worker is killed by :meth:`Preparer.close` (the service's shutdown); it also ends by itself when
the serving process is gone (its end of the pipe closes), and, being a daemon process, when the
serving process exits.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from serving.errors import describe
from serving.loader import configure_mlflow, load_version
from serving.metrics import ServingMetrics
from serving.prepared import map_prepared, new_path, shared_dir, write_prepared
from serving.processes import cpu_seconds, death, lower_priority, spawn
from serving.settings import ServingSettings
from serving.state import LoadedModel, PreparationStatus
from tasks.core import registry as model_registry
from tasks.core.logs import configure_logging, get_logger

log = get_logger("serving.preparation")

__all__ = ["PreparationError", "Preparer"]


class PreparationError(RuntimeError):
    """The version could not be prepared; whatever was served before keeps serving."""


class _NoWorkerError(Exception):
    """Preparing in a worker is impossible here (not the version's fault): fall back."""


def _serve(connection: Any, settings: ServingSettings) -> None:
    """The kept worker: prepare each version serving asks for, until serving's end closes.

    Each request is ``(name, version, alias, path)``; each answer ``("ready", manifest,
    cpu_seconds)`` or ``("failed", stage, detail)``. Nothing of a version outlives its answer.
    """
    parent = os.getppid()
    lower_priority(settings.prepare_nice)
    configure_logging(settings.log_format, settings.log_level)
    configure_mlflow(settings)
    client: Any = None
    while True:
        try:
            name, version, alias, path = connection.recv()
        except (EOFError, OSError):  # serving closed its end, or is gone
            break
        if client is None:
            client = model_registry.client(settings.mlflow_tracking_uri)
        answer = _prepare_one(client, parent, name, version, alias, Path(path))
        connection.send(answer)
        del answer
        gc.collect()  # the version's objects are gone before the next one is loaded
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(0)  # skip tearing down the interpreter (its hundreds of MB of objects)


def _prepare_one(
    client: Any, parent: int, name: str, version: str, alias: str, path: Path
) -> tuple[Any, ...]:
    """Load, check and write one version in its shared form: the answer to send serving."""
    cpu = cpu_seconds()
    try:
        loaded = load_version(client, name, version, alias)
    except Exception as exc:
        return ("failed", "load", describe(exc))
    if os.getppid() != parent:  # orphaned (serving died): write nothing nobody would remove
        os._exit(1)
    try:
        handed = loaded if loaded.fast is None else replace(loaded, native=None)
        del loaded
        manifest = write_prepared(handed, path)
    except Exception as exc:
        return ("failed", "share", describe(exc))
    return ("ready", manifest, cpu_seconds() - cpu)


class DutyCycle:
    """Lets a worker run ``share`` of each ``period`` seconds: stopped (SIGSTOP) for the rest.

    Niceness only ranks the worker among runnable processes: on an idle second core it still
    runs flat out beside serving, taking memory bandwidth and cache from the requests. Stopping
    it part of the time takes that much less; the version takes ``1/share`` times as long to
    prepare. ``share`` 1: never stopped (the default). A worker is always continued before it
    is waited for, killed or left (:meth:`release`).
    """

    def __init__(self, pid: int | None, share: float, period: float = 0.1) -> None:
        self.pid = pid
        self.share = share
        self.run_seconds = period * share if share < 1 else 0.1
        self.stop_seconds = period * (1 - share) if share < 1 else 0.0

    def pause(self) -> None:
        """Stop the worker for its off part of the period, then continue it."""
        if self.stop_seconds <= 0 or self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        try:
            time.sleep(self.stop_seconds)
        finally:
            self.release()

    def release(self) -> None:
        if self.stop_seconds > 0 and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)


def _map_frozen(path: Path, manifest: Any) -> LoadedModel:
    """:func:`map_prepared`, its objects frozen (``gc.freeze``) before any collection runs.

    Unpickling makes tens of thousands of objects; were they left in the collected generations,
    the first allocation after it (on any thread: a request's) would set off a full collection
    over them and every other young object, holding the interpreter lock: 130-240 ms measured.
    They hold no reference cycle (``tests/serving/test_preparation.py``), so the version is freed
    by reference counting alone when it is replaced, frozen or not.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        loaded: LoadedModel = map_prepared(path, manifest)
        gc.freeze()
        return loaded
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Worker:
    """The kept worker process and serving's end of its pipe."""

    process: Any
    connection: Any

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def stop(self) -> None:
        """Kill it (whatever it is doing) and close serving's end; reaped on a thread."""
        with contextlib.suppress(OSError, ValueError):
            self.connection.close()
        with contextlib.suppress(ProcessLookupError, AttributeError, ValueError):
            self.process.kill()
        process = self.process
        threading.Thread(target=process.join, args=(10,), name="reap-prepare", daemon=True).start()


class Preparer:
    """Prepares versions in one kept worker process (one at a time), else in the serving process."""

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()  # the watcher's poll and a challenger's load
        self._worker: _Worker | None = None
        self._busy = False
        self._closed = False
        self._client: Any = None
        if "SERVING_PREPARE_START_METHOD" in os.environ:  # a setting of before the kept worker
            log.warning(
                "settings.ignored",
                name="SERVING_PREPARE_START_METHOD",
                reason="no longer used: one worker is spawned for the first version and kept",
            )

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while it prepares a version (None between versions)."""
        with self._lock:
            return self._worker.pid if self._worker is not None and self._busy else None

    def prepare(self, name: str, version: str, alias: str) -> LoadedModel:
        """``models:/<name>/<version>`` ready to answer, with ``preparation`` saying where.

        One preparation at a time: a second caller waits for the first.
        """
        with self._one_at_a_time:
            return self._prepare(name, version, alias)

    def _prepare(self, name: str, version: str, alias: str) -> LoadedModel:
        if not self.settings.prepare_in_worker:
            reason = "SERVING_PREPARE_IN_WORKER=false: prepared in the serving process"
            return self._in_serving_process(name, version, alias, reason)
        try:
            loaded = self._in_worker(name, version, alias)
        except _NoWorkerError as exc:
            return self._in_serving_process(name, version, alias, str(exc))
        self.metrics.preparations.labels("worker").inc()
        self.metrics.handover_seconds.observe(loaded.preparation.handover_seconds or 0.0)
        self.metrics.preparation_cpu_seconds.observe(loaded.preparation.worker_cpu_seconds or 0.0)
        done = loaded.preparation.as_dict()
        log.info("model.prepared_in_worker", model_name=name, version=version, alias=alias, **done)
        return loaded

    def close(self) -> None:
        """Stop preparing: kill the worker, busy or not (a version's file is removed by
        :meth:`prepare`)."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    # --- the two ways ---
    def _in_serving_process(self, name: str, version: str, alias: str, reason: str) -> LoadedModel:
        log.error(
            "model.prepared_in_serving_process",
            model_name=name,
            version=version,
            reason=reason,
            consequence="loaded on a thread of the serving process: requests wait while it loads",
        )
        self.metrics.preparation_fallbacks.inc()
        if self._client is None:
            configure_mlflow(self.settings)
            self._client = model_registry.client(self.settings.mlflow_tracking_uri)
        loaded = load_version(self._client, name, version, alias)
        self.metrics.preparations.labels("serving_process").inc()
        return replace(loaded, preparation=PreparationStatus("serving_process", reason))

    def _kept_worker(self) -> _Worker:
        """The kept worker, started if there is none (or the last one died while idle)."""
        worker = self._worker
        if worker is not None and worker.process.is_alive():
            return worker
        if worker is not None:
            log.warning(
                "model.preparation_worker_gone",
                pid=worker.pid,
                how=death(worker.process.exitcode),
                consequence="a new worker is started for this version",
            )
            self.metrics.preparation_worker_failures.labels("died").inc()
            worker.stop()
        try:
            process, ours = spawn(_serve, (self.settings,), "prepare-worker")
        except Exception as exc:
            raise _NoWorkerError(f"no preparation worker could start: {describe(exc)}") from exc
        self._worker = _Worker(process, ours)
        log.info("model.preparation_worker_started", pid=process.pid)
        return self._worker

    def _in_worker(self, name: str, version: str, alias: str) -> LoadedModel:
        started = time.perf_counter()
        path = new_path(shared_dir(self.settings.prepare_dir), version)
        with self._lock:
            if self._closed:
                raise PreparationError("the service is stopping: no new version is prepared")
            worker = self._kept_worker()
            self._busy = True
        try:
            message = self._ask(worker, (name, version, alias, str(path)), version)
            if message[0] == "failed":
                _, stage, detail = message
                if stage == "share":
                    raise _NoWorkerError(
                        f"the worker prepared v{version} but could not hand it over through "
                        f"{path.parent}: {detail}"
                    )
                raise PreparationError(detail)
            manifest, worker_cpu = message[1], message[2]
            mapped_at = time.perf_counter()
            try:
                loaded: LoadedModel = _map_frozen(path, manifest)
            except Exception as exc:
                raise _NoWorkerError(
                    f"the worker's v{version} could not be mapped: {describe(exc)}"
                ) from exc
            handover = time.perf_counter() - mapped_at
        finally:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()  # the worker died before handing it over, or never wrote it
            with self._lock:
                self._busy = False
        status = PreparationStatus(
            "worker",
            None,
            handover_seconds=handover,
            shared_bytes=manifest.shared_bytes,
            inband_bytes=manifest.inband[1],
            worker_cpu_seconds=worker_cpu,
            worker_pid=worker.pid,
        )
        return replace(loaded, preparation=status, load_seconds=time.perf_counter() - started)

    def _ask(self, worker: _Worker, request: tuple[str, ...], version: str) -> tuple[Any, ...]:
        """The worker's answer to ``request``; PreparationError if it dies or outlives the
        timeout (it is then killed and forgotten: the next version gets a new one).

        With ``SERVING_PREPARE_DUTY_CYCLE`` below 1 the worker runs that share of each 100 ms
        period and is stopped for the rest (:class:`DutyCycle`).
        """
        deadline = time.monotonic() + self.settings.prepare_timeout_seconds
        duty = DutyCycle(worker.pid, self.settings.prepare_duty_cycle)
        try:
            with contextlib.suppress(OSError):  # it died: found below, as any death
                worker.connection.send(request)
            return self._poll(worker, version, deadline, duty)
        except PreparationError:
            with self._lock:
                if self._worker is worker:
                    self._worker = None
            worker.stop()
            raise
        finally:
            duty.release()

    def _poll(
        self, worker: _Worker, version: str, deadline: float, duty: DutyCycle
    ) -> tuple[Any, ...]:
        process, receiver = worker.process, worker.connection
        while True:
            try:
                if receiver.poll(duty.run_seconds):
                    return receiver.recv()
                duty.pause()
            except (EOFError, OSError):  # its end closed without a message: it died (below)
                time.sleep(0.05)
            if not process.is_alive():
                self.metrics.preparation_worker_failures.labels("died").inc()
                raise PreparationError(
                    f"the preparation worker of v{version} died ({death(process.exitcode)}) "
                    "before handing the version over; the served version is kept and this one "
                    "is tried again later"
                )
            if time.monotonic() > deadline:
                self.metrics.preparation_worker_failures.labels("timeout").inc()
                raise PreparationError(
                    f"the preparation worker of v{version} was still busy after "
                    f"{self.settings.prepare_timeout_seconds:g}s (SERVING_PREPARE_TIMEOUT_SECONDS)"
                    ": killed; the served version is kept"
                )
