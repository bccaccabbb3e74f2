"""The service's state as immutable values: the loaded model, the registry's health.

A request reads ``LoadedModel`` through one reference (``ModelHolder.current``) and uses that
object to the end, so a swap (one assignment) can never mix two versions in one answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class FastPathStatus:
    """Whether the compiled fast path serves this version, and if not, why."""

    enabled: bool
    reason: str | None = None
    explain_enabled: bool = True
    explain_reason: str | None = None


@dataclass(frozen=True)
class PreparationStatus:
    """Where a version was loaded, compiled and checked, and what the serving process paid.

    ``where`` is ``worker`` (the kept worker process prepared it; serving only mapped the shared form
    and unpickled its small in-band part: ``handover_seconds``) or ``serving_process`` (today's
    path, in a thread of the serving process: loud unless it was asked for, ``reason`` says why).
    """

    where: Literal["worker", "serving_process"] = "serving_process"
    reason: str | None = "prepared in the serving process (no worker was asked for)"
    handover_seconds: float | None = None  # serving's own cost: map + unpickle (worker only)
    shared_bytes: int | None = None  # the arrays shared with the worker's file (worker only)
    inband_bytes: int | None = None  # what serving unpickled itself (worker only)
    worker_cpu_seconds: float | None = None  # CPU the worker spent on it (worker only)
    worker_pid: int | None = None  # the kept worker that prepared it (worker only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "reason": self.reason,
            "handover_ms": (
                None if self.handover_seconds is None else round(self.handover_seconds * 1000, 2)
            ),
            "shared_bytes": self.shared_bytes,
            "inband_bytes": self.inband_bytes,
            "worker_cpu_s": (
                None if self.worker_cpu_seconds is None else round(self.worker_cpu_seconds, 3)
            ),
            "worker_pid": self.worker_pid,
        }


@dataclass(frozen=True)
class ModelMetadata:
    """What the registry says about a version: run metrics, lineage and promotion tags."""

    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """One version, loaded, compiled, warmed: everything a request needs, never mutated."""

    name: str
    version: str
    alias: str
    loaded_at: dt.datetime
    load_seconds: float
    #: the registered model (sklearn TransformedTargetRegressor). A version prepared in a worker
    #: whose fast path serves leaves it there (None): nothing on the request path calls it.
    native: Any | None
    fast: Any | None  # serving.fast_model.FastModel, None when it refused the pipeline
    explainer: Any | None  # serving.explain.Explainer, None when it could not be built
    fast_path: FastPathStatus
    metadata: ModelMetadata
    #: serving.ranges.FeatureRanges of the training data; None: no warnings (``ranges_reason``)
    ranges: Any | None = None
    ranges_reason: str | None = "no training ranges were loaded for this version"
    preparation: PreparationStatus = field(default_factory=PreparationStatus)

    def predict(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Prices in dollars for canonical records (the fast path, else the model's own)."""
        from serving.fast_model import records_to_columns

        if self.fast is not None:
            return np.asarray(self.fast.predict(records_to_columns(records)), dtype=np.float64)
        return self.predict_native(records)

    def predict_native(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The registered model's own predict: the reference the fast path must match."""
        if self.native is None:
            raise RuntimeError(
                f"v{self.version} was prepared in a worker with its fast path on: the registered "
                "model stayed there (the request path never needs it)"
            )
        return native_predict(self.native, records)


def native_predict(native: Any, records: list[dict[str, Any]]) -> np.ndarray:
    """Prices from the registered model's own predict (pandas and the fitted pipeline)."""
    import pandas as pd

    from tasks.core.model import FEATURES, feature_frame

    frame = pd.DataFrame.from_records(records, columns=list(FEATURES))
    return np.asarray(native.predict(feature_frame(frame)), dtype=np.float64)


@dataclass(frozen=True)
class RegistryStatus:
    """The last poll of the registry: reachable or not, and since when."""

    reachable: bool | None = None  # None: not polled yet
    last_poll_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    alias_version: str | None = None  # what the alias pointed at when last seen

    def succeeded(self, now: dt.datetime, alias_version: str | None) -> RegistryStatus:
        return RegistryStatus(True, now, now, None, 0, alias_version)

    def failed(self, now: dt.datetime, error: str) -> RegistryStatus:
        return replace(
            self,
            reachable=False,
            last_poll_at=now,
            last_error=error,
            consecutive_failures=self.consecutive_failures + 1,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "last_poll_at": _iso(self.last_poll_at),
            "last_success_at": _iso(self.last_success_at),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "alias_version": self.alias_version,
        }


@dataclass(frozen=True)
class LoadFailure:
    """A version that could not be loaded, and when (it is retried after a while)."""

    version: str
    at: dt.datetime
    error: str


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
