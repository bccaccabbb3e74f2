"""Train a challenger price model on the curated data, and register it in MLflow.

``python -m tasks.train --batch-id N`` (N: the ledger id fetch returned).

Runs only for a batch whose drift decision is ``train`` (a ``skip`` or a missing decision
fails: a model is never trained without a recorded reason). The steps (:func:`_train`):

1. load: the curated batches of the batch's group and day up to and including it (the last
   ``TRAIN_WINDOW_BATCHES`` if set), the deterministic holdout split off, the training rows
   capped at ``TRAIN_MAX_ROWS`` (:mod:`tasks.train.training_data`);
2. search: hyperparameters on an inner validation split, starting from the champion's
   (:mod:`tasks.train.search`: the space, pruning, a budget sized by the rows);
3. fit: the model with the best hyperparameters on all training rows;
4. evaluate: holdout metrics (dollars, log price, per status and price band) against the
   per-state median baseline (:mod:`tasks.core.evaluation`);
5. log: the MLflow run and a new registered version (:mod:`tasks.train.training_log`), which
   gets the alias ``challenger`` (serving's shadow scores live requests with it);
6. record: the ``trainings`` row of the ledger.

Training and scoring use ``TRAIN_THREADS`` OpenMP threads (0: :func:`tasks.core.threads.training_threads`
decides, for the search's rows and for all training rows).
Idempotent: a batch with a training returns it.

A failure ends the MLflow run FAILED: an exception unwinds the run, SIGTERM is turned into one
(:func:`sigterm_raises`), and a run left RUNNING by a task killed outright (SIGKILL) is ended
FAILED by the next train of the batch, tagged ``ended_by`` with why
(:func:`tasks.train.training_log.end_abandoned_runs`).
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING, Any

from tasks.core import registry, threads
from tasks.core.cli import BatchInputs, Step
from tasks.core.ledger import Batch, DriftDecision, Ledger, Training
from tasks.core.lifecycle_ledger import find_drift_decision, find_training, record_training
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings
from tasks.core.training_ledger import curated_batches, training_lock
from tasks.train.records import Scores, run_record, training_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tasks.train.search import SearchResult
    from tasks.train.training_data import TrainingData

log = get_logger(__name__)

#: fewer training rows than this cannot fit the pipeline (5-fold target encoding, trees)
MIN_TRAINING_ROWS = 100


class TrainInputs(BatchInputs):
    """Inputs of tasks.train."""


class TrainingRefusedError(RuntimeError):
    """The ledger does not justify (or allow) a training for this batch."""


class TrainingTerminatedError(RuntimeError):
    """SIGTERM arrived while training (Airflow's on_kill, a pod deleted)."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`TrainingTerminatedError` inside the block.

    Python's default SIGTERM ends the process at once, leaving the MLflow run RUNNING; an
    exception unwinds ``mlflow.start_run``, which ends the run FAILED. Outside the main
    thread (a signal handler cannot be set there) the block runs unchanged.
    """

    def stop(signum: int, _frame: object) -> None:
        raise TrainingTerminatedError(
            f"stopped by {signal.Signals(signum).name} while training (Airflow's on_kill, or "
            "the pod was deleted); the MLflow run is ended FAILED, and the next train of the "
            "batch starts it over"
        )

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(inputs: TrainInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    batch = ledger.get_batch(inputs.batch_id)
    existing = find_training(ledger, batch.id)
    if existing is not None:
        log.info("train.already_done", batch_id=batch.id, version=existing.model_version)
        return _result(existing, {"status": "existing"})
    decision = _required_decision(ledger, batch)
    # one training per batch: a second run for the batch waits here, then finds the first's
    with training_lock(ledger, batch.id) as session:
        existing = find_training(session, batch.id)
        if existing is not None:
            log.info("train.done_meanwhile", batch_id=batch.id, version=existing.model_version)
            return _result(existing, {"status": "existing"})
        adopted = _adopt_registered_version(session, settings, batch, decision)
        if adopted is not None:
            return _result(adopted, {"status": "existing"})
        from tasks.train.training_log import end_abandoned_runs

        ended = end_abandoned_runs(settings.mlflow_tracking_uri, settings.model_name, batch.id)
        # MLflow prints run URLs to stdout; stdout carries only the task's summary line
        with redirect_stdout(sys.stderr), sigterm_raises():
            result = _train(ledger, session, settings, batch, decision)
        return {**result, "ended_abandoned_runs": ended} if ended else result


def _train(
    ledger: Ledger,
    session: Session,
    settings: TaskSettings,
    batch: Batch,
    decision: DriftDecision,
) -> dict[str, Any]:
    # threadpoolctl limits the thread pools loaded when a limit starts: scikit-learn's OpenMP
    # runtime loads with its gradient boosting, so it is imported before the first limit
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    from tasks.core.storage import open_store
    from tasks.train import training_log

    started = time.perf_counter()
    store = open_store(settings.storage_url, settings)
    batches = curated_batches(ledger, batch, settings.train_window_batches)
    data = _load(store, batches, settings)
    search_threads = threads.training_threads(
        settings.train_threads, min(len(data.train), settings.train_search_max_rows)
    )
    with threadpool_limits(limits=search_threads):
        search = _search(data, settings)
    fit_threads = threads.training_threads(settings.train_threads, len(data.train))
    with threadpool_limits(limits=fit_threads):
        fitted, fit_seconds = _fit(data, search.params, settings.random_seed)
        scores = _evaluate(fitted, data)
        logged = training_log.log_training(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifact_location,
            model_name=settings.model_name,
            record=run_record(
                batch, decision, data, search, fitted, fit_seconds, scores, settings, fit_threads
            ),
            fitted=fitted,
            x_train=data.x_train,
            store=store,
            batches=batches,
            seed=settings.random_seed,
        )
    registry.set_alias(
        registry.client(settings.mlflow_tracking_uri),
        settings.model_name,
        registry.CHALLENGER_ALIAS,
        logged.version,
    )
    training = training_row(session, settings, batch, decision, data, scores, logged)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info(
        "train.registered",
        version=logged.version,
        mae=round(scores.metrics["mae"]),
        log_mae=round(scores.metrics.get("log_mae", float("nan")), 4),
        baseline_mae=round(scores.baseline_mae),
        top_features=list(logged.importance)[:3],
        seconds=round(time.perf_counter() - started, 1),
        peak_rss_mb=round(peak_mb),
    )
    return _result(
        training,
        {"status": "trained", "search_trials": search.trials, "peak_rss_mb": round(peak_mb, 1)},
    )


# --- the steps ------------------------------------------------------------------------------


def _load(store: Any, batches: Sequence[Any], settings: TaskSettings) -> TrainingData:
    """Step 1: the training and holdout rows, refused when too few to train or to judge."""
    from tasks.train.training_data import load_training_data

    data = load_training_data(
        store, batches, settings.holdout_share, settings.train_max_rows, settings.random_seed
    )
    batch_ids = data.batch_ids
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
    return data


def _search(data: TrainingData, settings: TaskSettings) -> SearchResult:
    """Step 2: hyperparameters, starting from the champion's (when there is one)."""
    from tasks.train import search, training_log
    from tasks.train.training_data import inner_validation_mask

    start_from = []
    champion = training_log.champion_params(settings.mlflow_tracking_uri, settings.model_name)
    if champion is not None:
        start_from.append(("champion", champion))
    try:
        found = search.search_hyperparameters(
            data.x_train,
            data.y_train,
            inner_validation_mask(data.scores, settings.holdout_share),
            seed=settings.random_seed,
            budget_seconds=settings.train_time_budget_seconds,
            max_trials=settings.train_max_trials,
            max_rows=settings.train_search_max_rows,
            row_budget=settings.train_search_row_budget,
            min_rows=MIN_TRAINING_ROWS,
            start_from=start_from,
        )
    except search.SearchError as exc:
        raise TrainingRefusedError(str(exc)) from exc
    log.info(
        "train.search",
        trials=found.trials,
        pruned=found.pruned,
        planned=found.planned_trials,
        started_from=found.started_from,
        fit_rows=found.fit_rows,
        validation_rows=found.validation_rows,
        seconds=round(found.seconds, 1),
        **found.params,
    )
    return found


def _fit(data: TrainingData, params: dict[str, Any], seed: int) -> tuple[Any, float]:
    """Step 3: the model with ``params`` on all training rows."""
    from tasks.core import model

    fit_started = time.perf_counter()
    fitted = model.build_model(params, seed).fit(data.x_train, data.y_train)
    return fitted, time.perf_counter() - fit_started


def _evaluate(fitted: Any, data: TrainingData) -> Scores:
    """Step 4: the holdout metrics, and the per-state median baseline on the same rows."""
    from tasks.core import evaluation, model

    x_hold, y_hold = model.feature_frame(data.holdout), model.target(data.holdout)
    metrics = evaluation.regression_metrics(y_hold, fitted.predict(x_hold), data.holdout["status"])
    medians = evaluation.fit_state_medians(data.train["state"], data.y_train)
    baseline = evaluation.regression_metrics(
        y_hold, evaluation.predict_state_medians(medians, data.holdout["state"])
    )
    return Scores(metrics=metrics, baseline=baseline, medians=medians)


# --- the ledger's side: idempotence, refusals, adoption ---------------------------------------


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
    # the run that died may have died before the alias: set it (again; idempotent)
    registry.set_alias(client, settings.model_name, registry.CHALLENGER_ALIAS, version.version)
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


STEP = Step(
    "train",
    TrainInputs,
    run,
    summary,
    doc=__doc__,
    preload_modules=(
        "matplotlib",
        "mlflow.sklearn",
        "optuna",
        "shap",
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.preprocessing",
        "skops.io",
        "threadpoolctl",
    ),
)
main = STEP.main
