"""Two processes run each step for the same batch at once, on PostgreSQL: one row each.

Real services: the simulator over HTTP (in its repeat window, so both fetches are served the
same bytes), the ledger on PostgreSQL, the lake on SeaweedFS, a real MLflow server. After
each pair: one row in the step's table, the two results name the same row, one model version,
and every reader (the steps' finders, the story, record) gives the same answer.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tasks.core import registry
from tasks.core.ledger import (
    Batch,
    Delivery,
    DriftDecision,
    Ledger,
    Promotion,
    Training,
    Validation,
)
from tasks.core.lifecycle_ledger import find_drift_decision, find_promotion, find_training
from tasks.core.story import batch_summaries, model_history, read_story
from tests.data_api.server import running_data_api
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database
from tests.support.seaweed import S3Endpoint
from tests.support.steps import start_step

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]
REPO = Path(__file__).resolve().parents[2]


def run_pair(name: str, env: dict[str, str], work: Path, *args: str) -> list[dict]:
    """``tasks.<name>`` twice at the same moment; both must succeed; their XCom results."""
    runs = []
    for side in ("a", "b"):
        xcom = work / f"{name}-{side}.json"
        xcom.unlink(missing_ok=True)
        process = start_step(name, {**os.environ, **env, "XCOM_RETURN_PATH": str(xcom)}, *args)
        runs.append((process, xcom))
    results = []
    for process, xcom in runs:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"tasks.{name} failed:\n{stderr[-3000:]}"
        results.append(json.loads(xcom.read_text()))
    return results


def count(ledger: Ledger, model: type, batch_id: int | None = None) -> int:
    query = select(func.count()).select_from(model)
    if batch_id is not None:
        query = query.where(model.batch_id == batch_id)
    with ledger.session() as session:
        return session.scalar(query)


def test_each_step_twice_at_once_gives_one_row_and_one_model_version(
    tmp_path: Path, s3: S3Endpoint
):
    with ExitStack() as stack:
        ledger_url = stack.enter_context(fresh_database("realtor_pairs"))
        mlflow_db = stack.enter_context(fresh_database("mlflow_pairs"))
        tracking_uri = stack.enter_context(mlflow_server(mlflow_db, s3, tmp_path, "mlflow-pairs"))
        api = stack.enter_context(
            running_data_api(scale=0.01, seed=42, env={"DATA_API_MIN_INTERVAL_SECONDS": "600"})
        )
        s3.create_bucket("pairs")
        env = {
            **s3.env(),
            "DATA_API_URL": api,
            "GROUP_NUMBER": "1",
            "DAY": "Tuesday",
            "STORAGE_URL": "s3://pairs/lake",
            "LEDGER_URL": ledger_url,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MIN_TRAIN_ROWS": "200",
            "TRAIN_TIME_BUDGET_SECONDS": "10",
            "TRAIN_MAX_TRIALS": "2",
        }
        ledger = Ledger.open(ledger_url)

        fetched = run_pair("fetch", env, tmp_path)
        assert sorted(r["status"] for r in fetched) == ["duplicate", "stored"]
        assert fetched[0]["batch_id"] == fetched[1]["batch_id"]
        batch_id = fetched[0]["batch_id"]
        assert count(ledger, Batch) == 1
        assert sorted(d.outcome for d in ledger.deliveries()) == ["duplicate", "stored"]
        assert count(ledger, Delivery) == 2

        arg = ("--batch-id", str(batch_id))
        for step, model in (("validate", Validation), ("drift_check", DriftDecision)):
            results = run_pair(step, env, tmp_path, *arg)
            assert count(ledger, model, batch_id) == 1, step
            assert results[0] == {**results[1], "seconds": results[0]["seconds"]}, step
        assert find_drift_decision(ledger, batch_id).decision == "train"

        trained = run_pair("train", env, tmp_path, *arg)
        assert count(ledger, Training, batch_id) == 1
        assert {r["model_version"] for r in trained} == {"1"}
        assert sorted(r["status"] for r in trained) == ["existing", "trained"]
        client = registry.client(tracking_uri)
        versions = client.search_model_versions("name='realtor-price'")
        assert [v.version for v in versions] == ["1"]  # one model version

        promoted = run_pair("promote", env, tmp_path, *arg)
        assert count(ledger, Promotion, batch_id) == 1
        assert sorted(r["status"] for r in promoted) == ["existing", "promoted"]
        assert sum(bool(r["alias_moved"]) for r in promoted) == 1
        assert registry.champion(client, "realtor-price").version == "1"

        recorded = run_pair("record", env, tmp_path, *arg)
        # every reader gives the same answer
        _, _, decision, training, promotion = read_story(ledger, batch_id)
        (summary,) = batch_summaries(ledger)
        (history,) = model_history(ledger, "realtor-price")
        assert decision.id == find_drift_decision(ledger, batch_id).id
        assert training.id == find_training(ledger, batch_id).id == history["training_id"]
        assert promotion.id == find_promotion(ledger, batch_id).id
        assert training.model_version == summary["model_version"] == history["model_version"]
        for result in recorded:
            assert result["model_version"] == "1"
            assert result["promoted"] is True
            assert result["decision"] == summary["decision"] == "train"
        print(
            "\nCONCURRENCY pairs: fetch",
            [r["status"] for r in fetched],
            "train",
            [r["status"] for r in trained],
            "promote",
            [r["status"] for r in promoted],
            f"rows: validations={count(ledger, Validation)} decisions={count(ledger, DriftDecision)} "
            f"trainings={count(ledger, Training)} promotions={count(ledger, Promotion)} "
            f"versions={len(versions)}",
        )
        ledger.engine.dispose()
