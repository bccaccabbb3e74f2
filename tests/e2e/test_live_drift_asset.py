"""A drifted monitor window starts realtor_pipeline through the live-drift Asset; a stable one
does not. Real Airflow (its env, a SQLite metadata database), the real monitor task.

``realtor_monitor`` runs through ``airflow dags test`` with the local runtime, so its
``monitor`` task is ``python -m tasks.monitor`` in the tasks' env, against a PostgreSQL ledger,
a file lake and a SQLite MLflow registry holding a production model with its training batch:
running the real step costs a few seconds, and a canned XCom would test the gate against what
we believe the monitor returns rather than what it does. Airflow's commands go through one
``scripts/airflow_runs.py`` process (start-up paid once). Before the runs, ``dags reserialize``
records which DAG is scheduled on which Asset, as the DAG processor does, and realtor_pipeline
is unpaused: Airflow queues an Asset event only for unpaused DAGs scheduled on it. Queued
means a row of ``asset_dag_run_queue`` for realtor_pipeline: the scheduler turns it into an
asset-triggered run (not started here: it would run the whole pipeline).

The same monitor runs twice, as it would hour after hour: first over stable traffic (the
window is ``stable``, the Asset task is skipped, nothing is queued), then over the shifted
traffic of the demo (luxury homes in Vermont: ``drifted``, one Asset event, one queue row).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import insert

from serving.inference_log import log_rows
from tasks.core.ledger import InferenceLog, Ledger, Validation
from tasks.core.monitor_ledger import latest_window
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tests.e2e.airflow_cli import AIRFLOW, REPO
from tests.support.postgres import fresh_database
from tests.tasks.factories import make_rows, put_batch, register_champion
from tests.tasks.monitor.test_monitor import luxury_in_vermont

MARKER = "[airflow_runs] exit"
MODEL = "realtor-live-asset"
LIVE_DRIFT = "realtor://live-drift"


class AirflowSession:
    """``scripts/airflow_runs.py`` under Airflow's interpreter: one command at a time."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(AIRFLOW.with_name("python")), str(REPO / "scripts" / "airflow_runs.py")],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log_path = log_path

    def send(self, *arguments: str) -> None:
        """Queue ``airflow <arguments>`` (it runs after the commands sent before it)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(list(arguments)) + "\n")
        self.process.stdin.flush()

    def wait(self) -> int:
        """The exit code of the oldest command not waited for (its output goes to the log)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.write(line)
            if line.startswith(MARKER):
                self.log.flush()
                return int(line.split()[-1])
        raise AssertionError(f"airflow_runs ended early: {self.tail()}")

    def run(self, *arguments: str) -> int:
        """``airflow <arguments>``; its exit code."""
        self.send(*arguments)
        return self.wait()

    def tail(self, lines: int = 80) -> str:
        self.log.flush()
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])

    def close(self) -> None:
        """End of input ends the process; what it still prints goes to the log."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        for line in self.process.stdout:
            self.log.write(line)
        self.process.wait(timeout=60)
        self.log.close()


@dataclass
class World:
    ledger: Ledger
    airflow: AirflowSession
    metadata: Path

    def log_requests(self, table: pa.Table, at: datetime) -> None:
        """One request of ``table``'s rows, as serving logs it."""
        records = table.drop_columns(["price"]).to_pylist()
        rows = log_rows(MODEL, "1", uuid.uuid4().hex, records, table["price"].to_pylist(), at)
        with self.ledger.session() as session:
            session.execute(insert(InferenceLog), rows)

    def monitor_run(self) -> str:
        """``airflow dags test realtor_monitor``; the run's id."""
        before = set(self.query("select run_id from dag_run where dag_id = 'realtor_monitor'"))
        code = self.airflow.run("dags", "test", "realtor_monitor")
        assert code == 0, self.airflow.tail()
        after = set(self.query("select run_id from dag_run where dag_id = 'realtor_monitor'"))
        [run_id] = after - before
        return run_id[0]

    def query(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.metadata) as connection:
            return connection.execute(sql, params).fetchall()

    def states(self, run_id: str) -> dict[str, str]:
        rows = self.query(
            "select task_id, state from task_instance where dag_id = 'realtor_monitor' "
            "and run_id = ?",
            run_id,
        )
        return dict(rows)

    def live_drift_events(self) -> list[tuple]:
        return self.query(
            "select e.source_dag_id, e.source_run_id from asset_event e "
            "join asset a on a.id = e.asset_id where a.uri like ?",
            LIVE_DRIFT + "%",
        )

    def queued(self) -> list[tuple]:
        return self.query(
            "select q.target_dag_id from asset_dag_run_queue q "
            "join asset a on a.id = q.asset_id where a.uri like ?",
            LIVE_DRIFT + "%",
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} is missing: create the Airflow env (make setup)")
    tmp = tmp_path_factory.mktemp("live-drift-asset")
    with fresh_database("realtor_live_asset") as ledger_url:
        settings = {
            "LEDGER_URL": ledger_url,
            "STORAGE_URL": f"file://{tmp / 'lake'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "MODEL_NAME": MODEL,
            "MONITOR_MIN_ROWS": "200",
            "MONITOR_SAMPLE_ROWS": "2000",
        }
        metadata = tmp / "airflow.db"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PIPELINE_"))},
            **settings,
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{metadata}",
            "PIPELINE_RUNTIME": "local",
            "PIPELINE_TASKS_PYTHON": str(REPO / ".venv" / "bin" / "python"),
            # the monitor runs when the test says; realtor_pipeline keeps its default cron,
            # which comes with its Asset schedule (no scheduler runs here to fire the cron)
            "MONITOR_SCHEDULE": "none",
            "LOG_FORMAT": "console",
        }
        airflow = AirflowSession(env, tmp / "airflow.log")
        ledger = None
        try:
            # Airflow's set-up runs while the world is built (it mostly waits on its database)
            commands = (
                ("db", "migrate"),
                ("dags", "reserialize"),
                ("dags", "unpause", "realtor_pipeline"),
            )
            for command in commands:
                airflow.send(*command)
            task_settings = TaskSettings(**{k.lower(): v for k, v in settings.items()})
            ledger = Ledger.open(ledger_url)
            store = open_store(task_settings.storage_url, task_settings)
            table = make_rows(3000, 1)  # the production model's training batch (every state)
            batch = put_batch(store, ledger, table, batch_number=1)
            with ledger.session() as session:  # the raw object serves as the curated one
                session.add(
                    Validation(
                        batch_id=batch.id,
                        outcome="pass",
                        status="curated",
                        rows_in=table.num_rows,
                        rows_out=table.num_rows,
                        rows_dropped=0,
                        curated_key=batch.raw_key,
                    )
                )
            register_champion(
                settings["MLFLOW_TRACKING_URI"],
                ledger,
                model_name=MODEL,
                batch_id=batch.id,
                training_batch_ids=[batch.id],
            )
            for command in commands:
                assert airflow.wait() == 0, (command, airflow.tail())
            yield World(ledger, airflow, metadata)
        finally:
            airflow.close()
            if ledger is not None:
                ledger.engine.dispose()


def test_stable_traffic_emits_nothing_and_drifting_traffic_queues_the_pipeline(
    world: World,
) -> None:
    [(scheduled,)] = world.query(
        "select r.dag_id from dag_schedule_asset_reference r join asset a on a.id = r.asset_id "
        "where a.uri like ?",
        LIVE_DRIFT + "%",
    )
    assert scheduled == "realtor_pipeline"
    now = datetime.now(UTC)

    world.log_requests(make_rows(600, 2), now - timedelta(minutes=10))
    stable = world.monitor_run()
    window = latest_window(world.ledger, MODEL)
    assert window is not None and window.decision == "stable", window and window.reasons
    assert world.states(stable) == {
        "monitor": "success",
        "live_drift_detected": "success",
        "emit_live_drift": "skipped",
    }
    assert world.live_drift_events() == [] and world.queued() == []

    world.log_requests(luxury_in_vermont(600, 9), now - timedelta(minutes=5))
    drifted = world.monitor_run()
    window = latest_window(world.ledger, MODEL)
    assert window is not None and window.decision == "drifted", window and window.reasons
    assert window.rows == 600  # the stable window's rows were read once, by it
    assert world.states(drifted) == {
        "monitor": "success",
        "live_drift_detected": "success",
        "emit_live_drift": "success",
    }
    assert world.live_drift_events() == [("realtor_monitor", drifted)]
    assert world.queued() == [("realtor_pipeline",)]
