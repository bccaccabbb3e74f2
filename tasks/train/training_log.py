"""What a training leaves in MLflow: the run (parameters, metrics, model, lineage, SHAP,
reasons), the registered model version, and what the next training reuses from a champion.

Everything MLflow-shaped that :mod:`tasks.train` writes or reads lives here, so the task reads
as a list of steps and the run's layout is written down in one place:

- parameters: ``hgb_<name>`` per hyperparameter (what :func:`champion_params` reads back),
  the search's settings and outcome, the row counts, the features;
- metrics: the holdout metrics of :func:`tasks.core.evaluation.regression_metrics` (dollar MAE,
  RMSE, R2, MAPE, log-price MAE, MdAPE, per status and band), the baseline, the search;
- artifacts: ``model`` (signature, input example, skops with :data:`tasks.core.model.SKOPS_TRUSTED_TYPES`),
  ``explain/`` (SHAP importances, plot, background sample), ``reasons.json``,
  ``baseline/state_medians.json``, ``feature_ranges.json`` (the training data's range per
  feature: serving warns on values outside it, see serving/ranges.py); one dataset input per
  curated batch.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.core import lake, model, registry
from tasks.core.logs import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from tasks.core.storage import ObjectStore
    from tasks.core.training_ledger import CuratedBatch

log = get_logger(__name__)

#: training rows the logged global importance averages |SHAP| over: tree SHAP costs about 5 ms
#: a row on 300 trees. Measured at full scale (batches 1 and 1-6): 500 rows rank the features
#: as 1,000 and 4,000 rows do, each feature's value within 10% of the 4,000 rows' one
SHAP_ROWS = 500
BACKGROUND_ROWS = 100
PARAM_PREFIX = "hgb_"
#: the features whose training range serving checks (city and zip_code: see serving/ranges.py)
RANGE_NUMERIC: tuple[str, ...] = ("bed", "bath", "acre_lot", "house_size")
RANGE_CATEGORICAL: tuple[str, ...] = ("status", "state")


@dataclass
class RunRecord:
    """What one training logs: tags, parameters, metrics and what the run's artifacts need."""

    run_name: str
    tags: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, float]
    reasons: dict[str, Any]
    state_medians: dict[str, float]
    version_tags: dict[str, str]


@dataclass
class LoggedModel:
    run_id: str
    version: str
    importance: dict[str, float]


def champion_params(tracking_uri: str, model_name: str) -> dict[str, Any] | None:
    """The hyperparameters the production model was trained with (its run's ``hgb_*``)."""
    client = registry.client(tracking_uri)
    found = registry.champion(client, model_name)
    if found is None or not found.run_id:
        return None
    try:
        params = client.get_run(found.run_id).data.params
    except Exception as exc:  # a deleted run: search from the defaults
        log.warning("train.champion_params_unreadable", run_id=found.run_id, error=str(exc))
        return None
    values = {k[len(PARAM_PREFIX) :]: v for k, v in params.items() if k.startswith(PARAM_PREFIX)}
    return values or None


#: the tag a run ended by someone other than its own task carries: who ended it, and why
ENDED_BY_TAG = "ended_by"


def end_abandoned_runs(tracking_uri: str, model_name: str, batch_id: int) -> list[str]:
    """End FAILED the runs of ``batch_id``'s training still RUNNING; their ids.

    Call it holding the batch's training lock: no live train of the batch can own such a run,
    so it was left by a task killed mid-logging (SIGKILL cannot be caught; an exception or
    SIGTERM ends the run FAILED itself). Tagged :data:`ENDED_BY_TAG` with the reason.
    """
    client = registry.client(tracking_uri)
    experiment = client.get_experiment_by_name(model_name)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.batch_id = '{batch_id}' and attributes.status = 'RUNNING'",
    )
    ended = []
    for found in runs:
        run_id = found.info.run_id
        client.set_tag(
            run_id,
            ENDED_BY_TAG,
            f"tasks.train of batch {batch_id}: found RUNNING with no live task (its task was "
            "killed before the run ended); a new run trains the batch again",
        )
        client.set_terminated(run_id, status="FAILED")
        log.warning("train.ended_abandoned_run", batch_id=batch_id, run_id=run_id)
        ended.append(run_id)
    return ended


def ensure_experiment(name: str, artifact_location: str | None) -> None:
    """Use the experiment ``name``, creating it where artifacts should go when it is new."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    if artifact_location and mlflow.get_experiment_by_name(name) is None:
        location = artifact_location
        if "://" not in location:
            location = Path(location).resolve().as_uri()
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # another task created it since we looked: fine
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
    mlflow.set_experiment(name)


def log_training(
    *,
    tracking_uri: str,
    artifact_location: str | None,
    model_name: str,
    record: RunRecord,
    fitted: Any,
    x_train: pd.DataFrame,
    store: ObjectStore,
    batches: Sequence[CuratedBatch],
    seed: int,
) -> LoggedModel:
    """One MLflow run with everything above, then a new registered version of the model."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    ensure_experiment(model_name, artifact_location)
    with mlflow.start_run(run_name=record.run_name, tags=record.tags) as active:
        run_id = active.info.run_id
        mlflow.log_params(record.params)
        mlflow.log_metrics(record.metrics)
        for dataset in _dataset_inputs(store, batches):
            mlflow.log_input(dataset, context="training")
        example = x_train.head(5)
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            signature=_signature(example, fitted.predict(example)),
            input_example=example,
            skops_trusted_types=list(model.SKOPS_TRUSTED_TYPES),
            pip_requirements=model.pip_requirements(),
        )
        importance = _log_explanations(fitted, x_train, seed)
        mlflow.log_dict(record.reasons, "reasons.json")
        mlflow.log_dict({"state_medians": record.state_medians}, "baseline/state_medians.json")
        mlflow.log_dict(feature_ranges(x_train), model.FEATURE_RANGES_ARTIFACT)
    version = mlflow.register_model(
        info.model_uri, model_name, tags={**record.version_tags, "run_id": run_id}
    )
    return LoggedModel(run_id=run_id, version=str(version.version), importance=importance)


def feature_ranges(x_train: pd.DataFrame) -> dict[str, Any]:
    """The training data's range per feature: min/max of the numbers, the categories seen."""
    numeric: dict[str, list[float]] = {}
    for name in RANGE_NUMERIC:
        values = np.asarray(x_train[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            numeric[name] = [float(values.min()), float(values.max())]
    categories = {
        name: sorted(x_train[name].dropna().astype(str).unique().tolist())
        for name in RANGE_CATEGORICAL
    }
    return {"rows": len(x_train), "numeric": numeric, "categories": categories}


def _signature(example: pd.DataFrame, predictions: np.ndarray) -> Any:
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    types = {
        **{n: DataType.string for n in model.TEXT_FEATURES},
        **{n: DataType.double for n in (*model.NUMERIC_FEATURES, *model.LOG_FEATURES)},
        **{n: DataType.datetime for n in model.DATE_FEATURES},
    }
    inputs = Schema([ColSpec(types[name], name) for name in model.FEATURES])
    outputs = infer_signature(example, predictions).outputs
    return ModelSignature(inputs=inputs, outputs=outputs)


def _dataset_inputs(store: ObjectStore, batches: Sequence[CuratedBatch]) -> list[Any]:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    datasets = []
    for batch in batches:
        with warnings.catch_warnings():  # file:// matches two equivalent source types
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(store.uri(batch.curated_key))
        name = lake.stem_of(batch)
        datasets.append(MetaDataset(source=source, name=name, digest=batch.sha256[:32]))
    return datasets


def _importance_plot(importance: Mapping[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    ax.barh(names, [importance[n] for n in names], color="#3b6ea8")
    ax.set_xlabel("mean |SHAP value| (log price)")
    ax.set_title("Global feature importance (holdout-free training sample)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _log_explanations(fitted: Any, train_features: pd.DataFrame, seed: int) -> dict[str, float]:
    import mlflow

    sample = train_features.sample(min(SHAP_ROWS, len(train_features)), random_state=seed)
    importance, rows = model.shap_importance(fitted, sample)
    background = train_features.sample(
        min(BACKGROUND_ROWS, len(train_features)), random_state=seed + 1
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "explain"
        folder.mkdir()
        (folder / "shap_importance.json").write_text(
            json.dumps(
                {
                    "unit": "mean |SHAP value| of log1p(price), per original feature",
                    "explainer": "shap.TreeExplainer on HistGradientBoostingRegressor",
                    "rows": rows,
                    "importance": importance,
                },
                indent=2,
            )
        )
        _importance_plot(importance, folder / "shap_importance.png")
        background.reset_index(drop=True).to_parquet(folder / "background.parquet", index=False)
        mlflow.log_artifacts(str(folder), artifact_path="explain")
    return importance
