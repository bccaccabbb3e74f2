"""Write the run summary of one batch: what happened to it at every step, and why.

``python -m tasks.record --batch-id N``

Reads the ledger (the batch, its validation, drift decision, training and promotion) and
writes ``reports/runs/batch_id=<id>/summary.json`` in the object store; the same summary is
the XCom result. It records whatever the ledger holds: a skipped or quarantined batch has no
training, a rejected challenger has ``promoted: false`` with the reasons. Live drift that no
batch took into account yet is part of it (``pending_live_drift``: "live drift, no labelled
data yet: ..."). Idempotent: when the
stored summary already says the same, nothing is written.

Every batch's run ends here: record inserts the batch's ``batch_records`` row (once), the
mark fetch looks for. A validated batch without it was interrupted, and the next fetch
returns it again to finish it.
"""

from __future__ import annotations

import json
from typing import Any

from tasks.core.cli import BatchInputs, Step
from tasks.core.lake import summary_key
from tasks.core.ledger import BatchRecord, Ledger
from tasks.core.lifecycle_ledger import record_batch_record
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tasks.core.story import build_summary, pending_live_drift, read_story

log = get_logger(__name__)


class RecordInputs(BatchInputs):
    """Inputs of tasks.record."""


def run(inputs: RecordInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    store = open_store(settings.storage_url, settings)
    summary = build_summary(*read_story(ledger, inputs.batch_id))
    summary["recorded"] = True  # the run ends here (the batch_records row follows the summary)
    summary["pending_live_drift"] = pending_live_drift(ledger, settings.model_name)
    key = summary_key(inputs.batch_id)
    data = json.dumps(summary, sort_keys=True, indent=2, default=str).encode()
    if store.exists(key) and store.get_bytes(key) == data:
        log.info("record.unchanged", batch_id=inputs.batch_id, key=key)
    else:
        store.put_bytes(key, data, content_type="application/json")
        log.info("record.written", batch_id=inputs.batch_id, key=key)
    # the mark that the batch's run ended: without it, the next fetch returns the batch again
    _, created = record_batch_record(ledger, BatchRecord(batch_id=inputs.batch_id, summary_key=key))
    if created:
        log.info("record.finished", batch_id=inputs.batch_id)
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
    parts += result.get("pending_live_drift") or []
    return " | ".join(parts) + f" -> {result['summary_uri']}"


STEP = Step("record", RecordInputs, run, summary, doc=__doc__)
main = STEP.main
