"""The service's state as immutable values: the loaded model, the registry's health.

A request reads ``LoadedModel`` through one reference (``ModelHolder.current``) and uses that
object to the end, so a swap (one assignment) can never mix two versions in one answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FastPathStatus:
    """Whether the compiled fast path serves this version, and if not, why."""

    enabled: bool
    reason: str | None = None
    explain_enabled: bool = True
    explain_reason: str | None = None


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
    native: Any  # the registered model (sklearn TransformedTargetRegressor)
    fast: Any | None  # serving.fast_model.FastModel, None when it refused the pipeline
    explainer: Any | None  # serving.explain.Explainer, None when it could not be built
    fast_path: FastPathStatus
    metadata: ModelMetadata
    #: serving.ranges.FeatureRanges of the training data; None: no warnings (``ranges_reason``)
    ranges: Any | None = None
    ranges_reason: str | None = "no training ranges were loaded for this version"

    def predict(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Prices in dollars for canonical records (the fast path, else the model's own)."""
        from serving.fast_model import records_to_columns

        if self.fast is not None:
            return np.asarray(self.fast.predict(records_to_columns(records)), dtype=np.float64)
        return self.predict_native(records)

    def predict_native(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The registered model's own predict: the reference the fast path must match."""
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
