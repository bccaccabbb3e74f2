"""Promote the challenger this batch's training registered, if it beats the champion.

``python -m tasks.promote --batch-id N``.

The challenger (the version ``train`` registered for batch N) and the champion (the version
with the alias ``production``, if any) are compared on the SAME rows: the holdout of the
challenger's training batches. The challenger's metrics are those train measured on that
holdout (:func:`measured_by_train`); promote rebuilds the rows with :mod:`tasks.core.holdout` to
score the champion, loaded as serving loads it, and checks that it rebuilt as many rows as
train held out. Without a champion nothing is scored. :func:`tasks.promotion_rule.decide`
gives the verdict and its reasons. On promotion the alias ``production`` moves to the
challenger and its stage becomes Production (older versions archived); either way the
version gets tags (``promotion_reasons``, ``promoted``, ``promoted_at`` or ``evaluated_at``)
and the ledger a ``promotions`` row.

Live traffic (:mod:`tasks.promote.shadow`): when serving's shadow scored live requests with the
challenger beside the champion, the comparison is one more reason; with
``PROMOTE_MIN_SHADOW_REQUESTS`` a challenger the rule would promote is *held* until the shadow
has compared that many requests. A held promotion is recorded and a re-run evaluates it again.

Concurrency: the alias is re-read just before it moves, inside :func:`promotion_lock`
(an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite); if it changed since the
evaluation the task fails and asks for a re-run (which evaluates against the new champion).
Idempotent: a batch with a promotions row returns it (unless it was held).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from tasks.core import evaluation, holdout, model, registry
from tasks.core.cli import BatchInputs, Step
from tasks.core.ledger import Ledger, Promotion, Training
from tasks.core.lifecycle_ledger import (
    find_drift_decision,
    find_promotion,
    find_training,
    record_promotion,
)
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings
from tasks.core.shadow_ledger import shadow_pairs
from tasks.core.storage import ObjectStore, open_store
from tasks.core.training_ledger import (
    CuratedBatch,
    curated_batches_by_id,
    promotion_lock,
    read_curated,
)
from tasks.promote import leaderboard, shadow
from tasks.promote import rule as promotion_rule

log = get_logger(__name__)


class PromoteInputs(BatchInputs):
    """Inputs of tasks.promote."""


class PromotionRefusedError(RuntimeError):
    """Nothing to promote for this batch, or the registry changed under the evaluation."""


def load_holdout(store: ObjectStore, batches: Sequence[CuratedBatch], share: float) -> pd.DataFrame:
    """The holdout rows of ``batches`` (priced rows only), exactly as ``train`` held them out."""
    parts = []
    for batch in batches:
        frame = read_curated(store, batch)
        priced = pd.to_numeric(frame["price"], errors="coerce")
        frame = frame.loc[priced.notna() & (priced > 0)]
        parts.append(frame.loc[holdout.holdout_mask(frame, share)])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def score_version(settings: TaskSettings, version: str, rows: pd.DataFrame) -> dict[str, float]:
    """Metrics of one registered version on ``rows``, loaded the way serving loads it (pyfunc)."""
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    loaded = mlflow.pyfunc.load_model(registry.model_uri(settings.model_name, version))
    predictions = np.asarray(loaded.predict(model.feature_frame(rows)), dtype=np.float64)
    return evaluation.regression_metrics(model.target(rows), predictions, rows["status"])


def measured_by_train(training: Training) -> dict[str, float] | None:
    """The challenger's holdout metrics as train measured them (None if it lacks MAE or RMSE).

    Train scored the fitted model on the holdout of its training batches: the rows promote
    rebuilds, by construction (:mod:`tasks.core.holdout`), with the same model (its saved copy
    predicts the same). Scoring it again here cost 3-5 s at full scale for the same numbers.
    """
    recorded = {
        k: float(v)
        for k, v in (training.metrics or {}).items()
        if k not in ("baseline_mae", "improvement_over_baseline") and v is not None
    }
    if not {"mae", "rmse"} <= recorded.keys():
        return None
    if training.rows_holdout is not None:
        recorded["rows"] = float(training.rows_holdout)
    return recorded


def check_same_rows(rows: pd.DataFrame, training: Training) -> None:
    """The holdout promote rebuilt has as many rows as train's, or the comparison is off."""
    if training.rows_holdout is not None and len(rows) != training.rows_holdout:
        raise PromotionRefusedError(
            f"the holdout rebuilt from batches {list(training.training_batch_ids or [])} has "
            f"{len(rows):,} rows, train held out {training.rows_holdout:,}: the curated data "
            "changed since the training; train a new challenger on the data as it is now"
        )


def _result(promotion: Promotion, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "batch_id": promotion.batch_id,
        "promotion_id": promotion.id,
        "model_name": promotion.model_name,
        "promoted": promotion.promoted,
        "challenger_version": promotion.challenger_version,
        "champion_version": promotion.champion_version,
        "reasons": list(promotion.reasons or []),
        "challenger_metrics": dict(promotion.challenger_metrics or {}),
        "champion_metrics": dict(promotion.champion_metrics or {}),
        **(extra or {}),
    }


def _required_training(ledger: Ledger, batch_id: int) -> Training:
    training = find_training(ledger, batch_id)
    if training is not None:
        return training
    decision = find_drift_decision(ledger, batch_id)
    if decision is None:
        why = "it has no drift decision either"
    else:
        why = f"its drift decision is {decision.decision!r}: " + (
            "; ".join(decision.reasons or []) or "no reasons recorded"
        )
    raise PromotionRefusedError(
        f"batch {batch_id} has no training, so there is no challenger to promote ({why}); "
        f"promote runs only after `python -m tasks.train --batch-id {batch_id}` succeeded"
    )


def run(inputs: PromoteInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    batch = ledger.get_batch(inputs.batch_id)
    existing = find_promotion(ledger, batch.id)
    if existing is not None and not existing.held:
        log.info("promote.already_done", batch_id=batch.id, promoted=existing.promoted)
        return _result(existing, {"status": "existing", "alias_moved": False})
    training = _required_training(ledger, batch.id)
    if training.model_name != settings.model_name:
        raise PromotionRefusedError(
            f"batch {batch.id} trained model {training.model_name!r} but MODEL_NAME is "
            f"{settings.model_name!r}"
        )
    from threadpoolctl import threadpool_limits

    # MLflow prints run URLs to stdout; stdout carries only the task's summary line
    with threadpool_limits(limits=settings.train_threads or None), redirect_stdout(sys.stderr):
        result = _promote(ledger, settings, batch.id, training)
        return {**result, **leaderboard.score_versions(ledger, settings)}


def _promote(
    ledger: Ledger, settings: TaskSettings, batch_id: int, training: Training
) -> dict[str, Any]:
    client = registry.client(settings.mlflow_tracking_uri)
    name, challenger = settings.model_name, str(training.model_version)
    registry.get_version(client, name, challenger)  # fails clearly if it is gone
    share = training.holdout_share or settings.holdout_share
    champion = registry.champion_version(client, name)
    log.info("promote.start", batch_id=batch_id, challenger=challenger, champion=champion)

    challenger_metrics: dict[str, float] = {}
    champion_metrics: dict[str, float] = {}
    if champion == challenger:
        promote = True
        reasons = [f"v{challenger} already carries the alias production (an earlier run moved it)"]
    else:
        challenger_metrics = measured_by_train(training)
        if champion is not None or challenger_metrics is None:
            store = open_store(settings.storage_url, settings)
            batches = curated_batches_by_id(ledger, list(training.training_batch_ids or []))
            rows = load_holdout(store, batches, share)
            log.info("promote.holdout", rows=len(rows), batches=[b.batch_id for b in batches])
            check_same_rows(rows, training)
            if challenger_metrics is None:
                log.info("promote.scoring_challenger", reason="train recorded no MAE and RMSE")
                challenger_metrics = score_version(settings, challenger, rows)
            if champion is not None:
                champion_metrics = score_version(settings, champion, rows)
        promote, reasons = promotion_rule.decide(
            challenger_metrics,
            champion_metrics if champion is not None else None,
            champion_version=champion,
            min_mae_improvement=settings.promotion_min_mae_improvement,
            max_rmse_regression=settings.promotion_max_rmse_regression,
        )
    promote, held, reasons = _shadow_reasons(
        ledger, settings, batch_id, challenger, champion, promote, reasons
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with promotion_lock(ledger, name) as session:
        recorded = find_promotion(session, batch_id)
        if recorded is not None and not recorded.held:
            # a concurrent run for the same batch finished first
            return _result(recorded, {"status": "existing", "alias_moved": False})
        current = registry.champion_version(client, name)
        if current != champion and current != challenger:
            raise PromotionRefusedError(
                f"the alias production moved from {_v(champion)} to {_v(current)} while v"
                f"{challenger} was evaluated; re-run promote for batch {batch_id} to compare "
                "against the new champion"
            )
        tags: dict[str, Any] = {
            "promotion_reasons": reasons,
            "promoted": str(promote).lower(),
            "promotion_batch_id": str(batch_id),
            "champion_at_evaluation": champion or "none",
        }
        moved = promote and current != challenger
        if moved:
            registry.make_production(client, name, challenger)
            tags["promoted_at"] = now
        elif promote:
            tags["confirmed_at"] = now
        else:
            tags["evaluated_at"] = now
        registry.set_version_tags(client, name, challenger, tags)
        promotion = Promotion(
            batch_id=batch_id,
            training_id=training.id,
            model_name=name,
            challenger_version=challenger,
            champion_version=champion,
            promoted=promote,
            held=held,
            reasons=reasons,
            challenger_metrics=challenger_metrics,
            champion_metrics=champion_metrics,
        )
        if recorded is not None:  # held before: this evaluation replaces that one
            session.delete(recorded)
            session.flush()
        promotion, created = record_promotion(session, promotion)
        if not created:
            return _result(promotion, {"status": "existing", "alias_moved": False})
    log.info(
        "promote.decided",
        batch_id=batch_id,
        promoted=promote,
        challenger=challenger,
        champion=champion,
        reasons=reasons,
    )
    status = ("promoted" if moved else "already_production") if promote else "rejected"
    status = "held" if held else status
    return _result(promotion, {"status": status, "alias_moved": moved})


def _shadow_reasons(
    ledger: Ledger,
    settings: TaskSettings,
    batch_id: int,
    challenger: str,
    champion: str | None,
    promote: bool,
    reasons: list[str],
) -> tuple[bool, bool, list[str]]:
    """(promote, held, reasons) with the live shadow comparison and the minimum shadow period
    (:mod:`tasks.promote.shadow`); nothing to compare without a champion other than it."""
    if champion is None or champion == challenger:
        return promote, False, reasons
    pairs = shadow_pairs(ledger, settings.model_name, challenger, champion)
    comparison = shadow.compare(
        pairs.request_ids, pairs.production, pairs.challenger, since=pairs.first_at
    )
    reasons = [*reasons, shadow.reason(comparison, challenger, champion)]
    return shadow.hold(
        promote,
        reasons,
        comparison,
        min_requests=settings.promote_min_shadow_requests,
        batch_id=batch_id,
    )


def _v(version: str | None) -> str:
    return f"v{version}" if version else "no version"


def summary(result: dict[str, Any]) -> str:
    if result.get("status") == "held":
        verdict = "HELD (not promoted yet)"
    elif result.get("alias_moved"):
        verdict = "PROMOTED"
    elif result["promoted"]:
        verdict = "already production, the alias did not move"
    else:
        verdict = "kept champion"
    if result.get("status") == "existing":
        verdict = f"recorded earlier ({verdict.replace('PROMOTED', 'promoted')}); nothing changed"
    champion = _v(result.get("champion_version"))
    return (
        f"promote: batch {result['batch_id']}: {verdict} - challenger "
        f"v{result['challenger_version']} vs champion {champion}: " + "; ".join(result["reasons"])
    )


STEP = Step(
    "promote",
    PromoteInputs,
    run,
    summary,
    doc=__doc__,
    preload_modules=(
        "mlflow.pyfunc",
        "mlflow.sklearn",
        "skops.io",
        "threadpoolctl",
    ),
)
main = STEP.main
