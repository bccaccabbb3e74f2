"""What a training writes, once it has its model: the MLflow run's content (tags, parameters,
metrics, reasons: :func:`run_record`) and the ledger's ``trainings`` row (:func:`training_row`),
from the holdout :class:`Scores`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.core import registry
from tasks.core.ledger import Batch, DriftDecision, Training
from tasks.core.lifecycle_ledger import record_training
from tasks.core.settings import TaskSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tasks.train.search import SearchResult
    from tasks.train.training_data import TrainingData
    from tasks.train.training_log import LoggedModel


@dataclass
class Scores:
    """Step 4's outcome: the model's holdout metrics and the baseline's."""

    metrics: dict[str, float]
    baseline: dict[str, float]
    medians: dict[str, float]

    @property
    def baseline_mae(self) -> float:
        return self.baseline["mae"]

    @property
    def improvement(self) -> float:
        from tasks.core import evaluation

        return evaluation.improvement(self.metrics["mae"], self.baseline_mae)

    def headline(self) -> dict[str, float]:
        return {k: v for k, v in self.metrics.items() if k != "rows"}


def run_record(
    batch: Batch,
    decision: DriftDecision,
    data: TrainingData,
    search: SearchResult,
    fitted: Any,
    fit_seconds: float,
    scores: Scores,
    settings: TaskSettings,
    fit_threads: int,
) -> Any:
    """Step 5's content: the run's tags, parameters and metrics (see :mod:`tasks.train.training_log`)."""
    from tasks.core import model
    from tasks.train.search import SEARCH_SPACE
    from tasks.train.training_log import PARAM_PREFIX, RunRecord

    reasons = list(decision.reasons or [])
    batch_ids = json.dumps(data.batch_ids)
    return RunRecord(
        run_name=f"train-batch-{batch.id}",
        tags={
            "batch_id": str(batch.id),
            "group_number": str(batch.group_number),
            "day": batch.day,
            "batch_number": str(batch.batch_number),
            "decision_id": str(decision.id),
            "decision_reasons": registry.tag_value(reasons),
            "training_batch_ids": batch_ids,
        },
        params={
            **{f"{PARAM_PREFIX}{k}": v for k, v in search.params.items()},
            f"{PARAM_PREFIX}max_iter": model.DEFAULT_PARAMS["max_iter"],
            f"{PARAM_PREFIX}iterations_used": int(
                fitted.regressor_.named_steps["regressor"].n_iter_
            ),
            "target_transform": "log1p/expm1",
            "holdout_share": settings.holdout_share,
            "holdout_method": "blake2b(street|zip_code), else whole row",
            "random_seed": settings.random_seed,
            "train_max_rows": settings.train_max_rows,
            "train_window_batches": settings.train_window_batches,
            "train_time_budget_seconds": settings.train_time_budget_seconds,
            "train_max_trials": settings.train_max_trials,
            "train_search_row_budget": settings.train_search_row_budget,
            "train_threads": fit_threads,
            "search_trials": search.trials,
            "search_pruned_trials": search.pruned,
            "search_started_from": ",".join(search.started_from),
            "search_space": SEARCH_SPACE.describe(),
            "rows_read": data.rows_read,
            "rows_train": len(data.train),
            "rows_train_before_cap": data.rows_train_before_cap,
            "rows_holdout": len(data.holdout),
            "features": ",".join(model.FEATURES),
        },
        metrics={
            **scores.headline(),
            "baseline_mae": scores.baseline_mae,
            "baseline_rmse": scores.baseline["rmse"],
            "improvement_over_baseline": scores.improvement,
            "mae_to_baseline_ratio": scores.metrics["mae"] / scores.baseline_mae,
            "search_best_validation_mae": search.best_validation_mae,
            "search_seconds": search.seconds,
            "fit_seconds": fit_seconds,
        },
        reasons={"batch_id": batch.id, "decision_id": decision.id, "reasons": reasons},
        state_medians=scores.medians,
        version_tags={
            "batch_id": str(batch.id),
            "training_batch_ids": batch_ids,
            "reasons": registry.tag_value(reasons),
        },
    )


def training_row(
    session: Session,
    settings: TaskSettings,
    batch: Batch,
    decision: DriftDecision,
    data: TrainingData,
    scores: Scores,
    logged: LoggedModel,
) -> Training:
    """Step 6: the ledger's ``trainings`` row (the only ledger write of a training)."""
    stored_metrics = {
        **scores.headline(),
        "baseline_mae": scores.baseline_mae,
        "improvement_over_baseline": scores.improvement,
    }
    training, _ = record_training(
        session,
        Training(
            batch_id=batch.id,
            decision_id=decision.id,
            mlflow_run_id=logged.run_id,
            model_name=settings.model_name,
            model_version=logged.version,
            training_batch_ids=data.batch_ids,
            metrics=stored_metrics,
            rows_train=len(data.train),
            rows_holdout=len(data.holdout),
            holdout_share=settings.holdout_share,
            reasons=list(decision.reasons or []),
        ),
    )
    return training
