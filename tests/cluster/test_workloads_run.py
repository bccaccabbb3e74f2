"""`make cluster-run` as part of `make test`: every workload of our images started here from its
rendered spec (and compose's), waited for by its own probe, smoke-called. One run for the
module (a few minutes); each test asserts one workload's outcome from its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import programs

REPO = Path(__file__).resolve().parents[2]
# the run (in the first test's set-up) takes 4-10 minutes, longer beside other work
pytestmark = pytest.mark.timeout(1800)

SMOKED = [
    "mlflow/mlflow/mlflow",
    "apps/data-api/data-api",
    "airflow/airflow-api-server/api-server",
    "airflow/airflow-scheduler/scheduler",
    "airflow/airflow-dag-processor/dag-processor",
    "airflow/airflow-triggerer/triggerer",
    "pipeline/realtor_pipeline.fetch",
    "pipeline/realtor_pipeline.train",
    "pipeline/realtor_pipeline.promote",
    "apps/serving/serving",
    "pipeline/realtor_monitor.monitor",
    "apps/ui/ui",
    "compose/mlflow",
    "compose/data-api",
    "compose/airflow",
    "compose/serving",
    "compose/ui",
]
COMPLETED = [  # Jobs, init containers and each pipeline pod's --help: exited 0
    "airflow/airflow-run-airflow-migrations/run-airflow-migrations",
    "airflow/airflow-create-user/create-user",
    *(
        f"airflow/airflow-{d}/wait-for-airflow-migrations"
        for d in ("api-server", "scheduler", "dag-processor", "triggerer")
    ),
    *(
        f"pipeline/realtor_pipeline.{t} --help"
        for t in ("fetch", "validate", "drift_check", "train", "promote", "record")
    ),
    "pipeline/realtor_replay.replay --help",
    "pipeline/realtor_monitor.monitor --help",
]
NOT_RUN = [  # with the reason the output gives
    *(f"airflow/airflow-{d}/{d}-log-groomer" for d in ("scheduler", "dag-processor", "triggerer")),
    "compose/postgres",
    "compose/s3",
    "compose/prometheus",
    "compose/grafana",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    for program in ("initdb, pg_ctl", "weed", "chromium", "airflow"):
        programs.require(program)
    folder = tmp_path_factory.mktemp("cluster-run")
    out = folder / "report.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "cluster/tools/workloads"), "--keep", str(folder / "run"),
         "--json", str(out)],
        capture_output=True, text=True, timeout=1800, cwd=REPO,
    )  # fmt: skip
    print(done.stdout[-6000:])
    assert out.is_file(), (
        f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    data = json.loads(out.read_text())
    return {o["name"]: o | {"log": done.stdout} for o in data["outcomes"]}


def _line(report: dict, name: str) -> dict:
    assert name in report, f"{name}: no line in the output (the tree or compose changed?)"
    return report[name]


@pytest.mark.parametrize("name", SMOKED)
def test_started_ready_and_smoke_called(report, name: str):
    outcome = _line(report, name)
    assert outcome["ok"], outcome["error"]
    assert outcome["ready"] is not None and outcome["smoke"] is not None, outcome


@pytest.mark.parametrize("name", COMPLETED)
def test_ran_to_completion(report, name: str):
    outcome = _line(report, name)
    assert outcome["ok"], outcome["error"]
    assert outcome["ready"] is not None, outcome


@pytest.mark.parametrize("name", NOT_RUN)
def test_not_run_here_says_why(report, name: str):
    assert _line(report, name)["skipped"]


def test_every_workload_is_accounted_for(report):
    assert sorted(set(report) - set(SMOKED + COMPLETED + NOT_RUN)) == []
    assert [n for n, o in report.items() if not o["ok"]] == []
