"""Train a challenger price model on the curated data, and register it in MLflow.

``python -m tasks.train --batch-id N`` (N: the ledger id fetch returned).

Runs only for a batch whose drift decision is ``train`` (a ``skip`` or a missing decision
fails: a model is never trained without a recorded reason). Reads the curated batches of
the batch's group and day up to and including it (the last ``TRAIN_WINDOW_BATCHES`` if set),
splits off the deterministic holdout (:mod:`tasks.holdout`), subsamples the training rows to
``TRAIN_MAX_ROWS``, searches hyperparameters with Optuna on an inner validation split (bounded
by ``TRAIN_TIME_BUDGET_SECONDS`` and ``TRAIN_MAX_TRIALS``), refits on all training rows and
evaluates on the holdout against the per-state median baseline.

Logs to MLflow (experiment = model name): parameters, holdout metrics, baseline MAE, the model
(signature, input example, skops), one dataset input per batch, SHAP importances, a background
sample for explanations and the decision's reasons; registers a new version of the model
with tags; records a ``trainings`` row. Idempotent: a batch with a training returns it.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from tasks import evaluation, holdout, lake, model, registry
from tasks.cli import BatchInputs, run_task
from tasks.ledger import Batch, DriftDecision, Ledger, Training
from tasks.lifecycle_ledger import find_drift_decision, find_training, record_training
from tasks.logs import get_logger
from tasks.settings import TaskSettings
from tasks.storage import ObjectStore, open_store
from tasks.training_ledger import CuratedBatch, curated_batches, read_curated, training_lock

log = get_logger(__name__)

#: fewer training rows than this cannot fit the pipeline (5-fold target encoding, trees)
MIN_TRAINING_ROWS = 100
#: share of the training properties the search validates on (never the holdout)
INNER_VALIDATION_SHARE = 0.15
SHAP_ROWS = 1000
BACKGROUND_ROWS = 100
SEARCHED = (
    "learning_rate",
    "max_leaf_nodes",
    "min_samples_leaf",
    "l2_regularization",
    "max_features",
)
SEARCH_SPACE_DOC = (
    "learning_rate 0.03-0.3 (log), max_leaf_nodes 15-127 (log), min_samples_leaf 10-200 (log), "
    "l2_regularization 0.001-10 (log), max_features 0.5-1.0"
)


class TrainInputs(BatchInputs):
    """Inputs of tasks.train."""


class TrainingRefusedError(RuntimeError):
    """The ledger does not justify (or allow) a training for this batch."""


@dataclass
class TrainingData:
    """Training rows (capped), holdout rows (all of them), and what they came from."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    batches: list[CuratedBatch]
    rows_read: int
    rows_without_price: int
    rows_train_before_cap: int
    scores: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def load_training_data(
    store: ObjectStore, batches: Sequence[CuratedBatch], share: float, max_rows: int, seed: int
) -> TrainingData:
    """Read the curated batches, split each by the holdout, cap the training rows (seeded)."""
    train_parts: list[pd.DataFrame] = []
    score_parts: list[np.ndarray] = []
    holdout_parts: list[pd.DataFrame] = []
    rows_read = rows_without_price = 0
    for batch in batches:
        frame = read_curated(store, batch)
        rows_read += len(frame)
        priced = pd.to_numeric(frame["price"], errors="coerce")
        usable = priced.notna() & (priced > 0)
        rows_without_price += int((~usable).sum())
        frame = frame.loc[usable]
        scores = holdout.holdout_scores(frame)
        in_holdout = scores < share
        holdout_parts.append(frame.loc[in_holdout])
        train_parts.append(frame.loc[~in_holdout])
        score_parts.append(scores[~in_holdout])
        del frame
    train = pd.concat(train_parts, ignore_index=True) if train_parts else pd.DataFrame()
    scores = np.concatenate(score_parts) if score_parts else np.empty(0)
    hold = pd.concat(holdout_parts, ignore_index=True) if holdout_parts else pd.DataFrame()
    before_cap = len(train)
    if len(train) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), max_rows, replace=False))
        train, scores = train.iloc[keep].reset_index(drop=True), scores[keep]
    return TrainingData(
        train=train,
        holdout=hold,
        batches=list(batches),
        rows_read=rows_read,
        rows_without_price=rows_without_price,
        rows_train_before_cap=before_cap,
        scores=scores,
    )


def inner_validation_mask(scores: np.ndarray, share: float) -> np.ndarray:
    """Training rows the search validates on: a band of property hashes above the holdout's."""
    return scores < share + (1.0 - share) * INNER_VALIDATION_SHARE


@dataclass
class SearchResult:
    params: dict[str, Any]
    best_validation_mae: float
    trials: int
    seconds: float


def search_hyperparameters(
    features: pd.DataFrame,
    prices: np.ndarray,
    validation: np.ndarray,
    *,
    seed: int,
    budget_seconds: float,
    max_trials: int,
    max_rows: int,
) -> SearchResult:
    """Optuna (TPE, seeded) over :data:`SEARCH_SPACE_DOC`, scored by MAE in dollars on the
    inner validation rows; the first trial is the default parameters."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fit_index = np.flatnonzero(~validation)
    if len(fit_index) > max_rows:
        fit_index = np.sort(np.random.default_rng(seed).choice(fit_index, max_rows, replace=False))
    x_fit, y_fit = features.iloc[fit_index], prices[fit_index]
    x_val, y_val = features.loc[validation], prices[validation]
    if len(x_val) == 0 or len(x_fit) < MIN_TRAINING_ROWS:
        raise TrainingRefusedError(
            f"too few rows for the search: {len(x_fit)} to fit, {len(x_val)} to validate"
        )

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 15, 127, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 200, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
            "max_features": trial.suggest_float("max_features", 0.5, 1.0),
        }
        fitted = model.build_model(params, seed).fit(x_fit, y_fit)
        return float(np.mean(np.abs(fitted.predict(x_val) - y_val)))

    started = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({name: model.DEFAULT_PARAMS[name] for name in SEARCHED})
    study.optimize(objective, n_trials=max_trials, timeout=budget_seconds, catch=())
    done = [t for t in study.trials if t.value is not None]
    if not done:
        raise TrainingRefusedError("the hyperparameter search finished no trial")
    return SearchResult(
        params=dict(study.best_params),
        best_validation_mae=float(study.best_value),
        trials=len(done),
        seconds=time.perf_counter() - started,
    )


def _signature(example: pd.DataFrame, predictions: np.ndarray) -> Any:
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    types = {
        **{n: DataType.string for n in model.TEXT_FEATURES},
        **{n: DataType.double for n in (*model.NUMERIC_FEATURES, *model.LOG_FEATURES)},
        **{n: DataType.datetime for n in model.DATE_FEATURES},
    }
    inputs = Schema([ColSpec(types[name], name) for name in model.FEATURES])
    outputs = infer_signature(example, predictions).outputs
    from mlflow.models import ModelSignature

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


def _importance_plot(importance: dict[str, float], path: Path) -> None:
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


def _result(training: Training, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    headline = dict(training.metrics or {})
    return {
        "batch_id": training.batch_id,
        "training_id": training.id,
        "run_id": training.mlflow_run_id,
        "model_name": training.model_name,
        "model_version": training.model_version,
        "metrics": {k: v for k, v in headline.items() if k != "baseline_mae"},
        "baseline_mae": headline.get("baseline_mae"),
        "rows_train": training.rows_train,
        "rows_holdout": training.rows_holdout,
        "holdout_share": training.holdout_share,
        "training_batch_ids": list(training.training_batch_ids or []),
        "reasons": list(training.reasons or []),
        **(extra or {}),
    }


def _required_decision(ledger: Ledger, batch: Batch) -> DriftDecision:
    decision = find_drift_decision(ledger, batch.id)
    if decision is None:
        raise TrainingRefusedError(
            f"batch {batch.id} has no drift decision: run `python -m tasks.drift_check "
            f"--batch-id {batch.id}` first (a model is never trained without a recorded reason)"
        )
    if decision.decision != "train":
        reasons = "; ".join(decision.reasons or []) or "no reasons recorded"
        raise TrainingRefusedError(
            f"batch {batch.id}: the drift decision is {decision.decision!r} ({reasons}), "
            "not 'train'; nothing to train (the DAG skips train for this batch)"
        )
    return decision


def _adopt_registered_version(
    session: Session, settings: TaskSettings, batch: Batch, decision: DriftDecision
) -> Training | None:
    """A version registered for this batch by a run that died before its ledger row."""
    client = registry.client(settings.mlflow_tracking_uri)
    found = registry.versions_tagged(client, settings.model_name, "batch_id", str(batch.id))
    if not found:
        return None
    version = found[0]
    run = client.get_run(version.run_id)
    ids = json.loads(version.tags.get("training_batch_ids", "[]"))
    metrics = dict(run.data.metrics)
    params = run.data.params
    log.warning("train.adopting_version", batch_id=batch.id, version=version.version)
    training, _ = record_training(
        session,
        Training(
            batch_id=batch.id,
            decision_id=decision.id,
            mlflow_run_id=version.run_id,
            model_name=settings.model_name,
            model_version=str(version.version),
            training_batch_ids=ids,
            metrics=metrics,
            rows_train=int(params["rows_train"]) if "rows_train" in params else None,
            rows_holdout=int(params["rows_holdout"]) if "rows_holdout" in params else None,
            holdout_share=float(params.get("holdout_share", settings.holdout_share)),
            reasons=list(decision.reasons or []),
        ),
    )
    return training


def run(inputs: TrainInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    batch = ledger.get_batch(inputs.batch_id)
    existing = find_training(ledger, batch.id)
    if existing is not None:
        log.info("train.already_done", batch_id=batch.id, version=existing.model_version)
        return _result(existing, {"status": "existing"})
    decision = _required_decision(ledger, batch)
    from threadpoolctl import threadpool_limits

    # one training per batch: a second run for the batch waits here, then finds the first's
    with training_lock(ledger, batch.id) as session:
        existing = find_training(session, batch.id)
        if existing is not None:
            log.info("train.done_meanwhile", batch_id=batch.id, version=existing.model_version)
            return _result(existing, {"status": "existing"})
        adopted = _adopt_registered_version(session, settings, batch, decision)
        if adopted is not None:
            return _result(adopted, {"status": "existing"})
        # MLflow prints run URLs to stdout; stdout carries only the task's summary line
        with (
            threadpool_limits(limits=settings.train_threads or None),
            redirect_stdout(sys.stderr),
        ):
            return _train(ledger, session, settings, batch, decision)


def _train(
    ledger: Ledger,
    session: Session,
    settings: TaskSettings,
    batch: Batch,
    decision: DriftDecision,
) -> dict[str, Any]:
    import mlflow

    started = time.perf_counter()
    seed = settings.random_seed
    store = open_store(settings.storage_url, settings)
    batches = curated_batches(ledger, batch, settings.train_window_batches)
    data = load_training_data(store, batches, settings.holdout_share, settings.train_max_rows, seed)
    batch_ids = [b.batch_id for b in batches]
    log.info(
        "train.data",
        batches=batch_ids,
        rows_read=data.rows_read,
        rows_train=len(data.train),
        rows_train_before_cap=data.rows_train_before_cap,
        rows_holdout=len(data.holdout),
        rows_without_price=data.rows_without_price,
    )
    if data.rows_without_price:
        log.warning("train.rows_without_price", rows=data.rows_without_price)
    if len(data.train) < MIN_TRAINING_ROWS:
        raise TrainingRefusedError(
            f"only {len(data.train)} training rows in batches {batch_ids} "
            f"(at least {MIN_TRAINING_ROWS} needed)"
        )
    if data.holdout.empty:
        raise TrainingRefusedError(
            f"the holdout of batches {batch_ids} is empty ({data.rows_read} rows, share "
            f"{settings.holdout_share}): cannot evaluate a model; wait for more data"
        )
    x_train, y_train = model.feature_frame(data.train), model.target(data.train)
    x_hold, y_hold = model.feature_frame(data.holdout), model.target(data.holdout)

    validation = inner_validation_mask(data.scores, settings.holdout_share)
    search = search_hyperparameters(
        x_train,
        y_train,
        validation,
        seed=seed,
        budget_seconds=settings.train_time_budget_seconds,
        max_trials=settings.train_max_trials,
        max_rows=settings.train_search_max_rows,
    )
    log.info(
        "train.search", trials=search.trials, seconds=round(search.seconds, 1), **search.params
    )
    fit_started = time.perf_counter()
    fitted = model.build_model(search.params, seed).fit(x_train, y_train)
    fit_seconds = time.perf_counter() - fit_started

    predictions = fitted.predict(x_hold)
    metrics = evaluation.regression_metrics(y_hold, predictions, data.holdout["status"])
    medians = evaluation.fit_state_medians(data.train["state"], y_train)
    baseline = evaluation.regression_metrics(
        y_hold, evaluation.predict_state_medians(medians, data.holdout["state"])
    )
    baseline_mae = baseline["mae"]
    ratio = evaluation.improvement(metrics["mae"], baseline_mae)
    reasons = list(decision.reasons or [])

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    ensure_experiment(settings.model_name, settings.mlflow_artifact_location)
    tags = {
        "batch_id": str(batch.id),
        "group_number": str(batch.group_number),
        "day": batch.day,
        "batch_number": str(batch.batch_number),
        "decision_id": str(decision.id),
        "decision_reasons": registry.tag_value(reasons),
        "training_batch_ids": json.dumps(batch_ids),
    }
    with mlflow.start_run(run_name=f"train-batch-{batch.id}", tags=tags) as active:
        run_id = active.info.run_id
        mlflow.log_params(
            {
                **{f"hgb_{k}": v for k, v in search.params.items()},
                "hgb_max_iter": model.DEFAULT_PARAMS["max_iter"],
                "hgb_iterations_used": int(fitted.regressor_.named_steps["regressor"].n_iter_),
                "target_transform": "log1p/expm1",
                "holdout_share": settings.holdout_share,
                "holdout_method": "blake2b(street|zip_code), else whole row",
                "random_seed": seed,
                "train_max_rows": settings.train_max_rows,
                "train_window_batches": settings.train_window_batches,
                "train_time_budget_seconds": settings.train_time_budget_seconds,
                "train_max_trials": settings.train_max_trials,
                "search_trials": search.trials,
                "search_space": SEARCH_SPACE_DOC,
                "rows_read": data.rows_read,
                "rows_train": len(data.train),
                "rows_train_before_cap": data.rows_train_before_cap,
                "rows_holdout": len(data.holdout),
                "features": ",".join(model.FEATURES),
            }
        )
        mlflow.log_metrics(
            {
                **{k: v for k, v in metrics.items() if k != "rows"},
                "baseline_mae": baseline_mae,
                "baseline_rmse": baseline["rmse"],
                "improvement_over_baseline": ratio,
                "mae_to_baseline_ratio": metrics["mae"] / baseline_mae,
                "search_best_validation_mae": search.best_validation_mae,
                "search_seconds": search.seconds,
                "fit_seconds": fit_seconds,
            }
        )
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
        mlflow.log_dict(
            {"batch_id": batch.id, "decision_id": decision.id, "reasons": reasons},
            "reasons.json",
        )
        mlflow.log_dict({"state_medians": medians}, "baseline/state_medians.json")
    version = mlflow.register_model(
        info.model_uri,
        settings.model_name,
        tags={
            "batch_id": str(batch.id),
            "training_batch_ids": json.dumps(batch_ids),
            "reasons": registry.tag_value(reasons),
            "run_id": run_id,
        },
    )
    stored_metrics = {
        **{k: v for k, v in metrics.items() if k != "rows"},
        "baseline_mae": baseline_mae,
        "improvement_over_baseline": ratio,
    }
    training, _ = record_training(
        session,
        Training(
            batch_id=batch.id,
            decision_id=decision.id,
            mlflow_run_id=run_id,
            model_name=settings.model_name,
            model_version=str(version.version),
            training_batch_ids=batch_ids,
            metrics=stored_metrics,
            rows_train=len(data.train),
            rows_holdout=len(data.holdout),
            holdout_share=settings.holdout_share,
            reasons=reasons,
        ),
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info(
        "train.registered",
        version=version.version,
        mae=round(metrics["mae"]),
        baseline_mae=round(baseline_mae),
        top_features=list(importance)[:3],
        seconds=round(time.perf_counter() - started, 1),
        peak_rss_mb=round(peak_mb),
    )
    return _result(
        training,
        {
            "status": "trained",
            "search_trials": search.trials,
            "peak_rss_mb": round(peak_mb, 1),
        },
    )


def ensure_experiment(name: str, artifact_location: str | None) -> None:
    """Use the experiment ``name``, creating it where artifacts should go when it is new."""
    import mlflow

    if artifact_location and mlflow.get_experiment_by_name(name) is None:
        location = artifact_location
        if "://" not in location:
            location = Path(location).resolve().as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)


def summary(result: dict[str, Any]) -> str:
    metrics = result.get("metrics") or {}
    mae, baseline = metrics.get("mae"), result.get("baseline_mae")
    ratio = f" ({mae / baseline:.0%} of baseline)" if mae and baseline else ""
    return (
        f"train: {result.get('status', 'trained')} {result['model_name']} "
        f"v{result['model_version']} for batch {result['batch_id']}: "
        f"MAE {mae:,.0f} vs baseline MAE {baseline:,.0f}{ratio}; "
        f"{result['rows_train']:,} training rows, {result['rows_holdout']:,} holdout rows "
        f"from batches {result['training_batch_ids']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_task("train", TrainInputs, run, argv, summary=summary, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
