"""The whole pipeline, end to end, through Airflow: ``airflow dags test realtor_pipeline``
with the local runtime, once per batch until the data API is exhausted, against real services:
the data API simulator over HTTP (scale 0.01) as the course's published code runs it (batches
numbered from 0, the end-of-data message without the accent, ``["ok"]`` from the restart),
PostgreSQL for the ledger and for Airflow's metadata, SeaweedFS as the S3 store, and an MLflow
server (Postgres backend, artifacts proxied to SeaweedFS). Then the lifecycle story is read
back from the ledger and the MLflow registry, and a replay of the first batch through both
DAGs must change nothing.

The simulator's default contract (batches from 1, the accented end message) goes through the
same task command lines in ``tests/tasks/test_lifecycle_story.py`` and through the DAG in
``test_pipeline_variants.py`` (the time window); fetch's handling of each variant is in
``tests/tasks``.

Slow (several minutes: a few Airflow runs of all the tasks). Needs PostgreSQL on
127.0.0.1:5432 (skipped off CI without it), ``weed`` and both virtualenvs. Airflow's metadata
database and the MLflow server are the session's (``tests/e2e/conftest.py``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.data_api.server import running_data_api
from tests.e2e.airflow_cli import CliRun
from tests.e2e.conftest import COURSE, LAKE_BUCKET, AirflowEnv
from tests.support.postgres import fresh_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.s3,
    # the module's story (seven DAG runs) is set up within the first test's timeout: ~400 s
    # beside another xdist worker on 2 cores, ~1000 s with other sessions' suites on the same
    # 2 cores (pyproject's 600 s guards one test)
    pytest.mark.timeout(1800),
]

SCALE = 0.01
SEED = 42
GROUP, DAY = 1, "Tuesday"
FIRST_BATCH = int(COURSE["DATA_API_FIRST_BATCH_NUMBER"])
MAX_RUNS = 9  # six batches, the exhausted run, and some slack
CONF = {"group_number": GROUP, "day": DAY}
MODEL = "realtor-price-e2e"


def number(scenario: int) -> int:
    """The batch number the API gives the ``scenario``-th batch of its story (1-6)."""
    return FIRST_BATCH + scenario - 1


@dataclass
class Story:
    airflow: AirflowEnv
    env: dict[str, str]
    runs: list[CliRun] = field(default_factory=list)

    def ledger(self):
        from tasks.core.ledger import Ledger

        return Ledger.open(self.env["LEDGER_URL"])

    def mlflow(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.env["MLFLOW_TRACKING_URI"])

    def run(self, dag_id: str, name: str) -> CliRun:
        result = self.airflow.run(dag_id, name, CONF, self.env)
        self.runs.append(result)
        assert result.returncode == 0, f"{dag_id} ({name}) failed:\n{result.tail()}"
        return result


def _stories_by_batch(story: Story) -> dict[int, dict[str, Any]]:
    from tasks.core.story import batch_summaries

    return {s["batch_number"]: s for s in batch_summaries(story.ledger(), GROUP, DAY)}


def _counts(story: Story) -> dict[str, int]:
    from tasks.core.ledger import Batch, DriftDecision, Promotion, Training, Validation

    with story.ledger().session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Batch, Validation, DriftDecision, Training, Promotion)
        }


@pytest.fixture(scope="module")
def story(airflow_env: AirflowEnv) -> Iterator[Story]:
    with (
        fresh_database("realtor_e2e_ledger") as ledger_url,
        running_data_api(scale=SCALE, seed=SEED, env=COURSE) as api_url,
    ):
        env = {
            "PIPELINE_RETRIES": "0",  # a failure shows at once
            "GROUP_NUMBER": str(GROUP),
            "DAY": DAY,
            "DATA_API_URL": api_url,
            "LEDGER_URL": ledger_url,
            "STORAGE_URL": f"s3://{LAKE_BUCKET}/story",
            "MODEL_NAME": MODEL,
            "MIN_TRAIN_ROWS": str(round(10_000 * SCALE)),  # the volume rule, scaled like the data
            "TRAIN_TIME_BUDGET_SECONDS": "10",
            "TRAIN_MAX_TRIALS": "3",
        }
        story = Story(airflow=airflow_env, env={**airflow_env.env, **env})
        for run in range(1, MAX_RUNS + 1):
            story.run("realtor_pipeline", f"run-{run}")
            cursor = story.ledger().cursor(GROUP, DAY)
            if cursor is not None and cursor.exhausted_at is not None:
                break
        else:
            pytest.fail(f"the API was not exhausted after {MAX_RUNS} runs")
        yield story


def test_every_batch_was_stored_and_the_api_exhausted(story: Story) -> None:
    batches = _stories_by_batch(story)
    assert sorted(batches) == [number(scenario) for scenario in range(1, 7)]  # 0..5
    assert len(story.runs) == 7, "one run per batch, then one that finds the API exhausted"
    # the accentless end message ended the campaign as the end of data, not as an error
    assert "exhausted" in story.runs[-1].log_path.read_text(errors="replace")
    for batch_number, summary in batches.items():  # none silently skipped: each has its story
        assert summary["validation_status"] in ("curated", "quarantined"), batch_number
        assert summary["decision"] in ("train", "skip"), batch_number
        assert summary["decision_reasons"], f"batch {batch_number}: a decision without reasons"


def test_lifecycle_story(story: Story) -> None:
    batches = _stories_by_batch(story)
    first = batches[number(1)]
    assert first["decision"] == "train"
    assert any("first model" in r or "no model" in r for r in first["decision_reasons"])
    assert first["promoted"] is True
    for scenario in (3, 5):  # sold only; prices of 300k and up
        summary = batches[number(scenario)]
        assert summary["decision"] == "train", (scenario, summary["decision_reasons"])
        assert any("drift" in r.lower() for r in summary["decision_reasons"]), scenario
        assert summary["model_version"], scenario
        assert summary["promoted"] is not None, scenario
    small = batches[number(4)]  # one small state
    assert small["decision"] == "skip"
    assert any("minimum volume" in r or "volume" in r for r in small["decision_reasons"])
    assert small["model_version"] is None


def test_every_training_and_promotion_has_reasons(story: Story) -> None:
    from tasks.core.ledger import Promotion, Training

    with story.ledger().session() as session:
        trainings = list(session.scalars(select(Training)))
        promotions = list(session.scalars(select(Promotion)))
    assert len(trainings) >= 3
    assert len(promotions) == len(trainings)
    for row in (*trainings, *promotions):
        assert row.reasons, f"{type(row).__name__} of batch {row.batch_id} has no reasons"


def test_production_alias_is_on_the_last_promoted_version(story: Story) -> None:
    from tasks.core.ledger import Promotion

    with story.ledger().session() as session:
        promoted = list(
            session.scalars(select(Promotion).where(Promotion.promoted).order_by(Promotion.id))
        )
    assert promoted, "at least the first model was promoted"
    production = story.mlflow().get_model_version_by_alias(MODEL, "production")
    assert production.version == promoted[-1].challenger_version
    # each promotion beat the champion of its time on the same holdout: the last is the best
    for earlier, later in itertools.pairwise(promoted):
        assert later.champion_version == earlier.challenger_version


def test_every_batch_has_its_run_summary_in_the_store(story: Story) -> None:
    from tasks.core.lake import summary_key
    from tasks.core.settings import TaskSettings
    from tasks.core.storage import open_store

    settings = TaskSettings(
        storage_url=story.env["STORAGE_URL"],
        s3_endpoint_url=story.env["S3_ENDPOINT_URL"],
        aws_access_key_id=story.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=story.env["AWS_SECRET_ACCESS_KEY"],
    )
    store = open_store(settings.storage_url, settings)
    for batch_number, summary in _stories_by_batch(story).items():
        stored = json.loads(store.get_bytes(summary_key(summary["batch_id"])))
        # record adds the live drift pending when it ran (none here: no live traffic)
        assert stored.pop("pending_live_drift") == []
        assert stored == summary, f"batch {batch_number}: the stored summary is not the story"


def test_replaying_a_batch_changes_nothing(story: Story) -> None:
    before = _counts(story)
    versions_before = len(story.mlflow().search_model_versions(f"name='{MODEL}'"))
    alias_before = story.mlflow().get_model_version_by_alias(MODEL, "production").version
    stories_before = _stories_by_batch(story)

    story.run("realtor_replay", "replay")  # the restart answers ["ok"]
    story.run("realtor_pipeline", "rerun-first-batch")  # fetch: duplicate of the first batch

    assert _counts(story) == before
    assert len(story.mlflow().search_model_versions(f"name='{MODEL}'")) == versions_before
    assert story.mlflow().get_model_version_by_alias(MODEL, "production").version == alias_before
    assert _stories_by_batch(story) == stories_before
    log = story.runs[-1].log_path.read_text(errors="replace")
    assert f"fetch: duplicate batch {number(1)}" in log
