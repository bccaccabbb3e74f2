"""Load one registered version: download, compile the fast path, build the explainer, warm up.

Everything slow happens here, before the version is swapped in: in a preparation worker process
(:mod:`serving.preparation`), or, when none can run, on the watcher's thread: the
model's own predict, the compiled fast path and the explainer all run once on the warm-up rows,
and the fast path must give the same prices as the model's own predict on them (else the
version is served by its own predict, loudly: see :func:`serving.decisions.fast_path_status`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import numpy as np

from serving.decisions import fast_path_status
from serving.ranges import ARTIFACT, FeatureRanges
from serving.settings import ServingSettings
from serving.state import LoadedModel, ModelMetadata, native_predict
from tasks.core.logs import get_logger

log = get_logger("serving.loader")

#: Rows every version predicts before it serves: typical, all null, unseen categories, absurd.
WARMUP_RECORDS: tuple[dict[str, Any], ...] = (
    {
        "status": "for_sale",
        "bed": 3.0,
        "bath": 2.0,
        "acre_lot": 0.12,
        "city": "Austin",
        "state": "Texas",
        "zip_code": "78701",
        "house_size": 1650.0,
        "prev_sold_date": dt.date(2015, 6, 30),
    },
    {
        "status": None,
        "bed": None,
        "bath": None,
        "acre_lot": None,
        "city": None,
        "state": None,
        "zip_code": None,
        "house_size": None,
        "prev_sold_date": None,
    },
    {
        "status": "sold",
        "bed": 5.0,
        "bath": 4.5,
        "acre_lot": 2.0,
        "city": "Nowhere Springs",
        "state": "Atlantis",
        "zip_code": "00000",
        "house_size": 4200.0,
        "prev_sold_date": dt.date(1999, 1, 15),
    },
    {
        "status": "ready_to_build",
        "bed": 400.0,
        "bath": 0.0,
        "acre_lot": 90_000.0,
        "city": "Miami",
        "state": "Florida",
        "zip_code": "33101",
        "house_size": 1e7,
        "prev_sold_date": dt.date(1850, 12, 31),
    },
)


def configure_mlflow(settings: ServingSettings) -> None:
    """Point MLflow at the registry with short timeouts (its defaults retry for minutes)."""
    import mlflow

    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(settings.mlflow_timeout_seconds)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.mlflow_max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)


def registry_metadata(client: Any, name: str, version: str) -> ModelMetadata:
    """The version's tags (lineage, reasons, promotion) and its run's metrics."""
    found = client.get_model_version(name, str(version))
    metrics: dict[str, float] = {}
    if found.run_id:
        metrics = dict(client.get_run(found.run_id).data.metrics)
    created = found.creation_timestamp
    return ModelMetadata(
        run_id=found.run_id,
        metrics=metrics,
        tags=dict(found.tags or {}),
        created_at=(
            dt.datetime.fromtimestamp(created / 1000, dt.UTC).isoformat() if created else None
        ),
    )


def _relative_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = np.maximum(np.abs(b), 1e-12)
    diff = np.abs(a - b) / scale
    return float(np.max(diff)) if diff.size else 0.0


def load_version(client: Any, name: str, version: str, alias: str) -> LoadedModel:
    """Download ``models:/<name>/<version>`` and make it ready to serve (raises on failure)."""
    import mlflow.sklearn

    started = time.perf_counter()
    metadata = registry_metadata(client, name, version)
    native = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    log.info(
        "model.downloaded",
        model_name=name,
        version=version,
        seconds=round(time.perf_counter() - started, 3),
    )
    ranges, reason = training_ranges(metadata.run_id)
    return prepare(
        native, name, str(version), alias, metadata, started=started, ranges=ranges, why=reason
    )


def training_ranges(run_id: str | None) -> tuple[FeatureRanges | None, str | None]:
    """The version's training ranges (its run's ``feature_ranges.json``), or None and why."""
    import mlflow

    if run_id is None:
        return None, "the version has no run, so no training ranges: inputs are not checked"
    try:
        document = mlflow.artifacts.load_dict(f"runs:/{run_id}/{ARTIFACT}")
    except Exception as exc:  # absent (a version trained before ranges were logged), or broken
        return None, (
            f"the version's run has no usable {ARTIFACT} ({type(exc).__name__}; trained before "
            "ranges were logged?): out-of-range inputs get no warnings; retrain to get them"
        )
    try:
        return FeatureRanges.from_document(document), None
    except ValueError as exc:
        return None, f"{exc}: out-of-range inputs get no warnings"


def prepare(
    native: Any,
    name: str,
    version: str,
    alias: str,
    metadata: ModelMetadata,
    *,
    started: float | None = None,
    ranges: FeatureRanges | None = None,
    why: str | None = None,
) -> LoadedModel:
    """Compile, check, explain and warm a fitted model: the :class:`LoadedModel` to swap in.

    The fast path serves only if it compiled and gives the model's own prices on the warm-up
    rows; otherwise the model's own predict serves (see :func:`fast_path_status`).
    ``ranges`` are the version's training ranges (None: served without warnings, ``why``).
    """
    from serving.fast_model import compile_model, records_to_columns

    started = time.perf_counter() if started is None else started
    records = list(WARMUP_RECORDS)
    reference = native_predict(native, records)

    fast, compile_error, parity = None, None, None
    try:
        fast = compile_model(native)
    except Exception as exc:  # UnsupportedPipelineError, or a bug: either way not trusted
        compile_error = f"{type(exc).__name__}: {exc}"
    if fast is not None:
        columns = records_to_columns(records)
        for _ in range(3):  # warm caches and allocations
            predicted = np.asarray(fast.predict(columns), dtype=np.float64)
        parity = _relative_diff(predicted, reference)

    explainer, explain_error = None, None
    if fast is not None:
        try:
            from serving.explain import Explainer

            explainer = Explainer.build(fast)
            explainer.explain(records_to_columns(records[:1]))
        except Exception as exc:
            explainer, explain_error = None, f"{type(exc).__name__}: {exc}"

    status = fast_path_status(compile_error, parity, explain_error)
    if not status.enabled:
        fast = None
        log.error(
            "model.fast_path_off",
            model_name=name,
            version=version,
            reason=status.reason,
            consequence="served by the model's own predict (same prices, slower)",
        )
    if not status.explain_enabled:
        explainer = None
        log.error(
            "model.explain_off", model_name=name, version=version, reason=status.explain_reason
        )
    loaded = LoadedModel(
        name=name,
        version=str(version),
        alias=alias,
        loaded_at=dt.datetime.now(dt.UTC),
        load_seconds=time.perf_counter() - started,
        native=native,
        fast=fast,
        explainer=explainer,
        fast_path=status,
        metadata=metadata,
        ranges=ranges,
        ranges_reason=None if ranges is not None else why or "no training ranges given",
    )
    if loaded.ranges is None:
        log.error(
            "model.no_feature_ranges",
            model_name=name,
            version=version,
            reason=loaded.ranges_reason,
            consequence="served without out-of-distribution warnings",
        )
    log.info(
        "model.loaded",
        model_name=name,
        version=version,
        seconds=round(loaded.load_seconds, 3),
        fast_path=status.enabled,
        parity_max_relative_diff=parity,
    )
    return loaded
