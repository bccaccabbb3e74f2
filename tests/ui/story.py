"""A ledger, a lake and a registry that tell the pipeline's usual story, for the UI's tests.

Six batches of realistic rows (``tests.tasks.factories``) written as the steps leave them:
1 trained and promoted (first model), 2 skipped (no drift), 3 curated with dropped rows, drifted,
trained and promoted, 4 quarantined, 5 trained and rejected, 6 trained and not evaluated yet.
Validation reports are the validate step's own HTML (``tasks.validation_report``); the drift
report is a small HTML page standing in for Evidently's. The registry (a real MLflow store) holds
versions 1-4 with the ``production`` alias on version 2. :func:`build_live_story` adds the
leaderboard's scores (v2-v4 on batch 6's holdout, v1 only on its own) and 30 hours of live
traffic: logged requests, monitor windows (the newest drifted, not acted on yet) and shadow
predictions of challenger v4.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tasks.core.ledger import BatchRecord, DriftDecision, Ledger, Promotion, Training, Validation
from tasks.core.storage import ObjectStore
from tasks.validate.report import render_validation_html
from tests.tasks.factories import make_rows, put_batch

MODEL_NAME = "realtor-price"
PRODUCTION_VERSION = "2"
QUARANTINE_REASON = "14.2% of rows have a price out of range (> 10% allowed): quarantined"
REJECTION_REASON = "MAE 6.7% worse: keep champion v2"
SKIP_REASON = "no drift: 1 of 9 columns drifted (11% < 30%)"
DRIFT_REASON = "drift share 56% >= 30%: status, price drifted"


@dataclass(frozen=True)
class BatchPlan:
    number: int
    rows: int
    validation: str  # pass | warn | fail
    dropped: int = 0
    decision: str | None = None
    drift_share: float | None = None
    reasons: tuple[str, ...] = ()
    version: str | None = None
    mae: float | None = None
    promoted: bool | None = None
    promotion_reasons: tuple[str, ...] = ()


PLANS: tuple[BatchPlan, ...] = (
    BatchPlan(1, 1480, "pass", 0, "train", None, ("first batch: 1,480 rows, no model yet",),
              "1", 182_000.0, True, ("no champion: first model (MAE 182,000, RMSE 410,000)",)),
    BatchPlan(2, 1900, "pass", 0, "skip", 0.11, (SKIP_REASON,)),
    BatchPlan(3, 4600, "warn", 60, "train", 0.56, (DRIFT_REASON,), "2", 151_000.0, True,
              ("MAE 151,000 vs champion v1 182,000: 17.0% better (>= 3%); RMSE 4.0% better",)),
    BatchPlan(4, 80, "fail", 80),
    BatchPlan(5, 6400, "pass", 0, "train", 0.44, ("drift share 44% >= 30%: price drifted",),
              "3", 161_000.0, False, (REJECTION_REASON, "MAE 161,000 vs champion v2 151,000")),
    BatchPlan(6, 7200, "pass", 0, "train", 0.38, ("drift share 38% >= 30%: bed drifted",),
              "4", 149_000.0, None),
)  # fmt: skip


def _validation_report(batch_id: int, plan: BatchPlan, raw_key: str) -> dict[str, Any]:
    status = "quarantined" if plan.validation == "fail" else "curated"
    reasons = [QUARANTINE_REASON] if plan.validation == "fail" else ["every expectation met"]
    return {
        "result": {
            "batch_id": batch_id,
            "status": status,
            "outcome": plan.validation,
            "rows_in": plan.rows,
            "rows_out": 0 if status == "quarantined" else plan.rows - plan.dropped,
            "rows_dropped": plan.dropped,
            "dropped_by_rule": {"price out of range": plan.dropped} if plan.dropped else {},
            "reasons": reasons,
        },
        "batch": {
            "group_number": 1, "day": "Tuesday", "batch_number": plan.number, "raw_key": raw_key,
        },
        "thresholds": {"validation_max_bad_row_share": 0.1},
        "expectations": [
            {"rule": "price out of range", "level": "row",
             "expectation": "expect_column_values_to_be_between", "success": not plan.dropped,
             "unexpected_count": plan.dropped, "observed": None, "sample": [0.0]},
        ],
    }  # fmt: skip


def build_story(ledger: Ledger, store: ObjectStore) -> list[int]:
    """Write the six batches and every step's record; returns the batch ids in order."""
    ids: list[int] = []
    curated: list[int] = []
    started = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    for index, plan in enumerate(PLANS):
        table = make_rows(plan.rows, seed=100 + plan.number)
        batch = put_batch(store, ledger, table, batch_number=plan.number)
        ids.append(batch.id)
        quarantined = plan.validation == "fail"
        if not quarantined:
            curated.append(batch.id)
        report = _validation_report(batch.id, plan, batch.raw_key)
        html_key = f"reports/validation/batch_id={batch.id}/validation.html"
        store.put_bytes(html_key, render_validation_html(report).encode(), "text/html")
        drift_key = f"reports/drift/batch_id={batch.id}/drift.html"
        when = started + dt.timedelta(hours=index)
        with ledger.session() as session:
            session.add(
                Validation(
                    batch_id=batch.id, outcome=plan.validation,
                    status="quarantined" if quarantined else "curated",
                    rows_in=plan.rows, rows_out=0 if quarantined else plan.rows - plan.dropped,
                    rows_dropped=plan.dropped, report_html_key=html_key,
                    reasons=report["result"]["reasons"], created_at=when,
                )
            )  # fmt: skip
            if plan.decision is None:
                continue
            store.put_bytes(
                drift_key,
                f"<html><body><h1>Drift report of batch {plan.number}</h1>"
                f"<p>share of drifted columns: {plan.drift_share}</p></body></html>".encode(),
                "text/html",
            )
            decision = DriftDecision(
                batch_id=batch.id, decision=plan.decision, reasons=list(plan.reasons),
                drift_share=plan.drift_share, details={}, report_html_key=drift_key,
                created_at=when,
            )  # fmt: skip
            session.add(decision)
            session.flush()
            if plan.version is None:
                continue
            training = Training(
                batch_id=batch.id, decision_id=decision.id, mlflow_run_id=f"run{plan.version}",
                model_name=MODEL_NAME, model_version=plan.version,
                training_batch_ids=list(curated),
                metrics={"mae": plan.mae, "rmse": plan.mae * 2.3, "r2": 0.71, "mape": 0.27,
                         "baseline_mae": 236_000.0, "_rows_train": plan.rows},
                reasons=list(plan.reasons), created_at=when,
            )  # fmt: skip
            session.add(training)
            session.flush()
            if plan.promoted is None:
                continue
            session.add(
                Promotion(
                    batch_id=batch.id, training_id=training.id, model_name=MODEL_NAME,
                    challenger_version=plan.version,
                    champion_version=None if plan.version == "1" else "1" if plan.version == "2" else "2",
                    promoted=plan.promoted, reasons=list(plan.promotion_reasons),
                    created_at=when + dt.timedelta(minutes=5),
                )
            )  # fmt: skip
    with ledger.session() as session:  # every run ended with record
        session.add_all(BatchRecord(batch_id=batch_id, recorded_at=started) for batch_id in ids)
    return ids


def register_versions(tracking_uri: str, versions: int = 4, production: str = "2") -> None:
    """Versions 1..``versions`` of the model (runs without artifacts), alias on ``production``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.create_registered_model(MODEL_NAME)
    experiment = client.create_experiment("ui-tests")
    for _ in range(versions):
        run = client.create_run(experiment)
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            MODEL_NAME, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
    client.set_registered_model_alias(MODEL_NAME, "production", production)


# --- live traffic and the leaderboard (issue 19) ---------------------------------------------

#: every version on batch 6's holdout (the newest training's), except v1: scored only on its own
COMMON_HOLDOUT_ROWS = 1_441
COMMON_MAE = {"2": 152_400.0, "3": 158_900.0, "4": 150_100.0}
V1_OLD_HOLDOUT_MAE = 120_000.0
LIVE_STATE = "Vermont"
LIVE_DRIFT_REASON = f"users now ask about {LIVE_STATE}: live drift share 0.33 since v2 was trained"
STABLE_REASON = "live inputs match the training data: 0 of 6 features drifted"
FEW_ROWS_REASON = "too few rows: 12 requests since the last window (at least 100 needed)"
WINDOW_FEATURES = {
    "bed": "wasserstein", "bath": "wasserstein", "acre_lot": "wasserstein",
    "house_size": "wasserstein", "state": "jensenshannon", "status": "jensenshannon",
}  # fmt: skip
#: requests logged per hour over the story's 30 hours, and how many of them the shadow scored
REQUESTS_PER_HOUR = 20
SHADOW_EVERY = 4


def _feature_scores(drifted: set[str], hour: int) -> dict[str, dict[str, Any]]:
    scores = {}
    for i, (feature, method) in enumerate(WINDOW_FEATURES.items()):
        score = 0.35 + 0.05 * i if feature in drifted else 0.02 + 0.01 * ((hour + i) % 5)
        scores[feature] = {
            "method": method, "score": score, "threshold": 0.1, "drifted": score >= 0.1,
        }  # fmt: skip
    return scores


def build_live_story(ledger: Ledger, store: ObjectStore, batch_ids: list[int]) -> None:
    """Scores on the common holdout, 30 hours of logged requests, monitor windows (the newest
    drifted, with a report in the lake, no batch acted on it yet) and shadow predictions of
    challenger v4 beside production v2."""
    from tasks.core.ledger import InferenceLog, MonitorWindow, ShadowPrediction, VersionScore

    newest_training_batch, first_batch = batch_ids[5], batch_ids[0]
    start = dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC)
    report_key = "reports/monitor/window_end=2026-11-22T05/drift.html"
    store.put_bytes(
        report_key,
        b"<html><body><h1>Live inputs vs training data</h1><p>state drifted</p></body></html>",
        "text/html",
    )
    with ledger.session() as session:
        session.add_all(
            VersionScore(
                model_name=MODEL_NAME, model_version=version,
                holdout_batch_id=newest_training_batch, holdout_rows=COMMON_HOLDOUT_ROWS,
                mae=mae, rmse=mae * 2.2, mlflow_run_id=f"run{version}",
            )
            for version, mae in COMMON_MAE.items()
        )  # fmt: skip
        session.add(
            VersionScore(
                model_name=MODEL_NAME, model_version="1", holdout_batch_id=first_batch,
                holdout_rows=296, mae=V1_OLD_HOLDOUT_MAE, rmse=300_000.0, mlflow_run_id="run1",
            )
        )  # fmt: skip
        log_id = 0
        for hour in range(30):
            when = start + dt.timedelta(hours=hour)
            vermont = hour >= 24  # the last hours: users ask about Vermont's luxury homes
            for i in range(REQUESTS_PER_HOUR + (hour % 6) * 3):
                log_id += 1
                price = 250_000.0 * (1 + 0.07 * (i % 9)) * (3.0 if vermont else 1.0)
                at = when + dt.timedelta(minutes=(i * 7) % 60)
                session.add(
                    InferenceLog(
                        id=log_id, request_id=f"req-{log_id}", model_name=MODEL_NAME,
                        model_version=PRODUCTION_VERSION, predicted_at=at, price=price,
                        features={"state": LIVE_STATE if vermont else "Florida", "bed": 3},
                        )
                )  # fmt: skip
                if i % SHADOW_EVERY == 0:
                    factor = 1.25 if i % 3 == 0 else 1.03  # a third of them > 10% apart
                    session.add(
                        ShadowPrediction(
                            request_id=f"req-{log_id}", model_name=MODEL_NAME,
                            production_version=PRODUCTION_VERSION, challenger_version="4",
                            predicted_at=at, production_price=price,
                            challenger_price=price * factor,
                        )
                    )  # fmt: skip
        plans = [  # (hours covered, decision, reasons, drifted features, consumed)
            (6, "stable", [STABLE_REASON], set(), True),
            (6, "stable", [STABLE_REASON], set(), True),
            (6, "stable", [STABLE_REASON], set(), True),
            (6, "stable", [STABLE_REASON], set(), True),
            (1, "too_few_rows", [FEW_ROWS_REASON], set(), False),
            (5, "drifted", [LIVE_DRIFT_REASON], {"state", "house_size"}, True),
        ]
        hour = 0
        for covered, decision, reasons, drifted, consumed in plans:
            end = start + dt.timedelta(hours=hour + covered)
            scores = _feature_scores(drifted, hour) if decision != "too_few_rows" else {}
            session.add(
                MonitorWindow(
                    first_log_id=hour * 100 + 1, last_log_id=(hour + covered) * 100,
                    window_start=start + dt.timedelta(hours=hour), window_end=end,
                    rows=12 if not consumed else covered * REQUESTS_PER_HOUR,
                    consumed=consumed, model_name=MODEL_NAME, model_version=PRODUCTION_VERSION,
                    reference_batch_ids=batch_ids[:3], decision=decision, reasons=reasons,
                    drift_share=None if not scores else len(drifted) / len(WINDOW_FEATURES),
                    feature_scores=scores,
                    report_html_key=report_key if decision == "drifted" else None,
                    created_at=end,
                )
            )  # fmt: skip
            hour += covered if consumed else 0
