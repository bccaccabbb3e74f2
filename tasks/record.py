"""Write the run summary of one batch: what happened to it at every step, and why.

``python -m tasks.record --batch-id N``

Reads the ledger (the batch, its validation, drift decision, training and promotion) and
writes ``reports/runs/batch_id=<id>/summary.json`` in the object store; the same summary is
the XCom result. It records whatever the ledger holds: a skipped or quarantined batch has no
training, a rejected challenger has ``promoted: false`` with the reasons. Idempotent: when the
stored summary already says the same, nothing is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from tasks.cli import BatchInputs, run_task
from tasks.ledger import Batch, DriftDecision, Ledger, Promotion, Training, Validation
from tasks.logs import get_logger
from tasks.settings import TaskSettings
from tasks.storage import open_store

log = get_logger(__name__)
#: metrics copied from the training's metrics into the summary, when present
SUMMARY_METRICS = ("mae", "rmse", "r2", "mape", "baseline_mae")


class RecordInputs(BatchInputs):
    """Inputs of tasks.record."""


def summary_key(batch_id: int) -> str:
    return f"reports/runs/batch_id={batch_id}/summary.json"


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
        "rows": batch.rows,
        "sha256": batch.sha256,
        "raw_key": batch.raw_key,
        "batch_status": batch.status,
        "schema_problems": list(batch.schema_problems or []),
        "validation_outcome": validation.outcome if validation else None,
        "validation_status": validation.status if validation else None,
        "rows_out": validation.rows_out if validation else None,
        "rows_dropped": validation.rows_dropped if validation else None,
        "validation_reasons": list(validation.reasons or []) if validation else [],
        "decision": decision.decision if decision else None,
        "decision_reasons": list(decision.reasons or []) if decision else [],
        "drift_share": decision.drift_share if decision else None,
        "reference_model_version": decision.reference_model_version if decision else None,
        "model_name": training.model_name if training else None,
        "model_version": training.model_version if training else None,
        "run_id": training.mlflow_run_id if training else None,
        "training_batch_ids": list(training.training_batch_ids or []) if training else [],
        "training_reasons": list(training.reasons or []) if training else [],
        **{name: metrics.get(name) for name in SUMMARY_METRICS},
        "promoted": promotion.promoted if promotion else None,
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


def run(inputs: RecordInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.open(settings.ledger_url)
    store = open_store(settings.storage_url, settings)
    summary = build_summary(*read_story(ledger, inputs.batch_id))
    key = summary_key(inputs.batch_id)
    data = json.dumps(summary, sort_keys=True, indent=2, default=str).encode()
    if store.exists(key) and store.get_bytes(key) == data:
        log.info("record.unchanged", batch_id=inputs.batch_id, key=key)
    else:
        store.put_bytes(key, data, content_type="application/json")
        log.info("record.written", batch_id=inputs.batch_id, key=key)
    return {**summary, "summary_key": key, "summary_uri": store.uri(key)}


def _money(value: Any) -> str:
    return f"${value:,.0f}" if isinstance(value, int | float) else "n/a"


def summary(result: dict[str, Any]) -> str:
    parts = [
        f"record: batch {result['batch_number']} (id {result['batch_id']}, {result['rows']:,} rows)"
    ]
    if result["validation_status"]:
        parts.append(f"{result['validation_status']} ({result['validation_outcome']})")
    if result["decision"]:
        reasons = "; ".join(result["decision_reasons"]) or "no reason recorded"
        parts.append(f"{result['decision']}: {reasons}")
    if result["model_version"]:
        parts.append(f"v{result['model_version']} MAE {_money(result['mae'])}")
    if result["promoted"] is not None:
        parts.append("promoted" if result["promoted"] else "not promoted")
    return " | ".join(parts) + f" -> {result['summary_uri']}"


def main(argv: Sequence[str] | None = None) -> int:
    return run_task("record", RecordInputs, run, argv, summary=summary, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
