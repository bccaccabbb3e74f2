"""One Airflow for the end-to-end modules: a metadata database migrated once, one MLflow server.

``test_pipeline_e2e`` and ``test_pipeline_variants`` both run the real DAG through
``airflow dags test`` (local runtime). What they share is Airflow's own state and the model
registry's server; each campaign brings its own data API, ledger database, lake prefix and
model name (:meth:`AirflowEnv.run` adds them to the shared environment), so no campaign reads
another's batches, cursor or models.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.airflow_cli import AIRFLOW, REPO, CliRun, airflow_path, run_airflow
from tests.support import launchers
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database
from tests.support.seaweed import S3Endpoint

#: the course's published API as it has also run (DATA_API_* settings of the simulator):
#: batches from 0, the end message without the accent, 400 for an invalid group, ["ok"] from
#: the restart
COURSE = {
    "DATA_API_FIRST_BATCH_NUMBER": "0",
    "DATA_API_END_OF_DATA_MESSAGE": "Ya se recolectó toda la información minima necesaria",
    "DATA_API_INVALID_GROUP_STATUS": "400",
    "DATA_API_RESTART_ANSWER": "ok_list",
}
#: the lake bucket of every campaign (each under its own prefix)
LAKE_BUCKET = "e2e-lake"
#: the task modules the pipeline and replay DAGs run: their launchers serve every DAG run
PIPELINE_MODULES = tuple(
    f"tasks.{name}"
    for name in ("fetch", "validate", "drift_check", "train", "promote", "record", "replay")
)


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


@dataclass(frozen=True)
class AirflowEnv:
    """The shared Airflow (home, migrated metadata database) and MLflow server."""

    env: dict[str, str]
    workdir: Path
    tracking_uri: str

    def run(
        self,
        dag_id: str,
        name: str,
        conf: dict[str, object],
        campaign: dict[str, str],
        timeout: float = 1800,
    ) -> CliRun:
        """``airflow dags test <dag_id> -c <conf>`` with the shared environment plus the
        campaign's variables; its log is ``<workdir>/<name>.log``."""
        return run_airflow(
            ["dags", "test", dag_id, "-c", json.dumps(conf)],
            {**self.env, **campaign},
            self.workdir / f"{name}.log",
            timeout,
        )


@pytest.fixture(scope="session")
def airflow_env(s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowEnv]:
    """Airflow's metadata database (migrated here, once) and an MLflow server (PostgreSQL
    backend, artifacts proxied to SeaweedFS), for every DAG run of the session."""
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} is missing: create the Airflow env (requirements/airflow-dev.txt)")
    workdir = tmp_path_factory.mktemp("e2e-airflow")
    s3.create_bucket(LAKE_BUCKET)
    with (
        airflow_metadata_db(workdir) as airflow_db_url,
        fresh_database("realtor_e2e_mlflow") as mlflow_db_url,
        mlflow_server(mlflow_db_url, s3, workdir, artifacts_bucket="e2e-mlflow") as tracking_uri,
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
            "PIPELINE_SCHEDULE": "none",
            "S3_ENDPOINT_URL": s3.endpoint_url,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "LOG_FORMAT": "console",
        }
        if launchers.enabled():  # each DAG run's tasks fork from them: imports paid once
            env["PIPELINE_LOCAL_LAUNCHERS"] = str(launchers.ensure(PIPELINE_MODULES))
        migrate = run_airflow(["db", "migrate"], env, workdir / "migrate.log", 600)
        assert migrate.returncode == 0, migrate.tail()
        yield AirflowEnv(env, workdir, tracking_uri)
