"""drift_check against a real MLflow registry (SQLite store; the real server once).

One module-wide world: a ledger, a store and six validated batches; the first-model decision
is taken before a champion (a trivial registered version with alias ``production`` and its
``trainings`` row, trained on batch 1) exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from tasks.core.ledger import Batch, DriftDecision, Ledger
from tasks.core.ledger_tables import MonitorWindow
from tasks.core.settings import get_settings
from tasks.core.storage import ObjectStore, open_store
from tasks.drift_check import step as drift_check
from tasks.validate import step as validate
from tests.support.mlflow_server import mlflow_server
from tests.support.monitor_windows import DRIFTED_REASON, add_window
from tests.support.processes import free_port
from tests.tasks.factories import make_rows, put_batch, register_champion

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    ledger: Ledger
    store: ObjectStore
    batches: dict[str, Batch]
    first_model: dict[str, Any]
    champion_version: str


def run_drift(batch_id: int, xcom: Path) -> tuple[int, dict[str, Any] | None]:
    code = drift_check.main(["--batch-id", str(batch_id)])
    return code, json.loads(xcom.read_text()) if code == 0 else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("drift")
    env = {
        "LEDGER_URL": f"sqlite:///{tmp / 'ledger.db'}",
        "STORAGE_URL": f"file://{tmp / 'lake'}",
        "XCOM_RETURN_PATH": str(tmp / "xcom.json"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "MIN_TRAIN_ROWS": "1000",
        "DRIFT_SAMPLE_ROWS": "2000",
        "LOG_LEVEL": "WARNING",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        ledger = Ledger.open(settings.ledger_url)
        store = open_store(settings.storage_url, settings)
        tables = {
            "for_sale": make_rows(3000, 1, status="for_sale"),
            "similar": make_rows(3000, 2, status="for_sale"),
            "sold": make_rows(3000, 3, status="sold"),
            "tiny": make_rows(400, 4, state="Vermont"),
            "broken": make_rows(1500, 5).drop_columns(["bath"]),
            "unreachable": make_rows(1500, 6, status="for_sale"),
            "server": make_rows(2500, 7, status="for_sale"),
        }
        batches = {
            name: put_batch(store, ledger, table, batch_number=i)
            for i, (name, table) in enumerate(tables.items(), start=1)
        }
        for batch in batches.values():
            validate.run(validate.ValidateInputs(batch_id=batch.id), settings)
        code, first = run_drift(batches["for_sale"].id, Path(env["XCOM_RETURN_PATH"]))
        assert code == 0
        version = register_champion(
            settings.mlflow_tracking_uri,
            ledger,
            model_name=settings.model_name,
            batch_id=batches["for_sale"].id,
            training_batch_ids=[batches["for_sale"].id],
        )
        yield World(tmp, env, ledger, store, batches, first, version)
    get_settings.cache_clear()


def decisions(ledger: Ledger, batch_id: int) -> int:
    with ledger.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(DriftDecision)
            .where(DriftDecision.batch_id == batch_id)
        )


def xcom(world: World) -> Path:
    return Path(world.env["XCOM_RETURN_PATH"])


def test_with_no_champion_the_first_model_trains(world: World) -> None:
    result = world.first_model
    assert result["decision"] == "train"
    assert result["reasons"][0] == "first model: no model in production"
    assert result["reference_model_version"] is None and result["reference_batch_ids"] == []
    assert world.store.exists(result["report_key"])  # the decision's JSON, no Evidently run
    assert result["report_html_key"] is None


def test_a_similar_batch_skips_for_no_drift(world: World) -> None:
    code, result = run_drift(world.batches["similar"].id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "skip"
    assert result["reasons"][0].startswith("no drift: share ")
    assert result["reference_model_version"] == world.champion_version
    assert result["reference_batch_ids"] == [world.batches["for_sale"].id]
    assert result["target_distance"] is not None and result["target_distance"] <= 0.1
    html = world.store.get_bytes(result["report_html_key"]).decode()
    assert "<html" in html.lower()
    report = json.loads(world.store.get_bytes(result["report_key"]))
    assert report["evidently"]["metrics"]
    assert {c["column"] for c in report["details"]["columns"]} == {
        "log_price", "bed", "bath", "acre_lot", "house_size", "status", "state"
    }  # fmt: skip


def test_a_sold_only_batch_trains_for_drift(world: World) -> None:
    batch = world.batches["sold"]
    code, result = run_drift(batch.id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "train"
    assert "status" in result["drifted_columns"]
    assert any(
        r.startswith("new status values not in the reference: sold") for r in result["reasons"]
    )
    with world.ledger.session() as session:
        row = session.get(DriftDecision, result["decision_id"])
        assert row.reference_model_version == world.champion_version
        assert row.details["new_values"] == {"status": {"sold": 3000}}

    # re-running gives the same decision and no new ledger row
    code, again = run_drift(batch.id, xcom(world))
    assert code == 0 and again is not None
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in result.items() if k != "seconds"
    }
    assert decisions(world.ledger, batch.id) == 1


def test_a_tiny_batch_skips_for_volume(world: World) -> None:
    code, result = run_drift(world.batches["tiny"].id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "skip"
    assert result["reasons"][0] == (
        "400 rows from one state (Vermont): below the minimum volume (1,000)"
    )


def test_a_quarantined_batch_skips_with_its_reason(world: World) -> None:
    code, result = run_drift(world.batches["broken"].id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "skip"
    assert result["reasons"][0].startswith("batch quarantined: schema: column 'bath' ")
    assert result["report_html_key"] is None  # no Evidently run


def test_mlflow_unreachable_fails_the_task(world: World) -> None:
    batch = world.batches["unreachable"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        world.env,
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
        XCOM_RETURN_PATH=str(world.tmp / "unreachable.json"),
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.run(
        [sys.executable, "-m", "tasks.drift_check", "--batch-id", str(batch.id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert process.returncode == 1, process.stdout + process.stderr
    assert "tasks.drift_check failed" in process.stderr
    assert env["MLFLOW_TRACKING_URI"].removeprefix("http://") in process.stderr
    assert not (world.tmp / "unreachable.json").exists()
    assert decisions(world.ledger, batch.id) == 0


@pytest.mark.s3
@pytest.mark.postgres
def test_against_a_real_mlflow_server(world: World, s3, pg_url: str, monkeypatch) -> None:
    batch = world.batches["server"]
    with mlflow_server(pg_url, s3, world.tmp) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MODEL_NAME", "realtor-price-server")
        get_settings.cache_clear()
        version = register_champion(
            uri,
            world.ledger,
            model_name="realtor-price-server",
            # one training row per batch: this champion's row hangs on another batch
            batch_id=world.batches["sold"].id,
            training_batch_ids=[world.batches["for_sale"].id],
        )
        code, result = run_drift(batch.id, xcom(world))
    get_settings.cache_clear()
    assert code == 0 and result is not None
    assert result["decision"] == "skip"
    assert result["reference_model_version"] == version


@pytest.fixture
def windows(world: World) -> Iterator[Ledger]:
    """The world's ledger; the monitor windows a test adds are gone after it."""
    yield world.ledger
    with world.ledger.session() as session:
        session.execute(delete(MonitorWindow))


def test_a_drifted_live_window_makes_a_similar_batch_train_and_is_marked(
    world: World, windows: Ledger
) -> None:
    batch = put_batch(world.store, world.ledger, make_rows(2500, 2, status="for_sale"), batch_number=20)  # fmt: skip
    validate.run(validate.ValidateInputs(batch_id=batch.id), get_settings())
    window_id = add_window(
        windows, model_name=get_settings().model_name, version=world.champion_version
    )
    code, result = run_drift(batch.id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "train"
    assert result["reasons"][0] == (
        f"users now ask differently: live drift share 0.60 since v{world.champion_version} was "
        f"trained (window {window_id}, 4,812 requests): state 0.41, house_size 0.22; "
        f"{DRIFTED_REASON}"
    )
    with windows.session() as session:
        assert session.get(MonitorWindow, window_id).acted_on_batch_id == batch.id
        details = session.get(DriftDecision, result["decision_id"]).details
    assert details["grounds"] == ["live_drift"]
    assert details["live_window"]["window_id"] == window_id
    assert details["live_window"]["used_as"] == "ground"
    assert details["live_window"]["top_features"] == [
        {"feature": "state", "score": 0.41},
        {"feature": "house_size", "score": 0.22},
    ]


def test_a_live_window_against_an_older_version_is_only_a_note(
    world: World, windows: Ledger
) -> None:
    batch = put_batch(world.store, world.ledger, make_rows(2500, 2, status="for_sale"), batch_number=21)  # fmt: skip
    validate.run(validate.ValidateInputs(batch_id=batch.id), get_settings())
    window_id = add_window(windows, model_name=get_settings().model_name, version="0")
    code, result = run_drift(batch.id, xcom(world))
    assert code == 0 and result is not None
    assert result["decision"] == "skip"
    assert (
        f"live window {window_id} compared against v0, production is "
        f"v{world.champion_version}: not used"
    ) in result["reasons"]
    with windows.session() as session:
        assert session.get(MonitorWindow, window_id).acted_on_batch_id == batch.id
