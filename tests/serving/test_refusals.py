"""Bad input is refused before any work, with one clear message each; values outside what the
served version was trained on are priced with warnings, counted in /metrics.

In-process (TestClient) with a real model fitted here, whose training ranges are computed from
its training rows by the function train logs them with (``tasks.training_log.feature_ranges``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.ranges import FeatureRanges
from tasks.core.model import FEATURE_RANGES_ARTIFACT
from tests.serving.test_app import RECORD, settings

LONG = "x" * 30_000  # two of them stay under the body cap (20 rows x 4 KiB)


@pytest.fixture(scope="module")
def ranged_model(local_model):
    """The session's local model with the ranges of its own training rows."""
    from tasks.core.model import feature_frame
    from tasks.train.training_log import feature_ranges
    from tests.tasks.factories import make_rows

    document = feature_ranges(feature_frame(make_rows(500, seed=5).to_pandas()))
    return dataclasses.replace(
        local_model, ranges=FeatureRanges.from_document(document), ranges_reason=None
    )


@pytest.fixture
def client(tmp_path: Path, ranged_model):
    app = create_app(settings(tmp_path, inference_log_enabled=False, max_batch_rows=20))
    with TestClient(app) as client:
        app.state.service.watcher.swap(ranged_model)
        yield client


def detail(answer) -> str:
    """The answer's message(s) as one text."""
    body = answer.json()["detail"]
    return body if isinstance(body, str) else " | ".join(e["msg"] for e in body)


#: (what is sent, the status, what the message says)
BAD = {
    "a status not in the data": ({**RECORD, "status": "foo"}, 422, "'for_sale', 'sold' or"),
    "a boolean for a number": ({**RECORD, "bed": True}, 422, "bed: Input should be a valid num"),
    "a numeric string": ({**RECORD, "house_size": "1650"}, 422, "house_size: Input should be"),
    "an empty record": ({}, 422, "no feature: send at least one of status, bed"),
    "only ignored fields": ({"price": 1.0, "street": 2.0}, 422, "no feature"),
    "an empty record in a list": ([RECORD, {}], 422, "[1]: Value error, the record gives no"),
    "a negative bath": ({**RECORD, "bath": -1}, 422, "bath: Input should be greater than"),
    "a 6-digit zip": ({**RECORD, "zip_code": "787011"}, 422, "must be exactly 5 digits"),
    "an unknown field": ({**RECORD, "garage": 2}, 422, "garage: Extra inputs are not permitted"),
    "too many records": ([RECORD] * 21, 413, "at most 20 (SERVING_MAX_BATCH_ROWS)"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_each_bad_record_gets_one_clear_answer(client, name: str):
    body, status, says = BAD[name]
    answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert says in detail(answer), detail(answer)


def test_a_huge_value_is_quoted_by_a_short_prefix_never_echoed(client):
    answer = client.post("/predict", json={**RECORD, "zip_code": LONG, "city": LONG})
    assert answer.status_code == 422
    assert len(answer.content) < 1000, len(answer.content)
    errors = {e["loc"][-1]: e for e in answer.json()["detail"]}
    assert errors["zip_code"]["msg"].endswith(
        '"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… must be exactly 5 digits, e.g. "02139"'
    )
    assert errors["city"]["input"] == '"' + "x" * 39 + "…"
    assert client.post("/predict", content=b'{"bed": ' + b"9" * 5000).status_code == 422


def test_content_type_and_size_are_refused_on_every_endpoint(tmp_path: Path, ranged_model):
    app = create_app(settings(tmp_path, inference_log_enabled=False, max_body_bytes=2000))
    with TestClient(app) as client:
        app.state.service.watcher.swap(ranged_model)
        for path in ("/predict", "/explain"):
            plain = client.post(
                path, content=json.dumps(RECORD), headers={"content-type": "text/plain"}
            )
            assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
            charset = {"content-type": "application/json; charset=utf-8"}
            assert client.post(path, content=json.dumps(RECORD), headers=charset).status_code == 200
            assert client.post(path, content=json.dumps(RECORD)).status_code == 200  # no header
            big = client.post(path, json={**RECORD, "city": "x" * 3000})
            assert big.status_code == 413
            assert big.json()["detail"].startswith(
                "the body is larger than 2,000 bytes (SERVING_MAX_BODY_BYTES)"
            )


def test_explain_names_its_own_limit_and_prices_are_in_cents(client):
    listed = client.post("/explain", json=[RECORD, RECORD])
    assert listed.status_code == 422
    assert detail(listed) == "send one record (an object), not a list"
    assert "SERVING_MAX_BATCH_ROWS" not in listed.text
    prices = client.post("/predict", json=[RECORD, {**RECORD, "bed": 5}]).json()["prices"]
    explained = client.post("/explain", json=RECORD).json()
    for price in [*prices, explained["price"]]:
        assert price == round(price, 2) and len(repr(price).partition(".")[2]) <= 2


def test_values_outside_the_training_data_are_priced_with_warnings(client, ranged_model):
    ranges = ranged_model.ranges
    low, high = ranges.numeric["house_size"]
    assert "Atlantis" not in ranges.categories["state"]
    body = [
        RECORD,
        {**RECORD, "house_size": 1e8, "state": "Atlantis"},
        {**RECORD, "bath": 0.0} if ranges.numeric["bath"][0] > 0 else RECORD,
    ]
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["prices"]) == 3
    warnings = answer.json()["warnings"]
    assert warnings[:2] == [
        {
            "row": 1,
            "feature": "state",
            "kind": "unseen_category",
            "value": "Atlantis",
            "range": None,
            "message": "state 'Atlantis' was not in the data the model was trained on: it is "
            "priced as an unknown category",
        },
        {
            "row": 1,
            "feature": "house_size",
            "kind": "above_range",
            "value": 1e8,
            "range": [low, high],
            "message": "house_size 100,000,000 is above the largest the model was trained on "
            f"({int(high):,})",
        },
    ]
    if ranges.numeric["bath"][0] > 0:
        assert warnings[2]["row"] == 2 and warnings[2]["kind"] == "below_range"
    single = client.post("/predict", json={**RECORD, "house_size": 1e8}).json()["warnings"]
    assert [(w["row"], w["feature"], w["kind"]) for w in single] == [
        (0, "house_size", "above_range")
    ]
    explained = client.post("/explain", json={**RECORD, "state": "Atlantis"}).json()
    assert [(w["row"], w["feature"]) for w in explained["warnings"]] == [(0, "state")]
    assert client.post("/predict", json=RECORD).json()["warnings"] == []

    metrics = client.get("/metrics").text
    assert 'realtor_input_warnings_total{feature="state",kind="unseen_category"} 2.0' in metrics
    assert 'realtor_input_warnings_total{feature="house_size",kind="above_range"} 2.0' in metrics
    checks = client.get("/model").json()["input_checks"]
    assert checks["enabled"] is True and checks["training_ranges"]["numeric"]["house_size"] == [
        low,
        high,
    ]


def test_a_batch_is_checked_as_each_row_alone(ranged_model):
    """The numpy path (batches) gives the warnings of the row-by-row path (single rows)."""
    from serving.records import Record

    ranges = ranged_model.ranges
    rows = [
        {**RECORD, "house_size": 1e8},
        {"state": "Atlantis", "bed": 0},
        RECORD,
        {"acre_lot": 1e7, "bath": None, "status": "sold"},
    ] * 5
    features = [Record.model_validate(r).features() for r in rows]
    together = ranges.check(features)
    alone = [{**w, "row": row} for row, f in enumerate(features) for w in ranges.check([f])]
    assert together == alone and len(together) >= 15


def test_a_version_without_ranges_serves_without_warnings_and_says_so(client, local_model):
    client.app.state.service.watcher.swap(local_model)
    answer = client.post("/predict", json={**RECORD, "house_size": 1e8})
    assert answer.status_code == 200 and answer.json()["warnings"] == []
    checks = client.get("/model").json()["input_checks"]
    assert checks["enabled"] is False and "no training ranges" in checks["reason"]


def test_the_loader_reads_a_runs_ranges_or_says_why_not(tmp_path: Path, monkeypatch):
    """A run with feature_ranges.json gives its ranges; a run without it (a version registered
    before ranges were logged) gives None and a reason that /model and the log show."""
    import mlflow
    import pandas as pd

    from serving.loader import training_ranges
    from tasks.train.training_log import feature_ranges

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        check_ranges_of_runs(mlflow, training_ranges, feature_ranges, pd)
    finally:
        mlflow.set_tracking_uri(previous)


def check_ranges_of_runs(mlflow, training_ranges, feature_ranges, pd) -> None:
    mlflow.set_experiment("ranges")
    with mlflow.start_run() as old:
        pass
    with mlflow.start_run() as new:
        document = feature_ranges(
            pd.DataFrame(
                {
                    "bed": [1.0, 5.0, None],
                    "bath": [1.0, 2.0, 3.0],
                    "acre_lot": [0.1, None, 2.0],
                    "house_size": [900.0, 1500.0, 4000.0],
                    "status": ["sold", None, "for_sale"],
                    "state": ["Texas", "Ohio", None],
                }
            )
        )
        mlflow.log_dict(document, FEATURE_RANGES_ARTIFACT)
    ranges, reason = training_ranges(new.info.run_id)
    assert reason is None and ranges.numeric["bed"] == (1.0, 5.0)
    assert ranges.categories == {
        "status": frozenset({"sold", "for_sale"}),
        "state": frozenset({"Texas", "Ohio"}),
    }
    missing, why = training_ranges(old.info.run_id)
    assert missing is None and "no usable feature_ranges.json" in why and "retrain" in why
    assert training_ranges(None)[0] is None
