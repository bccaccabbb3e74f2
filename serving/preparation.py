"""Prepare a version away from the request path: a worker process loads it, serving maps it.

:meth:`Preparer.prepare` is the one way serving gets a ready :class:`~serving.state.LoadedModel`
of any version (the production alias's, or a shadow challenger's). It starts a worker process
(``SERVING_PREPARE_START_METHOD``: ``forkserver`` by default, forked from one single-threaded
server process that was spawned once and imported MLflow, scikit-learn and shap once; or
``spawn``, a fresh interpreter per version, which pays those imports each time: about 3x the
CPU per version, measured) at the lowest priority (:func:`lower_priority`) that does everything
slow (:func:`serving.loader.load_version`: registry metadata, download, unpickle, compile the fast
path, parity on the warm-up rows, the explainer) and writes the result in its shared-memory form
(:mod:`serving.prepared`). The serving process then maps that file and unpickles its small
in-band part (milliseconds: ``preparation.handover_ms`` in ``/model``,
``realtor_model_handover_seconds``); it never holds the interpreter lock for the load itself.

What the worker hands over is what the request path uses: the compiled fast path and the
explainer, built from the same fitted arrays, so answers are the same bytes as an in-process
load. The registered model itself stays in the worker when the fast path serves (nothing on the
request path calls it); when the fast path is off for a version, it is handed over too, since
it is then what answers.

Failures, each loud (log line, metric, ``/model`` or ``/ready``):

- the version itself fails (registry error, broken artifacts): :class:`PreparationError` with the
  worker's message, exactly as an in-process load would fail; the previous version keeps serving;
- the worker dies (killed, out of memory, a crash in native code) or exceeds
  ``SERVING_PREPARE_TIMEOUT_SECONDS``: :class:`PreparationError`, the previous version keeps
  serving, ``realtor_model_preparation_worker_failures_total{reason}``;
- preparation *in a worker* is impossible (no process can start, the prepared form cannot be
  written to ``SERVING_PREPARE_DIR`` or mapped back, or ``SERVING_PREPARE_IN_WORKER=false``): the
  version is prepared in the serving process as before, with an error log line
  ``model.prepared_in_serving_process``, ``realtor_model_preparation_fallbacks_total`` and
  ``preparation: {where: serving_process, reason}`` in ``/model``.

The worker's file is removed by the serving process whatever happens (it chose the name); a
running worker is killed by :meth:`Preparer.close` (the service's shutdown) and, being a daemon
process, when the serving process exits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from serving.errors import describe
from serving.loader import configure_mlflow, load_version
from serving.metrics import ServingMetrics
from serving.prepared import map_prepared, new_path, shared_dir, write_prepared
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


def lower_priority(nice: int) -> None:
    """This process at niceness ``nice`` (best effort: a refusal must not stop the load).

    Niceness ranks the worker among the processes of serving's own scheduling group (its
    autogroup on a VM, its cgroup in a container). Also moving it to a session and autogroup of
    its own (``setsid``, ``/proc/self/autogroup``) was measured and dropped: at load 8 on 2 cores
    the worker then got so little CPU that one version took over 45 s to prepare.
    """
    with contextlib.suppress(OSError):
        os.nice(nice)


def _work(
    sender: Any, settings: ServingSettings, name: str, version: str, alias: str, path: str
) -> None:
    """The worker process: prepare the version, write its shared form, say where it is."""
    parent = os.getppid()
    lower_priority(settings.prepare_nice)
    configure_logging(settings.log_format, settings.log_level)
    configure_mlflow(settings)
    try:
        client = model_registry.client(settings.mlflow_tracking_uri)
        loaded = load_version(client, name, version, alias)
    except Exception as exc:
        sender.send(("failed", "load", describe(exc)))
        return
    if os.getppid() != parent:  # orphaned (serving died): write nothing nobody would remove
        os._exit(1)
    try:
        handed = loaded if loaded.fast is None else replace(loaded, native=None)
        manifest = write_prepared(handed, Path(path))
    except Exception as exc:
        sender.send(("failed", "share", describe(exc)))
        return
    sender.send(("ready", manifest))
    sender.close()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(
        0
    )  # skip tearing down the interpreter (its hundreds of MB of objects): nothing is left


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


#: What a forkserver imports once, so that each worker forked from it starts warm.
FORKSERVER_PRELOAD = ["serving.preparation", "mlflow.sklearn", "sklearn.ensemble", "shap"]


def _context(method: str) -> Any:
    """The multiprocessing context: ``spawn`` (a fresh interpreter per version, which imports
    MLflow, scikit-learn and shap each time) or ``forkserver`` (a fresh single-threaded server
    process, started once, imports them once; each version's worker is forked from it, never
    from the multi-threaded serving process)."""
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


def _reap(process: Any, grace_seconds: float = 30.0) -> None:
    """Wait for a worker's exit on a thread of its own, killing it after ``grace_seconds``.

    A worker that sent its answer still tears its interpreter down (hundreds of MB of objects,
    at low priority: seconds under load); the swap does not wait for that.
    """

    def reap() -> None:
        process.join(grace_seconds)
        if process.is_alive():
            process.kill()
            process.join(5)

    threading.Thread(target=reap, name=f"reap-{process.name}", daemon=True).start()


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


class Preparer:
    """Prepares versions in worker processes (one at a time), else in the serving process."""

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()  # the watcher's poll and a challenger's load
        self._process: Any = None
        self._closed = False
        self._client: Any = None

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (None when no preparation is running)."""
        with self._lock:
            return self._process.pid if self._process is not None else None

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
        done = loaded.preparation.as_dict()
        log.info("model.prepared_in_worker", model_name=name, version=version, alias=alias, **done)
        return loaded

    def close(self) -> None:
        """Stop preparing: kill a running worker (its file is removed by :meth:`prepare`)."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is not None and process.is_alive():
            process.kill()

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

    def _in_worker(self, name: str, version: str, alias: str) -> LoadedModel:
        started = time.perf_counter()
        path = new_path(shared_dir(self.settings.prepare_dir), version)
        context = _context(self.settings.prepare_start_method)
        with self._lock:
            if self._closed:
                raise PreparationError("the service is stopping: no new version is prepared")
            try:
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_work,
                    args=(sender, self.settings, name, version, alias, str(path)),
                    name=f"prepare-{name}-v{version}",
                    daemon=True,
                )
                process.start()
            except Exception as exc:
                raise _NoWorkerError(f"no preparation worker could start: {describe(exc)}") from exc
            self._process = process
        sender.close()
        try:
            message = self._wait(process, receiver, version)
            if message[0] == "failed":
                _, stage, detail = message
                if stage == "share":
                    raise _NoWorkerError(
                        f"the worker prepared v{version} but could not hand it over through "
                        f"{path.parent}: {detail}"
                    )
                raise PreparationError(detail)
            manifest = message[1]
            mapped_at = time.perf_counter()
            try:
                loaded: LoadedModel = map_prepared(path, manifest)
            except Exception as exc:
                raise _NoWorkerError(
                    f"the worker's v{version} could not be mapped: {describe(exc)}"
                ) from exc
            handover = time.perf_counter() - mapped_at
        finally:
            receiver.close()
            _reap(process)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()  # the worker died before handing it over, or never wrote it
            with self._lock:
                self._process = None
        status = PreparationStatus(
            "worker",
            None,
            handover_seconds=handover,
            shared_bytes=manifest.shared_bytes,
            inband_bytes=manifest.inband[1],
        )
        return replace(loaded, preparation=status, load_seconds=time.perf_counter() - started)

    def _wait(self, process: Any, receiver: Any, version: str) -> tuple[Any, ...]:
        """The worker's message; PreparationError if it dies or outlives the timeout.

        With ``SERVING_PREPARE_DUTY_CYCLE`` below 1 the worker runs that share of each 100 ms
        period and is stopped for the rest (:class:`DutyCycle`).
        """
        deadline = time.monotonic() + self.settings.prepare_timeout_seconds
        duty = DutyCycle(process.pid, self.settings.prepare_duty_cycle)
        try:
            return self._poll(process, receiver, version, deadline, duty)
        finally:
            duty.release()

    def _poll(
        self, process: Any, receiver: Any, version: str, deadline: float, duty: DutyCycle
    ) -> tuple[Any, ...]:
        while True:
            try:
                if receiver.poll(duty.run_seconds):
                    return receiver.recv()
                duty.pause()
            except (EOFError, OSError):  # its end closed without a message: it died (below)
                time.sleep(0.05)
            if not process.is_alive():
                try:
                    if receiver.poll(0):
                        return receiver.recv()
                except (EOFError, OSError):
                    pass
                self.metrics.preparation_worker_failures.labels("died").inc()
                raise PreparationError(
                    f"the preparation worker of v{version} died ({_death(process.exitcode)}) "
                    "before handing the version over; the served version is kept and this one "
                    "is tried again later"
                )
            if time.monotonic() > deadline:
                process.kill()
                self.metrics.preparation_worker_failures.labels("timeout").inc()
                raise PreparationError(
                    f"the preparation worker of v{version} was still busy after "
                    f"{self.settings.prepare_timeout_seconds:g}s (SERVING_PREPARE_TIMEOUT_SECONDS)"
                    ": killed; the served version is kept"
                )
