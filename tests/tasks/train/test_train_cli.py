"""train and promote refuse, through their real command lines, what the ledger does not justify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.core.ledger import Ledger, Training
from tasks.core.storage import open_store
from tests.support.steps import StepRun, run_step
from tests.tasks.train_factories import curated_batch, make_rows


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "STORAGE_URL": f"file://{tmp_path / 'lake'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "XCOM_RETURN_PATH": str(tmp_path / "xcom.json"),
    }


def run(step: str, env: dict[str, str], *args: str) -> StepRun:
    return run_step(step, env, *args, timeout=120)


def test_train_and_promote_refuse_a_batch_whose_decision_is_skip(env: dict[str, str]) -> None:
    ledger = Ledger.open(env["LEDGER_URL"])
    store = open_store(env["STORAGE_URL"])
    batch = curated_batch(
        store, ledger, make_rows(500, 1), batch_number=1, decision="skip", reasons=["no drift"]
    )
    trained = run("train", env, "--batch-id", str(batch.id))
    assert trained.returncode == 1
    assert "drift decision is 'skip' (no drift)" in trained.stderr
    assert trained.stdout == "" and not Path(env["XCOM_RETURN_PATH"]).exists()
    promoted = run("promote", env, "--batch-id", str(batch.id))
    assert promoted.returncode == 1
    assert f"batch {batch.id} has no training" in promoted.stderr
    assert "drift decision is 'skip'" in promoted.stderr
    with ledger.session() as session:
        assert session.query(Training).count() == 0


def test_train_refuses_a_batch_without_a_decision(env: dict[str, str]) -> None:
    ledger = Ledger.open(env["LEDGER_URL"])
    batch = curated_batch(
        open_store(env["STORAGE_URL"]), ledger, make_rows(50, 2), batch_number=1, decision=None
    )
    done = run("train", env, "--batch-id", str(batch.id))
    assert done.returncode == 1
    assert "has no drift decision" in done.stderr and "never trained without" in done.stderr


def test_inputs_schema_and_bad_arguments(env: dict[str, str]) -> None:
    schema = run("promote", env, "--schema")
    assert schema.returncode == 0
    assert "batch_id" in json.loads(schema.stdout)["properties"]
    assert run("train", env, "--batch-id", "zero").returncode == 2
