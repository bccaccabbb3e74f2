"""The whole DAG (``airflow dags test``, local runtime) against the course's other behaviours.

1. A simulator started as the course's published code runs it: batches from 0, the end message
   without the accent, 400 for an invalid group, ``["ok"]`` from the restart. Every run is
   green until the API is exhausted; batch numbers 0..5 are all in the ledger with a story.
   Then, after a replay, two answers are lost after the API moved on: the run fails with the
   gap's reason, and Airflow's retry is refused (an open incident) instead of moving on.
2. The time window with new samples (the course's 300 s): two runs inside the window get two
   deliveries of batch 1, each with its own batch_id and its own story, both green.

Row counts are tiny (scale 0.002) and every batch skips training for volume (the training
path is ``test_pipeline_e2e``'s); PostgreSQL ledger and Airflow metadata, SeaweedFS lake, a
real MLflow server (drift_check asks it for the champion), as ``test_pipeline_e2e``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.data_api.server import running_data_api
from tests.e2e.airflow_cli import AIRFLOW, REPO, CliRun, run_airflow
from tests.e2e.test_pipeline_e2e import airflow_metadata_db
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

SCALE = 0.002
GROUP = 2
COURSE = {
    "DATA_API_FIRST_BATCH_NUMBER": "0",
    "DATA_API_END_OF_DATA_MESSAGE": "Ya se recolectó toda la información minima necesaria",
    "DATA_API_INVALID_GROUP_STATUS": "400",
    "DATA_API_RESTART_ANSWER": "ok_list",
}
WINDOW_SECONDS = 300


@dataclass
class Airflow:
    base_env: dict[str, str]
    workdir: Path

    def run(self, env: dict[str, str], dag_id: str, name: str, day: str) -> CliRun:
        conf = json.dumps({"group_number": GROUP, "day": day})
        return run_airflow(
            ["dags", "test", dag_id, "-c", conf],
            {**self.base_env, **env},
            self.workdir / f"{name}.log",
            1200,
        )


@pytest.fixture(scope="module")
def airflow(s3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} is missing: create the Airflow env (requirements/airflow-dev.txt)")
    workdir = tmp_path_factory.mktemp("e2e-variants")
    s3.create_bucket("variants-lake")
    with (
        airflow_metadata_db(workdir) as airflow_db_url,
        fresh_database("realtor_variants_mlflow") as mlflow_db_url,
        mlflow_server(mlflow_db_url, s3, workdir, artifacts_bucket="variants-mlflow") as tracking,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PIPELINE_"))},
            **s3.env(),
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url,
            "PIPELINE_RUNTIME": "local",
            "PIPELINE_TASKS_PYTHON": str(REPO / ".venv" / "bin" / "python"),
            "PIPELINE_RETRIES": "1",  # a retry must not move past a lost batch
            "PIPELINE_RETRY_DELAY_SECONDS": "1",
            "PIPELINE_SCHEDULE": "none",
            "GROUP_NUMBER": str(GROUP),
            "S3_ENDPOINT_URL": s3.endpoint_url,
            "MLFLOW_TRACKING_URI": tracking,
            # every batch skips training for volume: the variants are about fetch, and the
            # training path is test_pipeline_e2e's (this keeps a run near 30 s on 2 cores)
            "MIN_TRAIN_ROWS": "1000000000",
            "LOG_FORMAT": "console",
            "FETCH_BACKOFF_INITIAL_SECONDS": "0.1",
        }
        migrate = run_airflow(["db", "migrate"], env, workdir / "migrate.log", 600)
        assert migrate.returncode == 0, migrate.tail()
        yield Airflow(env, workdir)


def campaign_env(ledger_url: str, api_url: str, name: str, day: str) -> dict[str, str]:
    return {
        "DATA_API_URL": api_url,
        "DAY": day,
        "LEDGER_URL": ledger_url,
        "STORAGE_URL": f"s3://variants-lake/{name}",
        "MODEL_NAME": f"realtor-{name}",
    }


def stories(ledger_url: str, day: str) -> list[dict]:
    from tasks.ledger import Ledger
    from tasks.story import batch_summaries

    ledger = Ledger.open(ledger_url)
    try:
        return batch_summaries(ledger, GROUP, day)
    finally:
        ledger.engine.dispose()


def test_course_variant_from_zero_to_the_accentless_end(airflow: Airflow):
    day = "Wednesday"
    with (
        fresh_database("realtor_variants_course") as ledger_url,
        running_data_api(scale=SCALE, seed=13, env=COURSE) as api,
    ):
        env = campaign_env(ledger_url, api, "course", day)
        runs = []
        for number in range(8):
            run = airflow.run(env, "realtor_pipeline", f"course-{number}", day)
            assert run.returncode == 0, run.tail()
            runs.append(run)
            if "exhausted" in run.log_path.read_text(errors="replace"):
                break
        summaries = stories(ledger_url, day)
        assert [s["batch_number"] for s in summaries] == [0, 1, 2, 3, 4, 5]
        assert len(runs) == 7  # one per batch, then the one that finds the API exhausted
        for summary in summaries:  # none silently skipped: each has its story, with reasons
            assert summary["validation_status"] in ("curated", "quarantined")
            assert summary["decision"] == "skip" and summary["decision_reasons"]
        # another day (a new cursor): batches 0 and 1 are lost on the way (the API moved on
        # each time), fetch's own retry gets batch 2: the run fails with the gap's reason, and
        # Airflow's retry is refused instead of moving on to batch 3
        other = "Friday"
        httpx.put(f"{api}/admin/faults", json={"mode": "lost_answer", "first_n": 2})
        lost = airflow.run({**env, "DAY": other}, "realtor_pipeline", "course-lost", other)
        assert lost.returncode != 0
        log = lost.log_path.read_text(errors="replace")
        assert "gap: expected batch 0 or 1, got 2" in log
        assert "open incident" in log
        assert [s["batch_number"] for s in stories(ledger_url, other)] == [2]  # kept, not lost
        print(
            f"\nE2E course variant: {len(runs)} green runs (batches 0..5, then exhausted); "
            "2 lost answers failed a run with the gap's reason, its retry refused"
        )


def test_time_window_deliveries_each_go_through_the_pipeline(airflow: Airflow):
    day = "Thursday"
    with (
        fresh_database("realtor_variants_window") as ledger_url,
        running_data_api(
            scale=SCALE,
            seed=17,
            env={
                "DATA_API_MIN_INTERVAL_SECONDS": str(WINDOW_SECONDS),
                "DATA_API_WINDOW_MODE": "resample",
            },
        ) as api,
    ):
        env = campaign_env(ledger_url, api, "window", day)
        for name in ("window-1", "window-2"):
            run = airflow.run(env, "realtor_pipeline", name, day)
            assert run.returncode == 0, run.tail()
        inside = stories(ledger_url, day)
        assert [s["batch_number"] for s in inside] == [1, 1]
        assert inside[0]["batch_id"] != inside[1]["batch_id"]
        assert inside[0]["sha256"] != inside[1]["sha256"]
        for summary in inside:  # each delivery went through the pipeline as a batch
            assert summary["validation_status"] in ("curated", "quarantined")
            assert summary["decision"] in ("train", "skip") and summary["decision_reasons"]
        print(
            "\nE2E time window: 2 green runs inside the window, 2 deliveries of batch 1 with "
            f"their own batch ids, each with its story: {[s['outcome'] for s in inside]}"
        )
