"""The story readers: every batch's story and every model version's history, from a real ledger."""

from __future__ import annotations

import pytest

from tasks.core.ledger import Batch, DriftDecision, Ledger, Promotion, Training
from tasks.core.monitor_ledger import mark_acted_on
from tasks.core.story import (
    batch_summaries,
    build_summary,
    model_history,
    pending_live_drift,
    read_story,
)
from tests.support.monitor_windows import DRIFTED_REASON, add_window
from tests.tasks.train_factories import passed_validation


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest) -> Ledger:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    ledger = Ledger.open(url)
    yield ledger
    ledger.engine.dispose()


def _batch(ledger: Ledger, number: int, day: str = "Tuesday") -> Batch:
    sha = f"{number:x}" * 64
    row, _ = ledger.record_batch(
        Batch(
            group_number=1,
            day=day,
            batch_number=number,
            sha256=sha[:64],
            raw_key=f"raw/{number}.parquet",
            rows=100 * number,
            bytes=1,
            schema_problems=[],
            status="raw",
        )
    )
    return row


def _trained(ledger: Ledger, batch: Batch, version: str, mae: float, promoted: bool | None) -> None:
    with ledger.session() as session:
        reports = f"reports/validation/batch_id={batch.id}"
        session.add(
            passed_validation(
                batch.id,
                batch.rows,
                f"curated/{batch.id}.parquet",
                report_key=f"{reports}/validation.json",
                report_html_key=f"{reports}/validation.html",
            )
        )
        decision = DriftDecision(
            batch_id=batch.id, decision="train", reasons=[f"drift in batch {batch.id}"], details={}
        )
        session.add(decision)
        session.flush()
        training = Training(
            batch_id=batch.id,
            decision_id=decision.id,
            mlflow_run_id=f"run{version}",
            model_name="m",
            model_version=version,
            training_batch_ids=[batch.id],
            metrics={"mae": mae, "baseline_mae": 2 * mae, "_rows_train": 10},
            reasons=list(decision.reasons),
        )
        session.add(training)
        session.flush()
        if promoted is not None:
            session.add(
                Promotion(
                    batch_id=batch.id,
                    training_id=training.id,
                    model_name="m",
                    challenger_version=version,
                    champion_version=None if version == "1" else "1",
                    promoted=promoted,
                    reasons=["better" if promoted else "worse"],
                )
            )


def test_batch_summaries_tell_each_batch_once_in_order_and_agree_with_read_story(ledger: Ledger):
    first, second = _batch(ledger, 1), _batch(ledger, 2)
    _batch(ledger, 1, day="Friday")
    _trained(ledger, first, "1", 100.0, True)
    stories = batch_summaries(ledger, 1, "Tuesday")
    assert [s["batch_number"] for s in stories] == [1, 2]
    # batch_summaries adds whether the run ended (record's row): none did here
    assert [s.pop("recorded") for s in stories] == [False, False]
    assert stories[0] == build_summary(*read_story(ledger, first.id))
    assert stories[0]["outcome"] == "trained v1, promoted"
    assert stories[0]["validation_report_html_key"].endswith("validation.html")
    assert stories[1]["outcome"] == "not validated yet"
    assert stories[1] == build_summary(*read_story(ledger, second.id))
    assert len(batch_summaries(ledger)) == 3


def test_model_history_lists_every_version_with_its_verdict_and_no_hidden_keys(ledger: Ledger):
    for number, (mae, promoted) in enumerate([(100.0, True), (99.0, False), (90.0, None)], 1):
        _trained(ledger, _batch(ledger, number), str(number), mae, promoted)
    history = model_history(ledger, "m")
    assert [h["model_version"] for h in history] == ["1", "2", "3"]
    assert [h["promoted"] for h in history] == [True, False, None]
    assert history[1]["promotion_reasons"] == ["worse"]
    assert history[1]["champion_version"] == "1"
    assert history[0]["metrics"] == {"mae": 100.0, "baseline_mae": 200.0}
    assert history[2]["training_reasons"] == [f"drift in batch {history[2]['batch_id']}"]
    assert model_history(ledger, "another model") == []


def test_live_drift_no_batch_took_is_pending_until_one_does(ledger: Ledger) -> None:
    assert pending_live_drift(ledger, "m") == []  # no window at all
    add_window(ledger, model_name="m", version="3", decision="stable")
    assert pending_live_drift(ledger, "m") == []
    window = add_window(ledger, model_name="m", version="3")
    add_window(ledger, model_name="other", version="1", decision="stable")  # another model's
    (line,) = pending_live_drift(ledger, "m")
    assert line == (
        f"live drift, no labelled data yet: window {window} (drift share 0.60 against v3, "
        "4,812 requests up to 2026-05-04 14:00: state, house_size; "
        f"{DRIFTED_REASON}) - no batch has been checked since: the API had no new labelled "
        "batch to train on"
    )
    assert pending_live_drift(ledger, "other") == []
    batch = _batch(ledger, 1)
    mark_acted_on(ledger, window, batch.id)
    assert pending_live_drift(ledger, "m") == []


def test_a_drifted_window_a_newer_one_replaced_is_not_pending(ledger: Ledger) -> None:
    add_window(ledger, model_name="m", version="3")
    add_window(ledger, model_name="m", version="3", decision="stable")
    assert pending_live_drift(ledger, "m") == []  # drift_check will never read it
    add_window(ledger, model_name="m", version="3", decision="too_few_rows", rows=5)
    assert pending_live_drift(ledger, "m") == []  # a window that consumed nothing is not one
