"""The story of every batch and every model version, read from the ledger.

One home for what the pipeline's readers share: ``tasks.record`` writes a batch's story,
``make demo`` prints it, serving and the UI show it. Pure builders (:func:`build_summary`,
:func:`history_entry`) turn ledger rows into plain dicts; the readers do one transaction each.
There is at most one row of each step per batch (a unique index on ``batch_id``); a batch
is one delivery of the API (``delivery`` > 1: another sample served under the same number).

Live drift that no batch took into account yet is part of the story too
(:func:`pending_live_drift`): the monitor saw the users ask about other houses, the pipeline
was started, but the API had no new labelled batch to train on. It is never silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from tasks.core.ledger import (
    Batch,
    BatchRecord,
    DriftDecision,
    Ledger,
    Promotion,
    Training,
    Validation,
)
from tasks.core.ledger_tables import MonitorWindow
from tasks.core.monitor_ledger import latest_window

#: metrics copied from the training's metrics into the summary, when present
SUMMARY_METRICS = ("mae", "rmse", "r2", "mape", "baseline_mae")
#: the step records that make up a batch's story, in the pipeline's order
STEP_RECORDS = (Validation, DriftDecision, Training, Promotion)


def _latest(rows: Sequence[Any]) -> Any | None:
    return max(rows, key=lambda row: row.id) if rows else None


def outcome_line(summary: dict[str, Any]) -> str:
    """One phrase for the batch's fate, for tables and the summary line."""
    if summary["validation_status"] is None:
        return "not validated yet"
    if summary["decision"] is None:
        return f"{summary['validation_status']}, no drift decision yet"
    if summary["decision"] == "skip":
        return "training skipped"
    if summary["model_version"] is None:
        return "training decided, no model yet"
    if summary["promoted"] is None:
        return f"trained v{summary['model_version']}, not evaluated yet"
    verb = "promoted" if summary["promoted"] else "rejected"
    return f"trained v{summary['model_version']}, {verb}"


def build_summary(
    batch: Batch,
    validation: Validation | None,
    decision: DriftDecision | None,
    training: Training | None,
    promotion: Promotion | None,
) -> dict[str, Any]:
    """The batch's story from its ledger rows (pure: no I/O)."""
    metrics = dict(training.metrics or {}) if training is not None else {}
    summary: dict[str, Any] = {
        "batch_id": batch.id,
        "group_number": batch.group_number,
        "day": batch.day,
        "batch_number": batch.batch_number,
        "delivery": batch.delivery,
        "rows": batch.rows,
        "sha256": batch.sha256,
        "raw_key": batch.raw_key,
        "payload_key": batch.payload_key,
        "batch_status": batch.status,
        "schema_problems": list(batch.schema_problems or []),
        "validation_outcome": validation.outcome if validation else None,
        "validation_status": validation.status if validation else None,
        "rows_out": validation.rows_out if validation else None,
        "rows_dropped": validation.rows_dropped if validation else None,
        "validation_reasons": list(validation.reasons or []) if validation else [],
        "validation_report_key": validation.report_key if validation else None,
        "validation_report_html_key": validation.report_html_key if validation else None,
        "decision": decision.decision if decision else None,
        "decision_reasons": list(decision.reasons or []) if decision else [],
        "drift_share": decision.drift_share if decision else None,
        "reference_model_version": decision.reference_model_version if decision else None,
        "drift_report_key": decision.report_key if decision else None,
        "drift_report_html_key": decision.report_html_key if decision else None,
        "model_name": training.model_name if training else None,
        "model_version": training.model_version if training else None,
        "run_id": training.mlflow_run_id if training else None,
        "training_batch_ids": list(training.training_batch_ids or []) if training else [],
        "training_reasons": list(training.reasons or []) if training else [],
        "rows_train": training.rows_train if training else None,
        "rows_holdout": training.rows_holdout if training else None,
        **{name: metrics.get(name) for name in SUMMARY_METRICS},
        "promoted": promotion.promoted if promotion else None,
        "promotion_held": bool(promotion.held) if promotion else False,
        "challenger_version": promotion.challenger_version if promotion else None,
        "champion_version": promotion.champion_version if promotion else None,
        "promotion_reasons": list(promotion.reasons or []) if promotion else [],
    }
    summary["outcome"] = outcome_line(summary)
    return summary


def read_story(
    ledger: Ledger, batch_id: int
) -> tuple[Batch, Validation | None, DriftDecision | None, Training | None, Promotion | None]:
    """The batch and its latest record of each step (one transaction)."""
    with ledger.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(
                f"no batch with id {batch_id} in the ledger: pass the batch_id that fetch "
                "returned (its XCom), for the same LEDGER_URL"
            )
        rows = [
            _latest(list(session.scalars(select(model).where(model.batch_id == batch_id))))
            for model in (Validation, DriftDecision, Training, Promotion)
        ]
    return batch, *rows  # type: ignore[return-value]


def batch_summaries(
    ledger: Ledger, group_number: int | None = None, day: str | None = None
) -> list[dict[str, Any]]:
    """Every batch's story (oldest batch first), optionally of one group and day.

    Each also says whether its run ended (``recorded``: record wrote its ``batch_records``
    row); a validated batch without it was interrupted, or is running now.
    """
    query = select(Batch).order_by(Batch.id)
    if group_number is not None:
        query = query.where(Batch.group_number == group_number)
    if day is not None:
        query = query.where(Batch.day == day)
    with ledger.session() as session:
        batches = list(session.scalars(query))
        ids = [batch.id for batch in batches]
        latest: list[dict[int, Any]] = []
        for model in STEP_RECORDS:
            rows = session.scalars(select(model).where(model.batch_id.in_(ids))) if ids else []
            by_batch: dict[int, Any] = {}
            for row in rows:
                if row.batch_id not in by_batch or row.id > by_batch[row.batch_id].id:
                    by_batch[row.batch_id] = row
            latest.append(by_batch)
        recorded = set(
            session.scalars(select(BatchRecord.batch_id).where(BatchRecord.batch_id.in_(ids)))
            if ids
            else []
        )
    summaries = []
    for batch in batches:
        summary = build_summary(batch, *(records.get(batch.id) for records in latest))
        summary["recorded"] = batch.id in recorded  # False: its run has not ended (yet)
        summaries.append(summary)
    return summaries


def history_entry(
    training: Training, batch: Batch | None, promotion: Promotion | None
) -> dict[str, Any]:
    """One model version's history: why it was trained, how it scored, its verdict (pure)."""
    metrics = {k: v for k, v in (training.metrics or {}).items() if not k.startswith("_")}
    return {
        "model_name": training.model_name,
        "model_version": training.model_version,
        "training_id": training.id,
        "batch_id": training.batch_id,
        "batch_number": batch.batch_number if batch else None,
        "run_id": training.mlflow_run_id,
        "trained_at": training.created_at,
        "training_batch_ids": list(training.training_batch_ids or []),
        "training_reasons": list(training.reasons or []),
        "metrics": metrics,
        "rows_train": training.rows_train,
        "rows_holdout": training.rows_holdout,
        "holdout_share": training.holdout_share,
        "promoted": promotion.promoted if promotion else None,
        "promotion_held": bool(promotion.held) if promotion else False,
        "promotion_reasons": list(promotion.reasons or []) if promotion else [],
        "champion_version": promotion.champion_version if promotion else None,
        "evaluated_at": promotion.created_at if promotion else None,
    }


def model_history(ledger: Ledger, model_name: str) -> list[dict[str, Any]]:
    """Every trained version of ``model_name`` (oldest first) with its promotion verdict."""
    with ledger.session() as session:
        trainings = list(
            session.scalars(
                select(Training).where(Training.model_name == model_name).order_by(Training.id)
            )
        )
        ids = [t.id for t in trainings]
        promotions: dict[int, Promotion] = {}
        if ids:
            for row in session.scalars(
                select(Promotion).where(Promotion.training_id.in_(ids)).order_by(Promotion.id)
            ):
                promotions[row.training_id] = row  # the newest verdict wins
        batches = {
            b.id: b
            for b in session.scalars(
                select(Batch).where(Batch.id.in_([t.batch_id for t in trainings]))
            )
        }
    return [history_entry(t, batches.get(t.batch_id), promotions.get(t.id)) for t in trainings]


def pending_live_drift_line(window: MonitorWindow | None) -> str | None:
    """ "live drift, no labelled data yet: ..." when ``window`` (the latest live window) drifted
    and no batch's drift_check took it into account (``acted_on_batch_id`` NULL); else None."""
    if window is None or window.decision != "drifted" or window.acted_on_batch_id is not None:
        return None
    drifted = sorted(
        (name for name, score in (window.feature_scores or {}).items() if score.get("drifted")),
        key=lambda name: -float(window.feature_scores[name]["score"]),
    )
    share = "n/a" if window.drift_share is None else f"{window.drift_share:.2f}"
    end = f" up to {window.window_end:%Y-%m-%d %H:%M}" if window.window_end else ""
    features = f": {', '.join(drifted)}" if drifted else ""
    why = f"; {'; '.join(window.reasons)}" if window.reasons else ""
    return (
        f"live drift, no labelled data yet: window {window.id} (drift share {share} against "
        f"v{window.model_version}, {window.rows:,} requests{end}{features}{why}) - no batch has "
        "been checked since: the API had no new labelled batch to train on"
    )


def pending_live_drift(ledger: Ledger, model_name: str) -> list[str]:
    """The live drift of ``model_name`` no batch took into account yet: zero or one line.

    Only the latest window counts, as in drift_check: an older drifted window that a newer one
    replaced will never be a reason, so it is not pending either."""
    line = pending_live_drift_line(latest_window(ledger, model_name))
    return [line] if line else []
