"""The model's lifecycle: poll the registry, prepare a new version off the request path, swap.

One daemon thread polls ``models:/<name>@<alias>`` every ``poll_interval_seconds``. When the
alias moved, it has the new version prepared (:class:`serving.preparation.Preparer`: download,
fast path, parity, explainer, warm-up, in a worker process; serving only maps the result) while
the old one keeps serving, then swaps it in with one reference assignment of an immutable
:class:`~serving.state.LoadedModel`. A request never waits for a load and never sees half a
model. With ``SERVING_CHALLENGER_ALIAS`` set, the same poll prepares the version carrying that
alias the same way and holds it as :attr:`ModelWatcher.challenger` (for shadow scoring). When
the registry is unreachable the last good model keeps serving and
:attr:`ModelWatcher.registry` says so. ``POST /admin/reload`` runs the same
:meth:`ModelWatcher.poll` (with ``force``), serialised with the thread's polls.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from typing import Any

from serving.decisions import decide_load
from serving.errors import describe
from serving.loader import configure_mlflow
from serving.metrics import ServingMetrics
from serving.preparation import Preparer
from serving.settings import ServingSettings
from serving.state import LoadedModel, LoadFailure, RegistryStatus
from tasks.core import registry as model_registry
from tasks.core.logs import get_logger

log = get_logger("serving.watcher")


def settle_heap() -> None:
    """Hide every object alive now from the cyclic garbage collector (``gc.freeze``).

    A loaded model and its libraries are hundreds of thousands of long-lived objects, and every
    full collection scans them all: on this project's benchmark, a pause of about 300 ms every
    few 1,000-row requests (p99 319 ms), 15 ms once they are frozen (p99 62 ms). Unfreezing
    first lets the collection here free the replaced model's cycles. Called after each swap, on
    the watcher's thread: one full collection per new model.

    A model prepared in a worker needs none of this: it arrives by unpickling, holds no
    reference cycle, and the preparer freezes it as it maps it (``serving.preparation``), so the
    version it replaces is freed by reference counting alone. Only the first model and models
    loaded in the serving process (whose load leaves cyclic garbage) get it.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelWatcher:
    """Holds the served model (``current``) and keeps it in step with the registry's alias."""

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.current: LoadedModel | None = None
        #: the version carrying ``SERVING_CHALLENGER_ALIAS``, prepared and held (shadow scoring)
        self.challenger: LoadedModel | None = None
        self.challenger_failure: LoadFailure | None = None
        self.preparer = Preparer(settings, metrics)
        self.registry = RegistryStatus()
        self.loading: str | None = None
        self.last_failure: LoadFailure | None = None
        self._client: Any = None
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the thread ---
    def start(self) -> None:
        """Start polling in the background (the first poll runs at once)."""
        configure_mlflow(self.settings)
        self._client = model_registry.client(self.settings.mlflow_tracking_uri)
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.preparer.close()  # a worker still preparing is killed; its file removed
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # never let the thread die: the next poll tries again
                log.exception("watcher.poll_crashed", error=describe(exc))
            self._stop.wait(self.settings.poll_interval_seconds)

    # --- one poll ---
    def poll(self, force: bool = False) -> dict[str, Any]:
        """Ask the registry which version carries the alias; load and swap if it moved.

        Returns what happened: ``loaded``, ``keep``, ``wait``, ``load_failed`` or
        ``registry_unreachable``, with the versions and the reason.
        """
        with self._poll_lock:
            outcome = self._poll(force)
            if self.settings.challenger_alias and outcome["outcome"] != "registry_unreachable":
                outcome["challenger"] = self._poll_challenger(self.settings.challenger_alias)
            return outcome

    def _poll(self, force: bool) -> dict[str, Any]:
        settings = self.settings
        name, alias = settings.model_name, settings.model_alias
        now = dt.datetime.now(dt.UTC)
        served = self.current.version if self.current is not None else None
        try:
            found = model_registry.champion(self._client, name, alias)
        except Exception as exc:
            error = describe(exc)
            if self.registry.reachable is not False:
                log.warning(
                    "registry.unreachable",
                    uri=settings.mlflow_tracking_uri,
                    error=error,
                    serving_version=served,
                )
            self.registry = self.registry.failed(now, error)
            self.metrics.registry_up.set(0)
            self.metrics.registry_poll_failures.inc()
            return {"outcome": "registry_unreachable", "served": served, "reason": error}
        target = found.version if found is not None else None
        if self.registry.reachable is False:
            log.info("registry.recovered", failed_polls=self.registry.consecutive_failures)
        self.registry = self.registry.succeeded(now, target)
        self.metrics.registry_up.set(1)
        decision = decide_load(
            served,
            target,
            alias,
            last_failure=self.last_failure,
            now=now,
            retry_after_seconds=settings.load_retry_seconds,
            force=force,
        )
        if decision.action != "load" or decision.version is None:
            return {"outcome": decision.action, "served": served, "reason": decision.reason}
        return self._load(decision.version, served, decision.reason)

    def swap(self, loaded: LoadedModel, seconds: float | None = None) -> None:
        """Serve ``loaded`` from now on: one reference assignment, then metrics and log."""
        previous = self.current
        self.current = loaded  # the swap: requests read this reference once each
        self.metrics.reloads.inc()
        if seconds is not None:
            self.metrics.load_seconds.observe(seconds)
        self.metrics.set_model(
            loaded.name,
            loaded.version,
            loaded.alias,
            loaded.metadata.run_id,
            loaded.fast_path.enabled,
        )
        self.metrics.prepared_in_worker.set(1 if loaded.preparation.where == "worker" else 0)
        log.info(
            "model.swapped",
            model_name=loaded.name,
            version=loaded.version,
            previous=previous.version if previous else None,
            seconds=round(seconds, 3) if seconds is not None else None,
            fast_path=loaded.fast_path.enabled,
            fast_path_reason=loaded.fast_path.reason,
            prepared=loaded.preparation.where,
        )
        first = previous is None
        del previous
        if first or loaded.preparation.where != "worker":
            settle_heap()

    def _load(self, version: str, served: str | None, reason: str) -> dict[str, Any]:
        name, alias = self.settings.model_name, self.settings.model_alias
        log.info("model.loading", model_name=name, version=version, served=served, reason=reason)
        self.loading = version
        started = time.perf_counter()
        try:
            loaded = self.preparer.prepare(name, version, alias)
        except Exception as exc:
            self.loading = None
            error = describe(exc)
            self.last_failure = LoadFailure(version, dt.datetime.now(dt.UTC), error)
            self.metrics.reload_failures.inc()
            log.error(
                "model.load_failed", model_name=name, version=version, served=served, error=error
            )
            return {"outcome": "load_failed", "served": served, "version": version, "reason": error}
        seconds = time.perf_counter() - started
        self.swap(loaded, seconds)
        self.loading = None
        if self.last_failure is not None and self.last_failure.version == version:
            self.last_failure = None
        return {
            "outcome": "loaded",
            "served": loaded.version,
            "previous": served,
            "reason": reason,
            "seconds": round(seconds, 3),
        }

    # --- a shadow challenger (issue 19 scores live requests with it) ---
    def load_challenger(self, version: str, alias: str | None = None) -> LoadedModel:
        """Prepare ``version`` off the request path and hold it as :attr:`challenger`."""
        name = self.settings.model_name
        loaded = self.preparer.prepare(name, version, alias or self.settings.challenger_alias or "")
        self.challenger = loaded
        if loaded.preparation.where != "worker":
            settle_heap()  # a worker's version was frozen as it was mapped
        where = loaded.preparation.where
        log.info("model.challenger_loaded", model_name=name, version=version, prepared=where)
        return loaded

    def _poll_challenger(self, alias: str) -> dict[str, Any]:
        name = self.settings.model_name
        held = self.challenger.version if self.challenger is not None else None
        try:
            found = model_registry.champion(self._client, name, alias)
        except Exception as exc:
            return {"outcome": "registry_unreachable", "held": held, "reason": describe(exc)}
        target = found.version if found is not None else None
        if target is None:
            self.challenger = None
            return {"outcome": "none", "held": None}
        failure = self.challenger_failure
        now = dt.datetime.now(dt.UTC)
        retry = dt.timedelta(seconds=self.settings.load_retry_seconds)
        if target == held or (failure and failure.version == target and now < failure.at + retry):
            return {"outcome": "keep", "held": held}
        try:
            self.load_challenger(target, alias)
        except Exception as exc:
            error = describe(exc)
            self.challenger_failure = LoadFailure(target, now, error)
            self.metrics.reload_failures.inc()
            log.error("model.challenger_load_failed", model_name=name, version=target, error=error)
            return {"outcome": "load_failed", "held": held, "version": target, "reason": error}
        self.challenger_failure = None
        return {"outcome": "loaded", "held": target, "previous": held}
