"""The app in-process with a real model fitted here (no registry): answers before and after a
model is there, validation, limits, explanations, metrics and the inference log on SQLite and a
file lake. The same behaviour against a real MLflow server: test_api.py."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from serving.app import create_app
from serving.records import EXAMPLE_RECORD
from serving.settings import ServingSettings
from tasks.core.ledger import InferenceLog
from tests.support.processes import free_port

RECORD = EXAMPLE_RECORD


def settings(tmp_path: Path, **overrides) -> ServingSettings:
    values = {
        "mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "mlflow_max_retries": 0,
        "mlflow_timeout_seconds": 1,
        "poll_interval_seconds": 60,
        "ledger_url": f"sqlite:///{tmp_path / 'ledger.db'}",
        "storage_url": (tmp_path / "lake").as_uri(),
        "inference_log_flush_seconds": 0.05,
        "inference_export_interval_seconds": 3600,  # exported on demand below
        "max_batch_rows": 5,
        **overrides,
    }
    return ServingSettings(**values)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_before_the_first_model_everything_says_why(tmp_path: Path):
    app = create_app(settings(tmp_path))
    with TestClient(app) as client:
        wait_for(lambda: app.state.service.watcher.registry.reachable is False)
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "registry unreachable" in ready.json()["problems"][0]
        predicted = client.post("/predict", json=RECORD)
        assert predicted.status_code == 503
        assert predicted.json()["detail"].startswith("no model loaded yet: the model registry")
        assert client.post("/explain", json=RECORD).status_code == 503
        assert client.get("/model").status_code == 503
        # validation comes first: a bad record is a 422 whatever the model
        assert client.post("/predict", json={"bed": -1}).status_code == 422
        # no token configured: the admin endpoint is off
        off = client.post("/admin/reload", headers={"Authorization": "Bearer x"})
        assert off.status_code == 403 and "SERVING_ADMIN_TOKEN" in off.json()["detail"]


def test_predict_explain_limits_and_the_inference_log(tmp_path: Path, local_model):
    app = create_app(settings(tmp_path))
    with TestClient(app) as client:
        app.state.service.watcher.swap(local_model)  # what a load does once the model is ready
        one = client.post("/predict", json=RECORD, headers={"X-Request-ID": "req-1"})
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["request_id"] == "req-1" and body["model_version"] == "7"
        expected = local_model.predict_native([app_features(RECORD)])[0]
        assert body["prices"][0] == pytest.approx(expected, abs=0.005)  # rounded to cents
        assert body["prices"][0] == round(body["prices"][0], 2) and body["warnings"] == []

        many = client.post(
            "/predict", json=[RECORD, {"bed": 2}, {"state": "Atlantis", "city": "Nowhere"}]
        )
        assert many.status_code == 200 and len(many.json()["prices"]) == 3
        assert all(p > 0 and math.isfinite(p) for p in many.json()["prices"])

        too_many = client.post("/predict", json=[RECORD] * 6)
        assert too_many.status_code == 413 and "at most 5" in too_many.json()["detail"]
        for raw in (b'{"bed": NaN}', b'{"bed": {"x": [Infinity]}}', b"[1, 2]", b"nope"):
            answer = client.post("/predict", content=raw)
            assert answer.status_code == 422, (raw, answer.text)

        explained = client.post("/explain", json=RECORD)
        assert explained.status_code == 200, explained.text
        e = explained.json()
        assert e["space"] == "log1p(price)"
        assert e["base_value"] + sum(e["contributions"].values()) == pytest.approx(
            e["log_price"], abs=1e-6
        )
        assert math.log1p(e["price"]) == pytest.approx(e["log_price"], abs=1e-6)  # cents
        assert e["price"] == pytest.approx(body["prices"][0], abs=0.011)
        assert e["features"]["zip_code"] == "78701"
        assert client.post("/explain", json=[RECORD]).status_code == 422

        metrics = client.get("/metrics").text
        for name in (
            "realtor_predictions_total",
            "realtor_prediction_latency_seconds_bucket",
            "realtor_predicted_price_dollars_bucket",
            'realtor_http_requests_total{endpoint="/predict",method="POST",status="413"}',
            "realtor_inference_log_rows_dropped_total",
        ):
            assert name in metrics

        # every predicted row reaches the ledger, then the lake, once
        engine = create_engine(app.state.service.settings.ledger_url)
        wait_for(lambda: app.state.service.writer.written == 4)
        with engine.connect() as connection:
            rows = connection.execute(select(InferenceLog).order_by(InferenceLog.id)).all()
        assert [(r.request_id, r.row_index) for r in rows][:1] == [("req-1", 0)]
        assert rows[0].features["zip_code"] == "78701" and rows[0].model_version == "7"
        exported = app.state.service.exporter.export_now()
        assert [count for _, count in exported] == [4]
        assert app.state.service.exporter.export_now() == []  # nothing twice
        [(key, _)] = exported
        assert key.startswith("raw/inference/date=") and key.endswith(".parquet")
        table = pq.read_table(io.BytesIO((tmp_path / "lake" / key).read_bytes()))
        assert table.num_rows == 4 and table["zip_code"][0].as_py() == "78701"
        assert str(table.schema.field("prev_sold_date").type) == "date32[day]"
        with engine.connect() as connection:
            pending = connection.execute(
                select(func.count()).where(InferenceLog.exported_at.is_(None))
            ).scalar_one()
        assert pending == 0


def app_features(record: dict) -> dict:
    from serving.records import Record

    return Record.model_validate(record).features()


def unsupported_model():
    """A fitted model the fast path cannot compile (a StandardScaler in a branch)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from tasks.core.model import feature_frame, target
    from tests.tasks.factories import make_rows

    scaled = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    features = ColumnTransformer([("bed", scaled, ["bed"]), ("house_size", scaled, ["house_size"])])
    pipeline = Pipeline(
        [("features", features), ("regressor", HistGradientBoostingRegressor(max_iter=20))]
    )
    model = TransformedTargetRegressor(regressor=pipeline, func=np.log1p, inverse_func=np.expm1)
    rows = make_rows(300, seed=9).to_pandas()
    return model.fit(feature_frame(rows), target(rows))


def test_a_version_the_fast_path_refuses_is_served_by_its_own_predict_loudly(tmp_path: Path):
    from serving.loader import prepare
    from serving.state import ModelMetadata

    native = unsupported_model()
    loaded = prepare(native, "odd", "4", "production", ModelMetadata(run_id="r"))
    assert loaded.fast is None and loaded.explainer is None
    assert not loaded.fast_path.enabled and "refused the pipeline" in loaded.fast_path.reason
    assert "StandardScaler" in loaded.fast_path.reason

    app = create_app(settings(tmp_path, inference_log_enabled=False))
    with TestClient(app) as client:
        app.state.service.watcher.swap(loaded)
        answer = client.post("/predict", json=[RECORD, {"state": "Texas"}])
        assert answer.status_code == 200 and answer.json()["model_version"] == "4"
        expected = native_predict_records(native, [RECORD, {"state": "Texas"}])
        assert answer.json()["prices"] == [round(p, 2) for p in expected]
        explained = client.post("/explain", json=RECORD)
        assert explained.status_code == 503 and "fast path" in explained.json()["detail"]
        model = client.get("/model").json()
        assert (
            model["fast_path"]["enabled"] is False
            and "StandardScaler" in model["fast_path"]["reason"]
        )
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert any(p.startswith("slow path: ") for p in ready.json()["problems"])
        assert "realtor_fast_path_enabled 0.0" in client.get("/metrics").text


def native_predict_records(native, records: list[dict]):
    from serving.state import native_predict

    return native_predict(native, [app_features(r) for r in records])
