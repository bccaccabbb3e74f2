"""The leaderboard in the ledger: every model version scored on one common holdout.

Each training is judged on the holdout of its own batches, so two versions' decision numbers
come from different rows and cannot be compared (v3 looked worse than v2 only because its
holdout was harder). The leaderboard scores every version on the same rows: the holdout of the
newest training (:func:`newest_holdout`), which :mod:`tasks.core.holdout` rebuilds exactly.
``tasks.promote`` writes the scores (:func:`record_score`) after its verdict; the Models page
reads them (:func:`board`). One home for the queries on ``version_scores``, so the writer and
the readers agree on what "the newest holdout" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tasks.core.ledger import Batch, Ledger, Training
from tasks.core.ledger_tables import VersionScore


@dataclass(frozen=True)
class Holdout:
    """The holdout of one training: the rows it held out of its batches (see module doc)."""

    batch_id: int  # the training's batch (version_scores.holdout_batch_id)
    batch_number: int | None
    model_version: str  # the version that training registered
    training_batch_ids: tuple[int, ...]
    share: float | None  # the training's holdout share (None: the setting's at the time)
    rows: int | None  # how many rows train held out


def newest_holdout(ledger: Ledger, model_name: str) -> Holdout | None:
    """The holdout of the newest training of ``model_name``; None before the first training."""
    with ledger.session() as session:
        row = session.execute(
            select(Training, Batch.batch_number)
            .join(Batch, Batch.id == Training.batch_id, isouter=True)
            .where(Training.model_name == model_name)
            .order_by(Training.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    training, batch_number = row
    return Holdout(
        batch_id=training.batch_id,
        batch_number=batch_number,
        model_version=str(training.model_version),
        training_batch_ids=tuple(training.training_batch_ids or ()),
        share=training.holdout_share,
        rows=training.rows_holdout,
    )


def scores_on(ledger: Ledger, model_name: str, holdout_batch_id: int) -> dict[str, VersionScore]:
    """Every recorded score of ``model_name`` on the holdout of ``holdout_batch_id``, by version."""
    with ledger.session() as session:
        rows = session.scalars(
            select(VersionScore).where(
                VersionScore.model_name == model_name,
                VersionScore.holdout_batch_id == holdout_batch_id,
            )
        ).all()
    return {str(row.model_version): row for row in rows}


def record_score(ledger: Ledger, score: VersionScore) -> tuple[VersionScore, bool]:
    """Insert ``score``; (the row, True), or (the row recorded first, False) when a concurrent
    run scored the same version on the same holdout (the unique constraint decides)."""
    try:
        with ledger.session() as session:
            session.add(score)
        return score, True
    except IntegrityError:
        existing = scores_on(ledger, score.model_name, score.holdout_batch_id).get(
            str(score.model_version)
        )
        if existing is None:
            raise
        return existing, False


def board(ledger: Ledger, model_name: str) -> dict[str, Any]:
    """What the Models page shows: the common holdout and every version's score on it.

    ``{"holdout": {...} | None, "scores": {version: {"mae", "rmse", "rows", "run_id",
    "scored_at"}}}``; a version missing from ``scores`` has not been scored on this holdout
    (never a score from another holdout).
    """
    holdout = newest_holdout(ledger, model_name)
    if holdout is None:
        return {"holdout": None, "scores": {}}
    scores = scores_on(ledger, model_name, holdout.batch_id)
    rows = next(iter(scores.values())).holdout_rows if scores else holdout.rows
    return {
        "holdout": {
            "batch_id": holdout.batch_id,
            "batch_number": holdout.batch_number,
            "model_version": holdout.model_version,
            "training_batch_ids": list(holdout.training_batch_ids),
            "rows": rows,
        },
        "scores": {
            version: {
                "mae": row.mae,
                "rmse": row.rmse,
                "rows": row.holdout_rows,
                "run_id": row.mlflow_run_id,
                "scored_at": row.scored_at,
            }
            for version, row in scores.items()
        },
    }
