"""tasks.monitor on real services: a PostgreSQL ledger, a SeaweedFS lake, an MLflow registry.

One module-wide world; each test has its own model name (its own champion, reference batch
and inference-log rows), so the tests do not depend on their order. The inference log is
seeded in the row format serving writes (:func:`serving.inference_log.log_rows`), from the
factories' realistic rows.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, insert, select

from serving.inference_log import log_rows
from serving.monitor_metrics import LiveWindowCollector
from tasks.core.ledger import InferenceLog, Ledger, MonitorWindow, Validation
from tasks.core.settings import TaskSettings, get_settings
from tasks.core.storage import ObjectStore, open_store
from tasks.monitor import step as monitor
from tests.support.postgres import fresh_database
from tests.support.seaweed import S3Endpoint
from tests.tasks.factories import make_rows, put_batch, register_champion

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    tmp: Path
    ledger_url: str
    ledger: Ledger
    store: ObjectStore
    base: dict[str, Any]
    batches: int = 0

    def settings(self, model: str, **extra: Any) -> TaskSettings:
        return TaskSettings(**self.base, model_name=model, **extra)

    def champion(self, model: str) -> str:
        """A production version of ``model`` trained on 3,000 factory rows (all states)."""
        self.batches += 1
        table = make_rows(3000, 1)
        batch = put_batch(self.store, self.ledger, table, batch_number=self.batches)
        with self.ledger.session() as session:  # the raw object serves as the curated one
            session.add(
                Validation(
                    batch_id=batch.id,
                    outcome="pass",
                    status="curated",
                    rows_in=table.num_rows,
                    rows_out=table.num_rows,
                    rows_dropped=0,
                    curated_key=batch.raw_key,
                )
            )
        return register_champion(
            self.base["mlflow_tracking_uri"],
            self.ledger,
            model_name=model,
            batch_id=batch.id,
            training_batch_ids=[batch.id],
        )


@pytest.fixture(scope="module")
def world(s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("monitor")
    bucket = f"m-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    with fresh_database("realtor_monitor") as url:
        base = {
            "ledger_url": url,
            "storage_url": f"s3://{bucket}",
            "s3_endpoint_url": s3.endpoint_url,
            "aws_access_key_id": s3.access_key,
            "aws_secret_access_key": s3.secret_key,
            "mlflow_tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
            "monitor_min_rows": 200,
            "monitor_sample_rows": 2000,
            "monitor_settle_seconds": 30,
            "xcom_return_path": tmp / "xcom.json",
        }
        settings = TaskSettings(**base)
        ledger = Ledger.open(url)
        yield World(tmp, url, ledger, open_store(settings.storage_url, settings), base)
        ledger.engine.dispose()


def luxury_in_vermont(n: int, seed: int) -> pa.Table:
    """The demo's shift: one state, bigger homes."""
    table = make_rows(n, seed, state="Vermont")
    for column, factor in (("house_size", 3.0), ("bed", 2.0), ("bath", 2.0)):
        index = table.schema.get_field_index(column)
        table = table.set_column(index, column, pc.multiply(table[column], factor))
    return table


def seed_log(world: World, model: str, table: pa.Table, at: datetime) -> None:
    """Rows as serving logs them: one request of ``table``'s rows at ``at``."""
    records = table.drop_columns(["price"]).to_pylist()
    rows = log_rows(model, "1", uuid.uuid4().hex, records, table["price"].to_pylist(), at)
    with world.ledger.session() as session:
        session.execute(insert(InferenceLog), rows)


def windows(world: World, model: str) -> list[MonitorWindow]:
    with world.ledger.session() as session:
        return list(
            session.scalars(
                select(MonitorWindow)
                .where(MonitorWindow.model_name == model)
                .order_by(MonitorWindow.id)
            )
        )


def gauges(world: World, model: str) -> str:
    registry = CollectorRegistry()
    registry.register(LiveWindowCollector.of(world.ledger_url, model))
    return generate_latest(registry).decode()


def test_drifting_traffic_is_a_drifted_window_with_its_report_and_gauges(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = "m-drifting"
    version = world.champion(model)
    seed_log(world, model, luxury_in_vermont(600, 9), NOW - timedelta(minutes=10))
    for key, value in world.settings(model).model_dump().items():  # the command line
        if value is not None and not isinstance(value, dict):
            raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            monkeypatch.setenv(key.upper(), str(raw))
    get_settings.cache_clear()
    try:
        assert monitor.main(["--until", NOW.isoformat()]) == 0
    finally:
        get_settings.cache_clear()
    result = json.loads((world.tmp / "xcom.json").read_text())
    assert result["decision"] == "drifted" and result["rows"] == 600
    assert result["model_version"] == version
    assert result["reasons"][0].startswith("live drift share ")
    assert f"since v{version} was trained: " in result["reasons"][0]
    assert {"state", "house_size"} <= set(result["drifted_features"])
    assert any(
        r.startswith("users now ask about Vermont: 100% of requests") for r in result["reasons"]
    )
    [row] = windows(world, model)
    assert row.consumed and row.rows == 600 and row.last_log_id - row.first_log_id == 599
    assert set(row.feature_scores) == {"bed", "bath", "acre_lot", "house_size", "status", "state"}
    assert row.window_end == NOW - timedelta(seconds=30)
    assert "<html" in world.store.get_bytes(row.report_html_key).decode()[:2000].lower()
    assert json.loads(world.store.get_bytes(row.report_key))["decision"] == "drifted"
    text = gauges(world, model)
    assert "realtor_live_window_drifted 1.0" in text
    assert f"realtor_live_drift_share {row.drift_share}" in text
    assert 'realtor_live_feature_drift{feature="state"}' in text
    assert "realtor_live_window_rows 600.0" in text


def test_stable_traffic_is_stable_raises_no_gauge_and_a_rerun_gives_one_row(
    world: World,
) -> None:
    model = "m-stable"
    world.champion(model)
    seed_log(world, model, make_rows(600, 2), NOW - timedelta(minutes=10))
    settings = world.settings(model)
    first = monitor.run(monitor.MonitorInputs(until=NOW), settings)
    again = monitor.run(monitor.MonitorInputs(until=NOW), settings)
    assert first["decision"] == "stable", first["reasons"]
    assert first["reasons"][0].startswith("no live drift: share ")
    assert again == first
    assert len(windows(world, model)) == 1
    assert "realtor_live_window_drifted 0.0" in gauges(world, model)


def test_too_few_rows_says_so_waits_and_is_recorded_once(world: World) -> None:
    model = "m-quiet"
    world.champion(model)
    seed_log(world, model, make_rows(37, 3), NOW - timedelta(minutes=50))
    settings = world.settings(model)
    result = monitor.run(monitor.MonitorInputs(until=NOW - timedelta(minutes=40)), settings)
    assert result["decision"] == "too_few_rows" and not result["consumed"]
    assert result["reasons"] == [
        f"37 requests since {(NOW - timedelta(minutes=50)):%Y-%m-%d %H:%M} UTC: below the "
        "minimum (200) to measure drift"
    ]
    later = monitor.run(monitor.MonitorInputs(until=NOW - timedelta(minutes=30)), settings)
    assert later["window_id"] == result["window_id"]  # the same rows: nothing new to record
    assert "realtor_live_window_drifted" not in gauges(world, model)  # no measured window yet
    seed_log(world, model, make_rows(300, 4), NOW - timedelta(minutes=20))
    measured = monitor.run(monitor.MonitorInputs(until=NOW), settings)
    assert measured["decision"] == "stable" and measured["rows"] == 337
    assert measured["first_log_id"] == result["first_log_id"]  # the 37 rows waited
    assert [w.decision for w in windows(world, model)] == ["too_few_rows", "stable"]


def test_two_monitors_at_once_read_each_row_once(world: World) -> None:
    model = "m-concurrent"
    world.champion(model)
    for minutes in (50, 40, 30, 20):
        seed_log(world, model, make_rows(250, minutes), NOW - timedelta(minutes=minutes))
    settings = world.settings(model)
    untils = [NOW - timedelta(minutes=m) for m in (45, 35, 35, 25, 15, 15)]
    errors: list[BaseException] = []

    def one(until: datetime) -> None:
        try:
            monitor.run(monitor.MonitorInputs(until=until), settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(u,)) for u in untils]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    monitor.run(monitor.MonitorInputs(until=NOW), settings)  # whatever is left
    consumed = [w for w in windows(world, model) if w.consumed]
    with world.ledger.session() as session:
        ids = session.scalars(select(InferenceLog.id).where(InferenceLog.model_name == model)).all()
        logged = session.scalar(
            select(func.count()).select_from(InferenceLog).where(InferenceLog.model_name == model)
        )
    read = [i for w in consumed for i in ids if w.first_log_id <= i <= w.last_log_id]
    assert sum(w.rows for w in consumed) == logged == 1000
    assert sorted(read) == sorted(ids)  # every row once: no overlap, no gap
