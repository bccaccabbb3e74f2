"""Decide whether a curated batch justifies training: drift against the production model's data.

``python -m tasks.drift_check --batch-id N``

The reference is the data the production model was trained on, found by lineage (see
:mod:`tasks.core.reference`). Both sides are sampled (``DRIFT_SAMPLE_ROWS``, seeded) and
compared with Evidently 0.7 (``Report`` + ``DataDriftPreset``): a normed Wasserstein distance
on the numeric columns, Jensen-Shannon distance on status and state. The target is compared
as log10(price): prices are heavy-tailed (a few $10M+ listings dominate a distance on dollars,
and a normed distance on dollars barely moves when the whole lower half of the market
disappears), while on the log scale a shift of the price level shows as it is. Status and
state values the reference never had are counted on the whole batch. The measuring code is
:mod:`tasks.core.drift`, shared with monitor. The decision itself is
:func:`tasks.drift_decision.decide_drift` (pure).

The latest window of live traffic that ``tasks.monitor`` closed (``monitor_windows``) is one
more fact: the decision's rule says when it counts. It is recorded in the decision's details
(``live_window``), and the window is marked as taken into account by this batch
(``acted_on_batch_id``): a drifted window nobody took is "live drift, no labelled data yet"
(:func:`tasks.core.story.pending_live_drift`).

The decision, its reasons, per-column details and the Evidently report (HTML and JSON, under
``reports/drift/batch_id=N/``) are recorded in the ledger (``drift_decisions``). A quarantined
batch is a ``skip`` with the quarantine reason (no Evidently run). Any error - MLflow
unreachable, reference data missing, Evidently failing - fails the task (exit 1): it never
decides "train" by default. Idempotent: a batch that has its decision returns it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.cli import BatchInputs, Step
from tasks.core.drift import CATEGORICAL, NUMERIC, TARGET_COLUMN, drift_frame, run_evidently
from tasks.core.lake import drift_report_keys as report_keys
from tasks.core.lake import read_table
from tasks.core.ledger import DriftDecision, Ledger
from tasks.core.ledger_tables import MonitorWindow
from tasks.core.lifecycle_ledger import find_drift_decision, find_validation, record_drift_decision
from tasks.core.logs import get_logger
from tasks.core.monitor_ledger import latest_window, mark_acted_on
from tasks.core.reference import Reference, distinct_values, reference_of, sample_tables
from tasks.core.settings import TaskSettings
from tasks.core.storage import ObjectStore, open_store
from tasks.drift_check.decision import (
    DriftFacts,
    DriftMeasures,
    DriftThresholds,
    DriftVerdict,
    LiveWindow,
    decide_drift,
)

log = get_logger(__name__)

NEW_VALUE_COLUMNS = ("status", "state")
READ_COLUMNS = ("price", *NUMERIC, *CATEGORICAL)
#: the most drifted live features a decision names
LIVE_TOP_FEATURES = 3


class DriftInputs(BatchInputs):
    """Inputs of tasks.drift_check."""


def live_window_of(row: MonitorWindow) -> LiveWindow:
    """The decision's view of a monitor window: its drifted features, the most drifted first."""
    drifted = sorted(
        (
            (str(name), float(score["score"]))
            for name, score in (row.feature_scores or {}).items()
            if score.get("drifted")
        ),
        key=lambda item: -item[1],
    )
    return LiveWindow(
        window_id=row.id,
        decision=row.decision,  # type: ignore[arg-type]
        drift_share=row.drift_share,
        rows=int(row.rows),
        model_version=row.model_version,
        window_end=row.window_end,
        top_features=tuple(drifted[:LIVE_TOP_FEATURES]),
        reasons=tuple(row.reasons or ()),
    )


def live_details(live: LiveWindow, verdict: DriftVerdict) -> dict[str, Any]:
    """What the decision's details record of the window it read, and how it used it."""
    return {
        "window_id": live.window_id,
        "decision": live.decision,
        "drift_share": live.drift_share,
        "rows": live.rows,
        "model_version": live.model_version,
        "window_end": live.window_end.isoformat() if live.window_end else None,
        "top_features": [{"feature": f, "score": s} for f, s in live.top_features],
        "reasons": list(live.reasons),
        "used_as": "ground" if "live_drift" in verdict.grounds else "note",
    }


def thresholds_of(settings: TaskSettings) -> DriftThresholds:
    return DriftThresholds(
        share=settings.drift_share_threshold,
        target=settings.drift_target_threshold,
        min_train_rows=settings.min_train_rows,
        new_value_min_share=settings.drift_new_value_min_share,
    )


def new_values(
    store: ObjectStore, reference: Reference, current: pd.DataFrame
) -> dict[str, dict[str, int]]:
    """Status/state values of the whole batch that no reference batch has, with their rows."""
    found: dict[str, dict[str, int]] = {}
    for column in NEW_VALUE_COLUMNS:
        known = distinct_values(store, reference.curated_keys, column)
        counts = current[column].dropna().value_counts()
        fresh = {str(v): int(n) for v, n in counts.items() if v not in known}
        if fresh:
            found[column] = fresh
    return found


def _sanitize(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return value


def run(inputs: DriftInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    store = open_store(settings.storage_url, settings)
    batch = ledger.get_batch(inputs.batch_id)
    recorded = find_drift_decision(ledger, batch.id)
    if recorded is not None:
        return recorded_result(recorded)
    validation = find_validation(ledger, batch.id)
    if validation is None:
        raise LookupError(
            f"batch {batch.id} has no validation in the ledger: run "
            f"`python -m tasks.validate --batch-id {batch.id}` first"
        )
    limits = thresholds_of(settings)
    details: dict[str, Any] = {
        "thresholds": {
            "drift_share_threshold": limits.share,
            "drift_target_threshold": limits.target,
            "min_train_rows": limits.min_train_rows,
            "drift_new_value_min_share": limits.new_value_min_share,
            "drift_sample_rows": settings.drift_sample_rows,
        },
        "rows": int(validation.rows_out),
    }
    reference: Reference | None = None
    snapshot = None
    window = latest_window(ledger, settings.model_name)
    live = live_window_of(window) if window is not None else None
    if validation.status == "quarantined":
        verdict = decide_drift(
            DriftFacts(
                batch_rows=0,
                quarantined=True,
                quarantine_reasons=validation.reasons or [],
                live=live,
            ),
            limits,
        )
    else:
        if not validation.curated_key:
            raise LookupError(f"batch {batch.id} is curated but its curated_key is empty")
        from tasks.core import registry  # imports MLflow: only where the registry is asked

        champion = registry.champion(
            registry.client(settings.mlflow_tracking_uri), settings.model_name
        )
        current_all = read_table(store, validation.curated_key, READ_COLUMNS).to_pandas()
        states = sorted(current_all["state"].dropna().unique().tolist())
        details["states"] = len(states)
        measures = None
        if champion is not None:
            reference = reference_of(ledger, champion)
            details["reference_batch_ids"] = list(reference.batch_ids)
            if len(current_all) >= 2:  # a distance needs values; 0-1 rows skip for volume
                measures, snapshot = measure(
                    store, reference, current_all, batch.id, settings, limits, details
                )
        del current_all
        verdict = decide_drift(
            DriftFacts(
                batch_rows=int(validation.rows_out),
                states=states,
                has_champion=champion is not None,
                measures=measures,
                champion_version=str(champion.version) if champion is not None else None,
                live=live,
            ),
            limits,
        )
    if live is not None and verdict.live_window_id == live.window_id:
        details["live_window"] = live_details(live, verdict)
    result = persist(ledger, store, batch.id, verdict, details, reference, snapshot)
    if verdict.live_window_id is not None:
        # after the decision is stored: a failure before leaves the window pending, as it is
        mark_acted_on(ledger, verdict.live_window_id, batch.id)
        log.info(
            "drift_check.live_window",
            batch_id=batch.id,
            window_id=verdict.live_window_id,
            used_as=details["live_window"]["used_as"],
        )
    return result


def measure(
    store: ObjectStore,
    reference: Reference,
    current_all: pd.DataFrame,
    batch_id: int,
    settings: TaskSettings,
    limits: DriftThresholds,
    details: dict[str, Any],
) -> tuple[DriftMeasures, Any]:
    """Sample both sides, run Evidently, count new categories; fills ``details``."""
    n = settings.drift_sample_rows
    seed = settings.random_seed
    if len(current_all) > n:
        index = np.sort(
            np.random.default_rng([seed, batch_id]).choice(len(current_all), n, replace=False)
        )
        current = current_all.iloc[index].reset_index(drop=True)
    else:
        current = current_all
    ref = sample_tables(store, reference.curated_keys, reference.rows, READ_COLUMNS, n, [seed, 0])
    if ref.empty:
        raise ValueError(
            f"the reference batches {list(reference.batch_ids)} hold no rows: cannot measure drift"
        )
    columns, snapshot = run_evidently(
        drift_frame(current),
        drift_frame(ref),
        share=limits.share,
        column_thresholds={TARGET_COLUMN: limits.target},
    )
    measures = DriftMeasures(
        columns=columns,
        target_column=TARGET_COLUMN,
        new_values=new_values(store, reference, current_all),
    )
    details.update(
        {
            "sample_rows": {"current": len(current), "reference": len(ref)},
            "columns": [
                {
                    "column": c.column,
                    "method": c.method,
                    "score": c.score,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in columns
            ],
            "new_values": {k: dict(v) for k, v in measures.new_values.items()},
            "target_column": TARGET_COLUMN,
            "target_distance": measures.target().score,
            "drifted_columns": measures.drifted_columns,
            "drift_share": measures.drift_share,
        }
    )
    return measures, snapshot


def persist(
    ledger: Ledger,
    store: ObjectStore,
    batch_id: int,
    verdict: DriftVerdict,
    details: dict[str, Any],
    reference: Reference | None,
    snapshot: Any,
) -> dict[str, Any]:
    json_key, html_key = report_keys(batch_id)
    details = _sanitize(details)
    details["grounds"] = list(verdict.grounds)
    details.setdefault("reference_batch_ids", [])
    document = {
        "batch_id": batch_id,
        "decision": verdict.decision,
        "reasons": verdict.reasons,
        "reference_model_version": reference.champion.version if reference else None,
        "details": details,
        "evidently": snapshot.dict() if snapshot is not None else None,
    }
    store.put_bytes(
        json_key,
        json.dumps(_sanitize(document), indent=2, default=str).encode(),
        content_type="application/json",
    )
    report_html_key = None
    if snapshot is not None:
        report_html_key = html_key
        store.put_bytes(
            html_key,
            snapshot.get_html_str(as_iframe=False).encode(),
            content_type="text/html; charset=utf-8",
        )
    row, created = record_drift_decision(
        ledger,
        DriftDecision(
            batch_id=batch_id,
            decision=verdict.decision,
            reasons=verdict.reasons,
            drift_share=details.get("drift_share"),
            details=details,
            reference_model_version=document["reference_model_version"],
            report_key=json_key,
            report_html_key=report_html_key,
        ),
    )
    if not created:
        log.warning("drift_check.concurrent_decision", batch_id=batch_id, decision_id=row.id)
    return recorded_result(row)


def recorded_result(row: DriftDecision) -> dict[str, Any]:
    """The XCom result of a decision in the ledger (the same on every re-run)."""
    details = row.details or {}
    return {
        "batch_id": row.batch_id,
        "decision": row.decision,
        "reasons": list(row.reasons or []),
        "drift_share": row.drift_share,
        "target_distance": details.get("target_distance"),
        "drifted_columns": list(details.get("drifted_columns") or []),
        "reference_model_version": row.reference_model_version,
        "reference_batch_ids": list(details.get("reference_batch_ids") or []),
        "decision_id": row.id,
        "report_key": row.report_key,
        "report_html_key": row.report_html_key,
    }


def summary(result: dict[str, Any]) -> str:
    ref = result["reference_model_version"]
    against = f" (reference: model v{ref})" if ref else ""
    return (
        f"drift_check: batch {result['batch_id']} -> {result['decision']}{against}: "
        + "; ".join(result["reasons"])
    )


STEP = Step(
    "drift_check",
    DriftInputs,
    run,
    summary,
    doc=__doc__,
    preload_modules=(
        "evidently.presets",
        "mlflow.tracking",
    ),
    preload_env={"DO_NOT_TRACK": "1"},
)
main = STEP.main
