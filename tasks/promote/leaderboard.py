"""Score every registered version on the newest holdout: one fair leaderboard.

``tasks.promote`` calls :func:`score_versions` after its verdict; ``python -m tasks.promote
--leaderboard`` runs it alone (after a failure, or for versions registered by hand).

The common holdout is the holdout of the model's newest training
(:func:`tasks.core.leaderboard.newest_holdout`). A version already scored on it is not scored
again. Two numbers on exactly these rows are already in the ledger and are reused rather than
recomputed (3-5 s each at full scale): the newest training's own metrics (train measured its
version on this holdout) and its promotion's champion metrics (promote scored the champion on
these rows). Every other version is loaded once, as serving loads it, and scored on the rows
rebuilt by :mod:`tasks.core.holdout`, read only when some version needs them. A version that
cannot be loaded or scored is named in the log and in the result's ``leaderboard_skipped``, and
nothing is recorded for it: the Models page shows it as "not scored", never with a number from
another holdout.
"""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from typing import Any

import pandas as pd
from sqlalchemy import select

from tasks.core import registry
from tasks.core.cli import Step, TaskInputs
from tasks.core.leaderboard import Holdout, newest_holdout, record_score, scores_on
from tasks.core.ledger import Ledger, Promotion, Training, VersionScore
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tasks.core.training_ledger import curated_batches_by_id

log = get_logger(__name__)


class LeaderboardError(RuntimeError):
    """The common holdout cannot be rebuilt as train held it out."""


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (10**9, version)


def known_scores(ledger: Ledger, holdout: Holdout) -> dict[str, dict[str, float]]:
    """Metrics on ``holdout``'s rows that the ledger already holds, by version (module doc)."""
    known: dict[str, dict[str, float]] = {}
    with ledger.session() as session:
        training = session.scalar(select(Training).where(Training.batch_id == holdout.batch_id))
        promotion = session.scalar(select(Promotion).where(Promotion.batch_id == holdout.batch_id))
    metrics = dict(training.metrics or {}) if training is not None else {}
    if _complete(metrics):
        known[holdout.model_version] = metrics
    if promotion is not None and promotion.champion_version:
        champion = dict(promotion.champion_metrics or {})
        if _complete(champion):
            known[str(promotion.champion_version)] = champion
    return known


def _complete(metrics: dict[str, Any]) -> bool:
    return all(isinstance(metrics.get(k), int | float) for k in ("mae", "rmse"))


def _holdout_rows(ledger: Ledger, settings: TaskSettings, holdout: Holdout) -> pd.DataFrame:
    from tasks.promote.step import load_holdout  # step.py imports this module

    store = open_store(settings.storage_url, settings)
    batches = curated_batches_by_id(ledger, list(holdout.training_batch_ids))
    rows = load_holdout(store, batches, holdout.share or settings.holdout_share)
    if holdout.rows is not None and len(rows) != holdout.rows:
        raise LeaderboardError(
            f"the holdout of batch {holdout.batch_id} rebuilt from batches "
            f"{list(holdout.training_batch_ids)} has {len(rows):,} rows, train held out "
            f"{holdout.rows:,}: the curated data changed since that training; train again on "
            "the data as it is now, then run `python -m tasks.promote --leaderboard`"
        )
    return rows


def score_versions(ledger: Ledger, settings: TaskSettings) -> dict[str, Any]:
    """Score every registered version lacking a score on the newest holdout; what was done.

    Returns ``leaderboard_holdout_batch_id``, ``leaderboard_scored`` (versions scored now) and
    ``leaderboard_skipped`` (versions that could not be loaded or scored, e.g. ``"v3"``).
    """
    name = settings.model_name
    holdout = newest_holdout(ledger, name)
    result: dict[str, Any] = {
        "leaderboard_holdout_batch_id": holdout.batch_id if holdout else None,
        "leaderboard_scored": [],
        "leaderboard_skipped": [],
    }
    if holdout is None:
        return result
    client = registry.client(settings.mlflow_tracking_uri)
    registered = {str(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    scored = scores_on(ledger, name, holdout.batch_id)
    missing = sorted(set(registered) - set(scored), key=_version_key)
    if not missing:
        log.info("leaderboard.up_to_date", holdout_batch_id=holdout.batch_id)
        return result
    # the recorded numbers say nothing of their row count when train did not record it
    known = known_scores(ledger, holdout) if holdout.rows is not None else {}
    rows: pd.DataFrame | None = None
    for version in missing:
        metrics = known.get(version)
        holdout_rows = holdout.rows
        if metrics is None:
            from tasks.promote.step import score_version  # step.py imports this module

            if rows is None:
                rows = _holdout_rows(ledger, settings, holdout)
            holdout_rows = len(rows)
            try:
                metrics = score_version(settings, version, rows)
            except Exception as exc:  # a broken or deleted artifact: skip it, and say so
                log.warning(
                    "leaderboard.version_skipped",
                    version=version,
                    holdout_batch_id=holdout.batch_id,
                    error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                )
                result["leaderboard_skipped"].append(f"v{version}")
                continue
        score, _ = record_score(
            ledger,
            VersionScore(
                model_name=name,
                model_version=version,
                holdout_batch_id=holdout.batch_id,
                holdout_rows=int(holdout_rows or 0),
                mae=float(metrics["mae"]),
                rmse=float(metrics["rmse"]),
                mlflow_run_id=registered[version].run_id,
            ),
        )
        log.info(
            "leaderboard.scored",
            version=version,
            holdout_batch_id=holdout.batch_id,
            mae=round(score.mae, 2),
            reused=version in known,
        )
        result["leaderboard_scored"].append(f"v{version}")
    return result


class LeaderboardInputs(TaskInputs):
    """Inputs of ``python -m tasks.promote --leaderboard``: none (MODEL_NAME says which model)."""


def run(inputs: LeaderboardInputs, settings: TaskSettings) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    # MLflow prints run URLs to stdout; stdout carries only the task's summary line
    with threadpool_limits(limits=settings.train_threads or None), redirect_stdout(sys.stderr):
        return {"model_name": settings.model_name, **score_versions(Ledger.of(settings), settings)}


def summary(result: dict[str, Any]) -> str:
    holdout = result["leaderboard_holdout_batch_id"]
    if holdout is None:
        return (
            f"promote --leaderboard: {result['model_name']} has no training yet, nothing to score"
        )
    scored = ", ".join(result["leaderboard_scored"]) or "none (every version already scored)"
    line = f"promote --leaderboard: holdout of batch {holdout}: scored {scored}"
    if result["leaderboard_skipped"]:
        line += (
            f"; SKIPPED (could not load, see the log) {', '.join(result['leaderboard_skipped'])}"
        )
    return line


STEP = Step(
    "promote",
    LeaderboardInputs,
    run,
    summary,
    doc=__doc__,
    preload_modules=("mlflow.pyfunc", "mlflow.sklearn", "skops.io", "threadpoolctl"),
)
