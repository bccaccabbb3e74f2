"""Compare live requests with the production model's training data: one window of traffic.

``python -m tasks.monitor [--until ISO]``

Reads the inference log (``inference_log``, written by serving) from the row after the last
window it consumed up to the newest row logged before ``window_end``, which is
``MONITOR_SETTLE_SECONDS`` before ``--until`` (default: now; the DAG passes its
``data_interval_end``): serving inserts in batches, so a row logged a moment ago may still be
in a transaction that has not committed, and would be skipped for good. Each row is read by
one consumed window only, even when two monitors run at once (see
:mod:`tasks.core.monitor_ledger`).

Fewer rows than ``MONITOR_MIN_ROWS``: ``too_few_rows``, and the rows wait for the next window.
Otherwise the input features (live traffic has no price) are compared with the production
model's training batches by the same Evidently code as drift_check (:mod:`tasks.core.drift`,
:mod:`tasks.core.reference`), both sides sampled to ``MONITOR_SAMPLE_ROWS`` (seeded), and
:func:`tasks.monitor.decision.decide_window` says ``stable`` or ``drifted`` with reasons. The
Evidently report (HTML and JSON) goes to ``reports/monitor/logs=<first>-<last>/`` in the lake,
the window to the ledger's ``monitor_windows``. Idempotent: a run whose ``window_end`` is
recorded returns that window; a too_few_rows window over the same rows is not recorded twice.
No production model while requests are logged fails the task, saying so.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from tasks.core.cli import Step, TaskInputs
from tasks.core.drift import CATEGORICAL, FEATURES, ColumnDrift, drift_frame, run_evidently
from tasks.core.lake import monitor_report_keys
from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import MonitorWindow
from tasks.core.logs import get_logger
from tasks.core.monitor_ledger import (
    as_utc,
    log_span,
    next_first_log_id,
    record_window,
    same_too_few,
    window_ending_at,
)
from tasks.core.reference import Reference, reference_of, sample_tables
from tasks.core.settings import TaskSettings
from tasks.core.storage import ObjectStore, open_store
from tasks.monitor.decision import (
    MonitorLimits,
    ValueShare,
    WindowFacts,
    WindowVerdict,
    decide_window,
)
from tasks.monitor.live import read_features

log = get_logger(__name__)


class MonitorInputs(TaskInputs):
    """Inputs of tasks.monitor."""

    until: datetime | None = Field(
        None,
        description="end of the period (ISO 8601; the DAG's data_interval_end); the window ends "
        "MONITOR_SETTLE_SECONDS before it; default: now",
    )

    @field_validator("until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


def limits_of(settings: TaskSettings) -> MonitorLimits:
    return MonitorLimits(
        min_rows=settings.monitor_min_rows,
        share=settings.monitor_drift_share_threshold,
        value_shift=settings.monitor_value_shift_min_share,
    )


def window_end_of(inputs: MonitorInputs, settings: TaskSettings) -> datetime:
    until = inputs.until or datetime.now(UTC)
    return until - timedelta(seconds=settings.monitor_settle_seconds)


def run(inputs: MonitorInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    model = settings.model_name
    window_end = window_end_of(inputs, settings)
    recorded = window_ending_at(ledger, model, window_end)
    if recorded is not None:
        log.info("monitor.recorded", window_id=recorded.id, window_end=str(window_end))
        return result_of(recorded)
    limits = limits_of(settings)
    first, last, rows, since = log_span(ledger, model, next_first_log_id(ledger, model), window_end)
    if rows < limits.min_rows:
        same = same_too_few(ledger, model, first, last, rows)
        if same is not None:
            return result_of(same)
        verdict = decide_window(WindowFacts(rows=rows, since=since), limits)
        window = window_row(model, first, last, since, window_end, rows, verdict)
        return result_of(record_window(ledger, window)[0])

    from tasks.core import registry  # imports MLflow: only where the registry is asked

    champion = registry.champion(registry.client(settings.mlflow_tracking_uri), model)
    if champion is None:
        raise LookupError(
            f"{rows:,} requests were logged for {model} but no version carries the alias "
            "`production`: there is no training data to compare live traffic with; promote a "
            "model (tasks.promote) or check MODEL_NAME"
        )
    store = open_store(settings.storage_url, settings)
    reference = reference_of(ledger, champion)
    live = read_features(ledger, model, first, last)
    if len(live) != rows:
        raise RuntimeError(
            f"the inference log changed while it was read: {rows:,} rows counted in ids "
            f"{first}-{last}, {len(live):,} read; run the monitor again"
        )
    facts, snapshot = measure(store, reference, live, first, since, settings)
    del live
    verdict = decide_window(facts, limits)
    window = window_row(model, first, last, since, window_end, rows, verdict)
    window.model_version = champion.version
    window.reference_batch_ids = list(reference.batch_ids)
    window.feature_scores = feature_scores(facts.columns)
    window.report_key, window.report_html_key = store_report(
        store, window, facts, snapshot, settings
    )
    row, created = record_window(ledger, window)
    if not created:
        log.warning(
            "monitor.concurrent_window", first_log_id=first, window_id=row.id, rows=row.rows
        )
    return result_of(row)


def measure(
    store: ObjectStore,
    reference: Reference,
    live: pd.DataFrame,
    first: int,
    since: datetime | None,
    settings: TaskSettings,
) -> tuple[WindowFacts, Any]:
    """Sample both sides (seeded), run Evidently on the features, share the new values."""
    n, seed = settings.monitor_sample_rows, settings.random_seed
    current = live
    if len(live) > n:
        index = np.sort(np.random.default_rng([seed, first]).choice(len(live), n, replace=False))
        current = live.iloc[index].reset_index(drop=True)
    ref = sample_tables(store, reference.curated_keys, reference.rows, FEATURES, n, [seed, 0])
    if ref.empty:
        raise ValueError(
            f"the reference batches {list(reference.batch_ids)} hold no rows: cannot measure drift"
        )
    columns, snapshot = run_evidently(
        drift_frame(current, with_target=False),
        drift_frame(ref, with_target=False),
        share=settings.monitor_drift_share_threshold,
    )
    facts = WindowFacts(
        rows=len(live),
        since=since,
        model_version=reference.champion.version,
        columns=columns,
        values=value_shares(live, ref, settings.monitor_value_shift_min_share),
        sampled_rows=len(current) if len(current) < len(live) else None,
    )
    return facts, snapshot


def value_shares(live: pd.DataFrame, ref: pd.DataFrame, least: float) -> list[ValueShare]:
    """Status/state values making up at least ``least`` of the requests (every row of the
    window), with their share of the reference (its sample)."""
    found = []
    for column in CATEGORICAL:
        shares = live[column].value_counts(normalize=True, dropna=True)
        known = ref[column].value_counts(normalize=True, dropna=True)
        for value, share in shares.items():
            if share >= least:
                found.append(
                    ValueShare(column, str(value), float(share), float(known.get(value, 0.0)))
                )
    return found


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def feature_scores(columns: list[ColumnDrift] | Any) -> dict[str, Any]:
    return {
        c.column: {
            "method": c.method,
            "score": _number(c.score),
            "threshold": _number(c.threshold),
            "drifted": c.drifted,
        }
        for c in columns
    }


def window_row(
    model: str,
    first: int,
    last: int,
    since: datetime | None,
    window_end: datetime,
    rows: int,
    verdict: WindowVerdict,
) -> MonitorWindow:
    return MonitorWindow(
        first_log_id=first,
        last_log_id=last,
        window_start=since,
        window_end=window_end,
        rows=rows,
        consumed=verdict.consumed,
        model_name=model,
        model_version=None,
        reference_batch_ids=[],
        decision=verdict.decision,
        reasons=verdict.reasons,
        drift_share=verdict.drift_share,
        feature_scores={},
    )


def store_report(
    store: ObjectStore,
    window: MonitorWindow,
    facts: WindowFacts,
    snapshot: Any,
    settings: TaskSettings,
) -> tuple[str, str]:
    """The Evidently report (HTML) and the window's document (JSON) in the lake."""
    json_key, html_key = monitor_report_keys(window.first_log_id, window.last_log_id)
    document = {
        "model_name": window.model_name,
        "model_version": window.model_version,
        "reference_batch_ids": window.reference_batch_ids,
        "first_log_id": window.first_log_id,
        "last_log_id": window.last_log_id,
        "window_start": window.window_start,
        "window_end": window.window_end,
        "rows": window.rows,
        "sampled_rows": facts.sampled_rows,
        "decision": window.decision,
        "reasons": window.reasons,
        "drift_share": window.drift_share,
        "feature_scores": window.feature_scores,
        "value_shares": [v.__dict__ for v in facts.values],
        "thresholds": {
            "monitor_drift_share_threshold": settings.monitor_drift_share_threshold,
            "monitor_min_rows": settings.monitor_min_rows,
            "monitor_sample_rows": settings.monitor_sample_rows,
            "monitor_value_shift_min_share": settings.monitor_value_shift_min_share,
        },
        "evidently": snapshot.dict(),
    }
    store.put_bytes(
        json_key,
        json.dumps(document, indent=2, default=_json_default).encode(),
        content_type="application/json",
    )
    store.put_bytes(
        html_key,
        snapshot.get_html_str(as_iframe=False).encode(),
        content_type="text/html; charset=utf-8",
    )
    return json_key, html_key


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def result_of(row: MonitorWindow) -> dict[str, Any]:
    """The XCom result of a recorded window (the same on every re-run)."""
    scores = row.feature_scores or {}
    start, end = as_utc(row.window_start), as_utc(row.window_end)
    return {
        "window_id": row.id,
        "decision": row.decision,
        "reasons": list(row.reasons or []),
        "rows": row.rows,
        "consumed": row.consumed,
        "drift_share": row.drift_share,
        "drifted_features": sorted(k for k, v in scores.items() if v.get("drifted")),
        "first_log_id": row.first_log_id,
        "last_log_id": row.last_log_id,
        "window_start": start.isoformat() if start else None,
        "window_end": end.isoformat() if end else None,
        "model_version": row.model_version,
        "report_key": row.report_key,
        "report_html_key": row.report_html_key,
    }


def summary(result: dict[str, Any]) -> str:
    ids = f"ids {result['first_log_id']}-{result['last_log_id']}"
    return (
        f"monitor: window {result['window_id']} ({result['rows']:,} requests, {ids}) -> "
        f"{result['decision']}: " + "; ".join(result["reasons"])
    )


STEP = Step(
    "monitor",
    MonitorInputs,
    run,
    summary,
    doc=__doc__,
    preload_modules=("evidently.presets", "mlflow.tracking"),
    preload_env={"DO_NOT_TRACK": "1"},
)
main = STEP.main
