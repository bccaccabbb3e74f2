"""train and promote through their real command lines, against a real MLflow server.

MLflow: ``mlflow server`` with a PostgreSQL backend store and artifacts proxied to SeaweedFS.
Ledger: PostgreSQL (so promote takes its advisory lock); object store: SeaweedFS. The story:
the first model is promoted; a worse challenger (little data, tiny budget) is rejected with
reasons; re-running either step for a batch changes nothing; the production model loads by
its alias and predicts on canonical rows with nulls and an unseen state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tasks.core.holdout import holdout_mask
from tasks.core.leaderboard import scores_on
from tasks.core.ledger import Ledger, Promotion, Training
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database
from tests.support.seaweed import S3Endpoint
from tests.support.steps import run_step_ok
from tests.tasks.train_factories import curated_batch, make_rows

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

MODEL = "realtor-price-test"


@pytest.fixture(scope="module")
def tracking_uri(s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with (
        fresh_database("mlflow_test") as backend,
        mlflow_server(
            backend, s3, tmp_path_factory.mktemp("mlflow"), artifacts_bucket="mlflow-lifecycle"
        ) as uri,
    ):
        yield uri


@pytest.fixture
def env(
    tracking_uri: str,
    pg_url: str,
    s3: S3Endpoint,
    s3_bucket: str,
    tmp_path: Path,
) -> dict[str, str]:
    return {
        **s3.env(),
        "LEDGER_URL": pg_url,
        "STORAGE_URL": f"s3://{s3_bucket}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODEL_NAME": MODEL,
        "XCOM_RETURN_PATH": str(tmp_path / "xcom" / "return.json"),
        "TRAIN_TIME_BUDGET_SECONDS": "5",
        "TRAIN_MAX_TRIALS": "2",
        "TRAIN_THREADS": "1",
        "RANDOM_SEED": "11",
        "LOG_FORMAT": "json",
    }


def promote_summary(result: dict) -> str:
    from tasks.promote.step import summary

    return summary(result)


def cli(step: str, batch_id: int, env: dict[str, str], **extra: str) -> dict:
    """Run ``python -m tasks.<step> --batch-id N``; its XCom result (fails on exit != 0)."""
    run = run_step_ok(step, {**env, **extra}, "--batch-id", str(batch_id), timeout=300)
    assert run.stdout.startswith(f"{step}: ") and run.stdout.count("\n") == 1, run.stdout
    return run.result


def test_first_model_promoted_worse_challenger_rejected_reruns_change_nothing(
    env: dict[str, str],
) -> None:
    from mlflow.tracking import MlflowClient

    settings = TaskSettings(
        ledger_url=env["LEDGER_URL"],
        storage_url=env["STORAGE_URL"],
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    ledger = Ledger.open(settings.ledger_url)
    store = open_store(settings.storage_url, settings)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    first = curated_batch(store, ledger, make_rows(6_000, seed=21), batch_number=1)

    # 1. the first model: trained, registered, promoted (no champion yet)
    trained = cli("train", first.id, env)
    assert trained["model_name"] == MODEL and trained["model_version"] == "1"
    assert trained["training_batch_ids"] == [first.id]
    assert trained["reasons"] == ["first batch: 6,000 rows, no model yet"]
    assert trained["rows_train"] + trained["rows_holdout"] == 6_000
    metrics, baseline = trained["metrics"], trained["baseline_mae"]
    assert metrics["mae"] < 0.8 * baseline, f"MAE {metrics['mae']:.0f} vs baseline {baseline:.0f}"
    for key in (
        "rmse",
        "r2",
        "mape",
        "mae_status_sold",
        "mae_status_for_sale",
        "mae_band_200k_500k",
    ):
        assert key in metrics
    print(f"model MAE / baseline MAE = {metrics['mae'] / baseline:.3f}")

    promoted = cli("promote", first.id, env)
    assert promoted["promoted"] is True
    assert promoted["champion_version"] is None and promoted["challenger_version"] == "1"
    assert promoted["reasons"][0].startswith("no champion: first model")
    v1 = client.get_model_version_by_alias(MODEL, "production")
    assert v1.version == "1" and v1.current_stage == "Production"
    assert "promoted_at" in v1.tags and "no champion" in v1.tags["promotion_reasons"]
    assert v1.tags["batch_id"] == str(first.id)
    assert json.loads(v1.tags["training_batch_ids"]) == [first.id]

    # what the run holds: metrics, lineage per batch, SHAP, background, reasons
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["baseline_mae"] == pytest.approx(baseline)
    assert run.data.tags["decision_reasons"] == json.dumps(trained["reasons"])
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == first.sha256[:32]
    assert first.sha256[:16] in dataset_input.dataset.name
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    explain = {a.path for a in client.list_artifacts(trained["run_id"], "explain")}
    assert explain == {
        "explain/background.parquet",
        "explain/shap_importance.json",
        "explain/shap_importance.png",
    }
    root = {a.path for a in client.list_artifacts(trained["run_id"])}
    assert "reasons.json" in root

    # 2. a worse challenger: trained on a small batch only, with the smallest budget
    small = curated_batch(
        store, ledger, make_rows(300, seed=22), batch_number=2, reasons=["price drifted: 0.31"]
    )
    worse = cli("train", small.id, env, TRAIN_WINDOW_BATCHES="1", TRAIN_MAX_TRIALS="1")
    assert worse["model_version"] == "2" and worse["training_batch_ids"] == [small.id]
    rejected = cli("promote", small.id, env)
    assert rejected["promoted"] is False
    assert rejected["champion_version"] == "1" and rejected["challenger_version"] == "2"
    assert any("keep champion v1" in reason for reason in rejected["reasons"])
    assert rejected["challenger_metrics"]["mae"] > rejected["champion_metrics"]["mae"]
    assert client.get_model_version_by_alias(MODEL, "production").version == "1"
    v2 = client.get_model_version(MODEL, "2")
    assert v2.tags["promoted"] == "false" and "keep champion v1" in v2.tags["promotion_reasons"]

    # 3. re-running a step for a batch returns its record and writes nothing
    assert cli("train", first.id, env)["model_version"] == "1"
    again = cli("promote", small.id, env)
    assert again["promotion_id"] == rejected["promotion_id"] and again["promoted"] is False
    replayed = cli("promote", first.id, env)  # the alias does not move: no PROMOTED
    assert (replayed["status"], replayed["alias_moved"]) == ("existing", False)
    assert "PROMOTED" not in promote_summary(replayed) and "nothing changed" in promote_summary(
        replayed
    )
    assert "PROMOTED" in promote_summary(promoted)
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2
    with ledger.session() as session:
        assert session.query(Training).count() == 2
        assert session.query(Promotion).count() == 2

    # 4. the production model loads by alias and predicts on canonical rows
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    production = mlflow.pyfunc.load_model(f"models:/{MODEL}@production")
    rows = make_rows(4, seed=23).to_pandas()
    rows.loc[0, "state"] = "Atlantis"
    rows.loc[1, ["status", "city", "zip_code", "bed", "house_size", "prev_sold_date"]] = None
    predicted = np.asarray(production.predict(rows))
    assert predicted.shape == (4,) and np.all(np.isfinite(predicted)) and np.all(predicted > 0)

    # 5. a later promotion leaves exactly one version in Production (the former one archived)
    from tasks.core import registry

    registry.make_production(client, MODEL, "2")
    assert client.get_model_version_by_alias(MODEL, "production").version == "2"
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{MODEL}'")}
    assert stages == {"1": "Archived", "2": "Production"}

    # 6. one fair leaderboard: every version scored on the newest holdout (batch 2's)
    assert rejected["leaderboard_holdout_batch_id"] == small.id
    assert rejected["leaderboard_scored"] == ["v1", "v2"] and rejected["leaderboard_skipped"] == []
    assert promoted["leaderboard_holdout_batch_id"] == first.id  # v1 on its own holdout then
    with ledger.session() as session:
        training = session.query(Training).filter_by(batch_id=small.id).one()
    board = scores_on(ledger, MODEL, small.id)
    assert set(board) == {"1", "2"}
    assert {s.holdout_rows for s in board.values()} == {training.rows_holdout}
    # v1 recomputed independently: the held-out rows of batch 2 as built here, v1 as loaded
    frame = make_rows(300, seed=22).to_pandas()
    rows = frame.loc[holdout_mask(frame, training.holdout_share)]
    v1_model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    v1_mae = float(np.mean(np.abs(np.asarray(v1_model.predict(rows)) - rows["price"])))
    assert len(rows) == training.rows_holdout
    assert board["1"].mae == pytest.approx(v1_mae, rel=1e-9)
    assert board["2"].mae == pytest.approx(training.metrics["mae"])
    assert board["1"].mlflow_run_id == client.get_model_version(MODEL, "1").run_id

    # a version registered by hand (v1's model again) is loaded and scored by the CLI; one whose
    # artifacts are gone is skipped, named, and gets no row
    client.create_model_version(MODEL, source=f"models:/{MODEL}/1")  # v3: v1's model again
    v1_run = client.get_model_version(MODEL, "1").run_id
    client.create_model_version(MODEL, source=f"runs:/{v1_run}/gone", run_id=v1_run)  # v4
    rescored = run_step_ok("promote", env, "--leaderboard", timeout=300)
    assert rescored.result["leaderboard_scored"] == ["v3"], rescored.result
    assert rescored.result["leaderboard_skipped"] == ["v4"], rescored.result
    assert "SKIPPED" in rescored.stdout and "v4" in rescored.stdout
    assert "leaderboard.version_skipped" in rescored.stderr
    board = scores_on(ledger, MODEL, small.id)
    assert set(board) == {"1", "2", "3"}
    assert board["3"].mae == pytest.approx(v1_mae, rel=1e-9)
