"""The whole pipeline, end to end, through Airflow: ``airflow dags test realtor_pipeline``
with the local runtime, once per batch until the data API is exhausted, against real services:
the data API simulator over HTTP (scale 0.01), PostgreSQL for the ledger and for Airflow's
metadata, SeaweedFS as the S3 store, and an MLflow server (Postgres backend, artifacts
proxied to SeaweedFS). Then the lifecycle story is read back from the ledger and the MLflow
registry, and a replay of batch 1 through both DAGs must change nothing.

Slow (several minutes: a few Airflow runs of all the tasks). Needs PostgreSQL on
127.0.0.1:5432 (skipped off CI without it), ``weed`` and both virtualenvs.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.data_api.server import running_data_api
from tests.e2e.airflow_cli import AIRFLOW, REPO, CliRun, airflow_path, run_airflow
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

SCALE = 0.01
SEED = 42
GROUP, DAY = 1, "Tuesday"
MAX_RUNS = 9  # six batches, the exhausted run, and some slack
RUN_TIMEOUT = 1800
CONF = json.dumps({"group_number": GROUP, "day": DAY})
MODEL = "realtor-price-e2e"


@dataclass
class Story:
    env: dict[str, str]
    workdir: Path
    bucket: str
    runs: list[CliRun] = field(default_factory=list)

    def ledger(self):
        from tasks.ledger import Ledger

        return Ledger.open(self.env["LEDGER_URL"])

    def mlflow(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.env["MLFLOW_TRACKING_URI"])

    def run(self, dag_id: str, name: str) -> CliRun:
        result = run_airflow(
            ["dags", "test", dag_id, "-c", CONF],
            self.env,
            self.workdir / f"{name}.log",
            RUN_TIMEOUT,
        )
        self.runs.append(result)
        assert result.returncode == 0, f"{dag_id} ({name}) failed:\n{result.tail()}"
        return result


def _stories_by_batch(story: Story) -> dict[int, dict[str, Any]]:
    from tasks.story import batch_summaries

    return {s["batch_number"]: s for s in batch_summaries(story.ledger(), GROUP, DAY)}


def _counts(story: Story) -> dict[str, int]:
    from tasks.ledger import Batch, DriftDecision, Promotion, Training, Validation

    with story.ledger().session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Batch, Validation, DriftDecision, Training, Promotion)
        }


def _airflow_has_asyncpg() -> bool:
    python = AIRFLOW.with_name("python")
    done = subprocess.run([str(python), "-c", "import asyncpg"], capture_output=True, check=False)
    return done.returncode == 0


@contextmanager
def airflow_metadata_db(workdir: Path) -> Iterator[str]:
    """Airflow's metadata database: a fresh PostgreSQL one (default), or SQLite when
    E2E_AIRFLOW_DB=sqlite (for an Airflow env without asyncpg, which Airflow 3 needs to
    talk to PostgreSQL: its async engine)."""
    choice = os.environ.get("E2E_AIRFLOW_DB", "postgres")
    if choice == "sqlite":
        yield f"sqlite:///{workdir / 'airflow.db'}"
        return
    if choice != "postgres":
        pytest.fail(f"E2E_AIRFLOW_DB={choice!r}: use postgres (default) or sqlite")
    if not _airflow_has_asyncpg():
        pytest.fail(
            "the Airflow env has no asyncpg: Airflow 3 opens an async engine on its metadata "
            "database (postgresql+asyncpg), so add asyncpg to requirements/airflow.in (the "
            "image needs it too); or run this test with E2E_AIRFLOW_DB=sqlite"
        )
    with fresh_database("realtor_e2e_airflow") as url:
        yield airflow_path(url)


@pytest.fixture(scope="module")
def story(s3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} is missing: create the Airflow env (requirements/airflow-dev.txt)")
    workdir = tmp_path_factory.mktemp("e2e")
    bucket = "e2e-lake"
    s3.create_bucket(bucket)
    with (
        fresh_database("realtor_e2e_ledger") as ledger_url,
        airflow_metadata_db(workdir) as airflow_db_url,
        fresh_database("realtor_e2e_mlflow") as mlflow_db_url,
        mlflow_server(mlflow_db_url, s3, workdir, artifacts_bucket="e2e-mlflow") as tracking_uri,
        running_data_api(scale=SCALE, seed=SEED) as api_url,
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
            "PIPELINE_RETRIES": "0",  # a failure shows at once
            "PIPELINE_SCHEDULE": "none",
            "GROUP_NUMBER": str(GROUP),
            "DAY": DAY,
            "DATA_API_URL": api_url,
            "LEDGER_URL": ledger_url,
            "STORAGE_URL": f"s3://{bucket}",
            "S3_ENDPOINT_URL": s3.endpoint_url,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MODEL_NAME": MODEL,
            "MIN_TRAIN_ROWS": str(round(10_000 * SCALE)),  # the volume rule, scaled like the data
            "TRAIN_TIME_BUDGET_SECONDS": "10",
            "TRAIN_MAX_TRIALS": "3",
            "LOG_FORMAT": "console",
        }
        story = Story(env=env, workdir=workdir, bucket=bucket)
        migrate = run_airflow(["db", "migrate"], env, workdir / "migrate.log", 600)
        assert migrate.returncode == 0, migrate.tail()
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
    assert sorted(batches) == [1, 2, 3, 4, 5, 6]
    assert len(story.runs) == 7, "one run per batch, then one that finds the API exhausted"
    for number, summary in batches.items():
        assert summary["validation_status"] in ("curated", "quarantined"), number
        assert summary["decision"] in ("train", "skip"), number
        assert summary["decision_reasons"], f"batch {number}: a decision without reasons"


def test_lifecycle_story(story: Story) -> None:
    batches = _stories_by_batch(story)
    first = batches[1]
    assert first["decision"] == "train"
    assert any("first model" in r or "no model" in r for r in first["decision_reasons"])
    assert first["promoted"] is True
    for number in (3, 5):  # sold only; prices of 300k and up
        summary = batches[number]
        assert summary["decision"] == "train", (number, summary["decision_reasons"])
        assert any("drift" in r.lower() for r in summary["decision_reasons"]), number
        assert summary["model_version"], number
        assert summary["promoted"] is not None, number
    small = batches[4]  # one small state
    assert small["decision"] == "skip"
    assert any("minimum volume" in r or "volume" in r for r in small["decision_reasons"])
    assert small["model_version"] is None


def test_every_training_and_promotion_has_reasons(story: Story) -> None:
    from tasks.ledger import Promotion, Training

    with story.ledger().session() as session:
        trainings = list(session.scalars(select(Training)))
        promotions = list(session.scalars(select(Promotion)))
    assert len(trainings) >= 3
    assert len(promotions) == len(trainings)
    for row in (*trainings, *promotions):
        assert row.reasons, f"{type(row).__name__} of batch {row.batch_id} has no reasons"


def test_production_alias_is_on_the_last_promoted_version(story: Story) -> None:
    from tasks.ledger import Promotion

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
    from tasks.lake import summary_key
    from tasks.settings import TaskSettings
    from tasks.storage import open_store

    settings = TaskSettings(
        storage_url=story.env["STORAGE_URL"],
        s3_endpoint_url=story.env["S3_ENDPOINT_URL"],
        aws_access_key_id=story.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=story.env["AWS_SECRET_ACCESS_KEY"],
    )
    store = open_store(settings.storage_url, settings)
    for number, summary in _stories_by_batch(story).items():
        stored = json.loads(store.get_bytes(summary_key(summary["batch_id"])))
        assert stored == summary, f"batch {number}: the stored summary is not the ledger's story"


def test_replaying_a_batch_changes_nothing(story: Story) -> None:
    before = _counts(story)
    versions_before = len(story.mlflow().search_model_versions(f"name='{MODEL}'"))
    alias_before = story.mlflow().get_model_version_by_alias(MODEL, "production").version
    stories_before = _stories_by_batch(story)

    story.run("realtor_replay", "replay")
    story.run("realtor_pipeline", "rerun-batch-1")  # fetch: duplicate of batch 1

    assert _counts(story) == before
    assert len(story.mlflow().search_model_versions(f"name='{MODEL}'")) == versions_before
    assert story.mlflow().get_model_version_by_alias(MODEL, "production").version == alias_before
    assert _stories_by_batch(story) == stories_before
    log = story.runs[-1].log_path.read_text(errors="replace")
    assert "fetch: duplicate batch 1" in log
