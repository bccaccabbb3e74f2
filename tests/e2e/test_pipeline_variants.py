"""The whole DAG (``airflow dags test``, local runtime) against the course's other behaviours.

1. Answers lost after the API moved on, from the course's published API (batches from 0): two
   answers are lost on the way, the run fails with the gap's reason, and Airflow's retry is
   refused (an open incident) instead of moving on. (A green campaign over that API, batches
   0..5 until the accentless end message, is ``test_pipeline_e2e``'s story.)
2. The time window with new samples (the course's 300 s): two runs inside the window get two
   deliveries of batch 1, each with its own batch_id and its own story, both green.

Row counts are tiny (scale 0.002) and every batch skips training for volume (the training
path is ``test_pipeline_e2e``'s); PostgreSQL ledger, SeaweedFS lake, and the session's Airflow
metadata database and MLflow server (drift_check asks it for the champion), shared with
``test_pipeline_e2e`` (``tests/e2e/conftest.py``).
"""

from __future__ import annotations

import httpx
import pytest

from tests.data_api.server import running_data_api
from tests.e2e.airflow_cli import CliRun
from tests.e2e.conftest import COURSE, LAKE_BUCKET, AirflowEnv
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

SCALE = 0.002
GROUP = 2
WINDOW_SECONDS = 300


def campaign_env(ledger_url: str, api_url: str, name: str, day: str) -> dict[str, str]:
    return {
        "PIPELINE_RETRIES": "1",  # a retry must not move past a lost batch
        "PIPELINE_RETRY_DELAY_SECONDS": "1",
        "GROUP_NUMBER": str(GROUP),
        # every batch skips training for volume: the variants are about fetch, and the
        # training path is test_pipeline_e2e's (this keeps a run near 30 s on 2 cores)
        "MIN_TRAIN_ROWS": "1000000000",
        "FETCH_BACKOFF_INITIAL_SECONDS": "0.1",
        "DATA_API_URL": api_url,
        "DAY": day,
        "LEDGER_URL": ledger_url,
        "STORAGE_URL": f"s3://{LAKE_BUCKET}/variants/{name}",
        "MODEL_NAME": f"realtor-{name}",
    }


def run(airflow: AirflowEnv, env: dict[str, str], name: str) -> CliRun:
    conf = {"group_number": GROUP, "day": env["DAY"]}
    return airflow.run("realtor_pipeline", name, conf, env, timeout=1200)


def stories(ledger_url: str, day: str) -> list[dict]:
    from tasks.core.ledger import Ledger
    from tasks.core.story import batch_summaries

    ledger = Ledger.open(ledger_url)
    try:
        return batch_summaries(ledger, GROUP, day)
    finally:
        ledger.engine.dispose()


def test_answers_lost_after_the_api_moved_on_fail_the_run_and_its_retry(airflow_env: AirflowEnv):
    # a new cursor of the course's API: batches 0 and 1 are lost on the way (the API moved on
    # each time), fetch's own retry gets batch 2: the run fails with the gap's reason, and
    # Airflow's retry is refused instead of moving on to batch 3
    day = "Friday"
    with (
        fresh_database("realtor_variants_course") as ledger_url,
        running_data_api(scale=SCALE, seed=13, env=COURSE) as api,
    ):
        env = campaign_env(ledger_url, api, "course", day)
        httpx.put(f"{api}/admin/faults", json={"mode": "lost_answer", "first_n": 2})
        lost = run(airflow_env, env, "course-lost")
        assert lost.returncode != 0
        log = lost.log_path.read_text(errors="replace")
        assert "gap: expected batch 0 or 1, got 2" in log
        assert "open incident" in log
        assert [s["batch_number"] for s in stories(ledger_url, day)] == [2]  # kept, not lost
        print(
            "\nE2E course variant: 2 lost answers failed a run with the gap's reason, its retry refused"
        )


def test_time_window_deliveries_each_go_through_the_pipeline(airflow_env: AirflowEnv):
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
            done = run(airflow_env, env, name)
            assert done.returncode == 0, done.tail()
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
