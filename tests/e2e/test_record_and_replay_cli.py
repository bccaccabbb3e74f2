"""``tasks.record`` and ``tasks.replay`` through their real command lines (STYLE item 7):
SQLite ledger, file store, the simulator over HTTP for replay. Fast; the full DAG is in
test_pipeline_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.core.ledger import Batch, DriftDecision, Ledger, Validation
from tests.data_api.server import running_data_api
from tests.support.monitor_windows import add_window
from tests.support.steps import StepRun, run_step


def run_task(name: str, args: list[str], env: dict[str, str]) -> StepRun:
    return run_step(name, env, *args, timeout=120)


@pytest.fixture
def task_env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    return {
        "LEDGER_URL": sqlite_url,
        "STORAGE_URL": (tmp_path / "lake").as_uri(),
        "XCOM_RETURN_PATH": str(tmp_path / "xcom" / "return.json"),
    }


def _skipped_batch(ledger: Ledger) -> int:
    with ledger.session() as session:
        batch = Batch(
            group_number=1,
            day="Tuesday",
            batch_number=4,
            sha256="ab" * 32,
            raw_key="raw/group=1/day=Tuesday/batch=0004-abababababababab.parquet",
            rows=40,
            bytes=1234,
            schema_problems=[],
            status="curated",
        )
        session.add(batch)
        session.flush()
        session.add(
            Validation(
                batch_id=batch.id,
                outcome="pass",
                status="curated",
                rows_in=40,
                rows_out=40,
                rows_dropped=0,
                reasons=["0 of 40 rows dropped"],
            )
        )
        session.add(
            DriftDecision(
                batch_id=batch.id,
                decision="skip",
                reasons=["40 rows: below the minimum volume (100)"],
                drift_share=0.1,
            )
        )
        return batch.id


def test_record_writes_the_story_once(task_env: dict[str, str], tmp_path: Path) -> None:
    batch_id = _skipped_batch(Ledger.open(task_env["LEDGER_URL"]))
    done = run_task("record", ["--batch-id", str(batch_id)], task_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("record: batch 4")
    assert "below the minimum volume" in done.stdout
    result = json.loads(Path(task_env["XCOM_RETURN_PATH"]).read_text())
    assert result["decision"] == "skip"
    assert result["model_version"] is None
    assert result["promoted"] is None
    assert result["outcome"] == "training skipped"
    assert result["summary_key"] == f"reports/runs/batch_id={batch_id}/summary.json"
    stored = tmp_path / "lake" / result["summary_key"]
    summary = json.loads(stored.read_text())
    assert summary["decision_reasons"] == ["40 rows: below the minimum volume (100)"]
    assert summary["rows"] == 40
    assert summary["recorded"] is True
    # the run's end is in the ledger: the next fetch will not hand this batch back
    from tasks.core.lifecycle_ledger import find_batch_record

    mark = find_batch_record(Ledger.open(task_env["LEDGER_URL"]), batch_id)
    assert mark is not None and mark.summary_key == result["summary_key"]
    written_at = stored.stat().st_mtime_ns

    again = run_task("record", ["--batch-id", str(batch_id)], task_env)
    assert again.returncode == 0, again.stderr
    assert "record.unchanged" in again.stderr
    assert stored.stat().st_mtime_ns == written_at  # idempotent: nothing rewritten
    rerun = json.loads(Path(task_env["XCOM_RETURN_PATH"]).read_text())
    rerun.pop("seconds"), result.pop("seconds")
    assert rerun == result


def test_record_of_an_unknown_batch_fails_clearly(task_env: dict[str, str]) -> None:
    Ledger.open(task_env["LEDGER_URL"])
    done = run_task("record", ["--batch-id", "999"], task_env)
    assert done.returncode == 1
    assert "no batch with id 999" in done.stderr


@pytest.mark.parametrize("args", [[], ["--batch-id", "zero"], ["--batch-id", "0"]])
def test_record_refuses_bad_arguments(task_env: dict[str, str], args: list[str]) -> None:
    assert run_task("record", args, task_env).returncode == 2


def test_replay_restarts_the_api_and_the_ledger_cursor(task_env: dict[str, str]) -> None:
    with running_data_api(scale=0.002, seed=3) as api_url:
        env = {**task_env, "DATA_API_URL": api_url, "GROUP_NUMBER": "2", "DAY": "Friday"}
        first = run_task("fetch", [], env)
        assert first.returncode == 0, first.stderr
        assert "stored batch 1" in first.stdout
        second = run_task("fetch", [], env)
        assert "stored batch 2" in second.stdout

        replay = run_task("replay", [], env)
        assert replay.returncode == 0, replay.stderr
        result = json.loads(Path(env["XCOM_RETURN_PATH"]).read_text())
        assert result["previous_last_batch_number"] == 2
        assert Ledger.open(env["LEDGER_URL"]).cursor(2, "Friday").last_batch_number == 0

        again = run_task("fetch", [], env)  # batch 1 again, already stored: a duplicate
        assert again.returncode == 0, again.stderr
        assert "duplicate batch 1" in again.stdout


def test_replay_fails_clearly_when_the_api_is_down(task_env: dict[str, str]) -> None:
    env = {**task_env, "DATA_API_URL": "http://127.0.0.1:9"}
    done = run_task("replay", [], env)
    assert done.returncode == 1
    assert "did not answer" in done.stderr


def test_record_says_live_drift_no_batch_took_yet(task_env: dict[str, str]) -> None:
    ledger = Ledger.open(task_env["LEDGER_URL"])
    batch_id = _skipped_batch(ledger)
    window = add_window(ledger, model_name="m-live", version="3")
    done = run_task("record", ["--batch-id", str(batch_id)], {**task_env, "MODEL_NAME": "m-live"})
    assert done.returncode == 0, done.stderr
    assert f"live drift, no labelled data yet: window {window} (drift share 0.60" in done.stdout
    result = json.loads(Path(task_env["XCOM_RETURN_PATH"]).read_text())
    (line,) = result["pending_live_drift"]
    assert line.startswith(f"live drift, no labelled data yet: window {window} ")
