"""The service against a real MLflow server holding a model trained and promoted by the real
steps: predict (single, batch, unknown categories, same prices as the registered model's own
predict), 422 naming the field, explain adding up, /model's story, /ready, admin reload with and
without the token, /metrics, and the inference log in the ledger and the lake."""

from __future__ import annotations

import io
import math
import time
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from serving.records import Record
from tasks.core.ledger import InferenceLog
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tests.serving.load import RECORD
from tests.support.served_model import ADMIN_TOKEN, ServedStack, ServingProcess

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

UNKNOWN = {"status": "sold", "city": "Nowhere Springs", "state": "Atlantis", "zip_code": 99999}


def registered_predict(stack: ServedStack, records: list[dict]) -> np.ndarray:
    import mlflow

    from serving.state import native_predict

    # a service of another module in this process may have left its registry URI behind
    mlflow.set_tracking_uri(stack.stack.tracking_uri)
    mlflow.set_registry_uri(stack.stack.tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{stack.stack.model_name}/1")
    features = [Record.model_validate(r).features() for r in records]
    return native_predict(model, features)


def test_predict_single_and_batch_match_the_registered_model(
    serving: ServingProcess, served_stack: ServedStack
):
    one = serving.post("/predict", json=RECORD)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_name"] == served_stack.stack.model_name and body["model_version"] == "1"
    assert len(body["prices"]) == 1 and uuid.UUID(body["request_id"])

    batch = [RECORD, {"bath": 1}, UNKNOWN, {**RECORD, "bed": None, "prev_sold_date": None}]
    many = serving.post("/predict", json=batch, headers={"X-Request-ID": "batch-1"})
    assert many.status_code == 200, many.text
    assert many.json()["request_id"] == "batch-1" and many.headers["X-Model-Version"] == "1"
    prices = many.json()["prices"]
    assert len(prices) == 4 and all(p > 0 and math.isfinite(p) for p in prices)
    assert prices[0] == body["prices"][0]
    # prices are rounded to cents
    np.testing.assert_allclose(prices, registered_predict(served_stack, batch), atol=0.005)


def test_422_names_the_field_and_the_rule(serving: ServingProcess):
    answer = serving.post("/predict", json=[RECORD, {**RECORD, "bath": -1, "colour": "red"}])
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert {tuple(e["loc"]) for e in detail} == {("body", 1, "bath"), ("body", 1, "colour")}
    assert any("greater than or equal to 0" in e["msg"] for e in detail)
    zip_error = serving.post("/predict", json={"zip_code": "7870"}).json()["detail"][0]
    assert zip_error["loc"] == ["body", "zip_code"] and "5 digits" in zip_error["msg"]
    too_many = serving.post("/predict", json=[RECORD] * 51)
    assert too_many.status_code == 413 and "at most 50" in too_many.json()["detail"]


def test_explain_contributions_add_up_to_the_log_price(serving: ServingProcess):
    answer = serving.post("/explain", json=UNKNOWN)
    assert answer.status_code == 200, answer.text
    e = answer.json()
    assert e["space"] == "log1p(price)" and e["model_version"] == "1"
    assert e["base_value"] + sum(e["contributions"].values()) == pytest.approx(
        e["log_price"], abs=1e-6
    )
    assert e["price"] == pytest.approx(math.expm1(e["log_price"]), abs=0.005)  # cents
    predicted = serving.post("/predict", json=UNKNOWN).json()["prices"][0]
    assert e["price"] == pytest.approx(predicted, abs=0.011)
    assert set(e["contributions"]) == {
        "status", "bed", "bath", "acre_lot", "city", "state", "zip_code", "house_size",
        "prev_sold_date",
    }  # fmt: skip
    assert e["features"]["state"] == "Atlantis" and e["features"]["zip_code"] == "99999"
    schema = serving.get("/openapi.json").json()
    assert (
        "base_value + sum(contributions) = log_price"
        in schema["paths"]["/explain"]["post"]["description"]
    )


def test_model_tells_where_the_version_came_from(
    serving: ServingProcess, served_stack: ServedStack
):
    model = serving.get("/model").json()
    first = served_stack.first
    assert model["version"] == "1" and model["alias"] == "production"
    assert model["run_id"] == first.run_id
    assert model["metrics"]["mae"] == pytest.approx(first.train["metrics"]["mae"])
    assert model["training"]["training_batch_ids"] == [first.batch_id]
    assert model["training"]["reasons"] == first.train["reasons"]
    assert model["promotion"]["promoted"] is True and model["promotion"]["promoted_at"]
    assert model["promotion"]["reasons"][0].startswith("no champion: first model")
    assert model["fast_path"]["enabled"] is True and model["fast_path"]["explain_enabled"]
    assert model["registry"]["reachable"] is True
    assert model["registry"]["alias_version"] == "1"
    ready = serving.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_the_version_trained_by_the_real_steps_warns_out_of_its_training_range(
    serving: ServingProcess,
):
    checks = serving.get("/model").json()["input_checks"]
    assert checks["enabled"] is True, checks
    low, high = checks["training_ranges"]["numeric"]["house_size"]
    answer = serving.post("/predict", json=[RECORD, {**RECORD, "house_size": 1e8}])
    assert answer.status_code == 200
    [warning] = [w for w in answer.json()["warnings"] if w["feature"] == "house_size"]
    assert warning["row"] == 1 and warning["kind"] == "above_range"
    assert warning["range"] == [low, high] and warning["value"] == 1e8


def test_admin_reload_needs_the_token(serving: ServingProcess):
    assert serving.post("/admin/reload").status_code == 401
    wrong = serving.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    kept = serving.post("/admin/reload", headers=auth)
    assert kept.status_code == 200 and kept.json()["outcome"] == "keep"
    forced = serving.post("/admin/reload", params={"force": "true"}, headers=auth, timeout=120)
    assert forced.status_code == 200 and forced.json()["outcome"] == "loaded", forced.text
    assert serving.post("/predict", json=RECORD).status_code == 200


def test_metrics_the_dashboard_reads(serving: ServingProcess):
    serving.post("/predict", json=RECORD)
    text = serving.get("/metrics").text
    for needle in (
        "realtor_predictions_total{",
        "realtor_prediction_latency_seconds_bucket{",
        'realtor_model_version_info{alias="production",model_name="realtor-price-test",',
        'version="1"} 1.0',
        'realtor_http_requests_total{endpoint="/predict",method="POST",status="200"}',
        'realtor_http_request_duration_seconds_bucket{endpoint="/predict"',
        "realtor_model_reloads_total",
        "realtor_model_reload_failures_total",
        "realtor_predicted_price_dollars_bucket",
        'realtor_inference_log_rows_dropped_total{reason="db_error"}',
        "realtor_registry_up 1.0",
        "realtor_fast_path_enabled 1.0",
    ):
        assert needle in text, needle


def test_predictions_land_in_the_ledger_and_the_lake(
    serving: ServingProcess, served_stack: ServedStack
):
    request_id = f"log-{uuid.uuid4().hex[:8]}"
    answer = serving.post("/predict", json=[RECORD, UNKNOWN], headers={"X-Request-ID": request_id})
    assert answer.status_code == 200
    prices = answer.json()["prices"]
    engine = create_engine(served_stack.stack.ledger_url)
    query = select(InferenceLog).where(InferenceLog.request_id == request_id)
    deadline = time.monotonic() + 20
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query.order_by(InferenceLog.row_index)).all()
        if len(rows) == 2 and all(r.exported_at is not None for r in rows):
            break
        assert time.monotonic() < deadline, f"rows not logged and exported: {rows}"
        time.sleep(0.2)
    engine.dispose()
    assert [r.price for r in rows] == pytest.approx(prices, rel=1e-12)
    assert rows[1].features["state"] == "Atlantis" and rows[0].model_version == "1"
    assert rows[0].export_key == rows[1].export_key
    key = rows[0].export_key
    assert key.startswith("raw/inference/date=") and key.endswith(".parquet")
    env = served_stack.stack.env
    settings = TaskSettings(
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    store = open_store(served_stack.stack.storage_url, settings)
    table = pq.read_table(io.BytesIO(store.get_bytes(key))).to_pylist()
    mine = [row for row in table if row["request_id"] == request_id]
    assert [row["price"] for row in mine] == pytest.approx(prices, rel=1e-12)
    assert mine[0]["zip_code"] == "78701" and str(mine[0]["prev_sold_date"]) == "2015-06-30"
