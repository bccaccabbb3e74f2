"""Faults on real services, during real task runs: time to fail, then the retry completes.

- PostgreSQL (a private server, never the shared one) crashes while fetch waits on the API:
  back within FETCH_PERSIST_SECONDS, the same run completes; down for longer, the run fails
  with its reason, the body stays in the raw zone, and the next run records it;
- SeaweedFS is killed while fetch waits on the API, and restarted: the run completes;
- MLflow is killed during train, then during promote: each fails fast with the reason, and
  the re-run after the restart completes with one model version and one promotion.

Every case ends with 0 rows lost, 0 duplicates and no object without its ledger row
(:func:`tests.tasks.fetch.reconcile.reconcile`). Each prints a ``FAULT`` line: the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasks.core.ledger import Ledger, Promotion, Training
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tests.data_api.server import running_data_api
from tests.support.mlflow_server import MlflowServer
from tests.support.postgres import fresh_database
from tests.support.private_postgres import PrivatePostgres
from tests.support.recording_proxy import recording_proxy
from tests.support.seaweed import S3Endpoint, SeaweedServer
from tests.support.steps import command, run_step
from tests.tasks.fetch.reconcile import reconcile

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
API_WAIT = 4.0  # the simulator's "timeout" fault holds the first /data answer this long


def task(name: str, env: dict[str, str], *args: str) -> tuple[int, str, dict | None, float]:
    """Run ``tasks.<name>``: (exit code, stderr, XCom result or None, seconds)."""
    run = run_step(name, env, *args)
    return run.returncode, run.stderr, run.result, run.seconds


def task_with_fault(
    name: str, env: dict[str, str], args: tuple[str, ...], marker: str, fault: Callable[[], None]
) -> tuple[int, str, float | None, float]:
    """Run ``tasks.<name>``; call ``fault()`` when ``marker`` shows in its log (stderr).

    (exit code, stderr, monotonic time of the fault or None, monotonic time of the exit).
    """
    xcom = Path(env["XCOM_RETURN_PATH"])
    xcom.unlink(missing_ok=True)
    process = subprocess.Popen(
        command(name, *args),
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    faulted: float | None = None
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if faulted is None and marker in line:
            fault()
            faulted = time.monotonic()
    code = process.wait(timeout=600)
    return code, "".join(lines), faulted, time.monotonic()


def during(
    action: Callable[[], None], after: float, when: Callable[[], bool] | None = None
) -> threading.Thread:
    """Run ``action`` in the background ``after`` seconds from now (from when ``when()``)."""

    def later() -> None:
        deadline = time.monotonic() + 120
        while when is not None and not when() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(after)
        action()

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    return thread


def slow_first_answer(api: str) -> None:
    """The next /data answer waits API_WAIT seconds (then a 504 and the retry is served)."""
    httpx.put(
        f"{api}/admin/faults", json={"mode": "timeout", "first_n": 1, "timeout_seconds": API_WAIT}
    ).raise_for_status()


def fetch_env(proxy_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DATA_API_URL": proxy_url,
        "GROUP_NUMBER": "1",
        "DAY": "Tuesday",
        "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
        "FETCH_TIMEOUT_SECONDS": "30",
        "FETCH_BACKOFF_INITIAL_SECONDS": "0.1",
        **extra,
    }


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("tasks.")]
    return lines[-1] if lines else stderr.strip().splitlines()[-1]


def figure(name: str, **values: Any) -> None:
    print(f"\nFAULT {name}: {json.dumps(values, default=str)}")


@pytest.mark.postgres
def test_postgres_restarted_during_fetch(tmp_path: Path):
    pg = PrivatePostgres()
    try:
        pg.start()
        Ledger.open(pg.url).engine.dispose()  # migrated before the runs
        with running_data_api(scale=0.002, seed=9) as api, recording_proxy(api) as proxy:
            env = fetch_env(
                proxy.url, tmp_path, LEDGER_URL=pg.url, STORAGE_URL=f"file://{tmp_path / 'lake'}"
            )
            # 1. a crash while fetch waits on the API; back 3 s later: the same run completes
            slow_first_answer(api)
            asked = len(proxy.requested)
            waiting = lambda: len(proxy.requested) > asked  # noqa: E731 - fetch asked the API
            crash = during(lambda: pg.stop("immediate"), after=0.5, when=waiting)
            back = during(pg.start, after=API_WAIT + 3.0, when=waiting)
            code, stderr, result, seconds = task("fetch", {**env, "FETCH_PERSIST_SECONDS": "60"})
            crash.join(), back.join()
            assert code == 0, stderr
            assert result["status"] == "stored" and result["batch_number"] == 1
            assert "fetch.persist_retry" in stderr
            figure(
                "postgres_restart_within_budget",
                run_seconds=round(seconds, 1),
                outcome="completed in the same run",
            )
            # 2. down for longer than FETCH_PERSIST_SECONDS: fails with the reason, the body is
            # kept; the next run (after the restart) records it before reading on
            slow_first_answer(api)
            asked = len(proxy.requested)
            crash = during(lambda: pg.stop("immediate"), after=0.5, when=waiting)
            code, stderr, result, seconds = task("fetch", {**env, "FETCH_PERSIST_SECONDS": "3"})
            crash.join()
            assert code == 1 and result is None
            reason = last_line(stderr)
            assert "the next fetch records it" in reason
            pg.start()
            code, stderr, result, _ = task("fetch", env)
            assert code == 0, stderr
            assert result["batch_number"] == 3 and len(result["adopted_deliveries"]) == 1
            ledger = Ledger.open(pg.url)
            assert [b.batch_number for b in ledger.batches()] == [1, 2, 3]
            totals = reconcile(proxy.data_answers(), ledger, open_store(env["STORAGE_URL"]))
            ledger.engine.dispose()
            figure(
                "postgres_down_past_budget",
                time_to_fail_seconds=round(seconds, 1),
                includes_api_wait_seconds=API_WAIT,
                reason=reason[:160],
                next_run="recorded the kept body, then fetched batch 3",
                **totals,
            )
    finally:
        pg.close()


@pytest.mark.s3
def test_seaweedfs_killed_during_fetch(tmp_path: Path):
    server = SeaweedServer(tmp_path / "weed", bucket="faults")
    try:
        s3 = server.start()
        with running_data_api(scale=0.002, seed=9) as api, recording_proxy(api) as proxy:
            env = fetch_env(
                proxy.url,
                tmp_path,
                **s3.env(),
                LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
                STORAGE_URL="s3://faults/lake",
                FETCH_PERSIST_SECONDS="90",
                S3_CONNECT_TIMEOUT_SECONDS="2",
            )
            slow_first_answer(api)
            waiting = lambda: len(proxy.requested) > 0  # noqa: E731 - fetch asked the API
            crash = during(server.kill, after=0.5, when=waiting)
            back = during(server.start, after=7.5, when=waiting)
            code, stderr, result, seconds = task("fetch", env)
            crash.join(), back.join()
            assert code == 0, stderr
            assert result["status"] == "stored" and result["batch_number"] == 1
            assert "fetch.persist_retry" in stderr
            code, stderr, result, _ = task("fetch", env)
            assert code == 0, stderr
            settings = TaskSettings(
                _env_file=None,
                s3_endpoint_url=s3.endpoint_url,
                aws_access_key_id=s3.access_key,
                aws_secret_access_key=s3.secret_key,
            )
            ledger = Ledger.open(env["LEDGER_URL"])
            totals = reconcile(
                proxy.data_answers(), ledger, open_store(env["STORAGE_URL"], settings)
            )
            figure(
                "seaweedfs_killed_during_fetch",
                run_seconds=round(seconds, 1),
                store_down="killed 0.5 s after fetch asked the API, restarted 7 s later",
                outcome="completed in the same run",
                **totals,
            )
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.s3
def test_mlflow_killed_during_train_and_during_promote(tmp_path: Path, s3: S3Endpoint):
    with (
        fresh_database("realtor_faults") as ledger_url,
        fresh_database("mlflow_faults") as mlflow_db,
        running_data_api(scale=0.01, seed=42) as api,
    ):
        mlflow = MlflowServer(mlflow_db, s3, tmp_path, "mlflow-faults")
        mlflow.start()
        s3.create_bucket("faults")
        env = {
            **s3.env(),
            "DATA_API_URL": api,
            "GROUP_NUMBER": "1",
            "DAY": "Tuesday",
            "STORAGE_URL": "s3://faults/lake",
            "LEDGER_URL": ledger_url,
            "MLFLOW_TRACKING_URI": mlflow.uri,
            "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
            "MIN_TRAIN_ROWS": "200",
            "TRAIN_TIME_BUDGET_SECONDS": "6",
            "TRAIN_MAX_TRIALS": "3",
        }
        try:
            code, stderr, fetched, _ = task("fetch", env)
            assert code == 0, stderr
            batch = str(fetched["batch_id"])
            for step in ("validate", "drift_check"):
                code, stderr, _, _ = task(step, env, "--batch-id", batch)
                assert code == 0, stderr

            # train: MLflow is killed once the data is read, before the search (nothing of the
            # run is logged yet); it fails when it next talks to MLflow, after search and fit
            code, stderr, killed, ended = task_with_fault(
                "train", env, ("--batch-id", batch), "train.data", mlflow.kill
            )
            assert killed is not None, stderr
            assert code == 1 and not Path(env["XCOM_RETURN_PATH"]).exists()
            train_reason = last_line(stderr)
            assert "the MLflow server at" in train_reason and "MLFLOW_TRACKING_URI" in train_reason
            train_fail = ended - killed
            mlflow.start()
            code, stderr, trained, train_retry = task("train", env, "--batch-id", batch)
            assert code == 0, stderr
            assert (trained["status"], trained["model_version"]) == ("trained", "1")

            # promote: MLflow is down when it starts
            mlflow.kill()
            code, stderr, result, promote_fail = task("promote", env, "--batch-id", batch)
            assert code == 1 and result is None
            promote_reason = last_line(stderr)
            assert "did not answer (connection refused" in promote_reason
            mlflow.start()
            code, stderr, promoted, promote_retry = task("promote", env, "--batch-id", batch)
            assert code == 0, stderr
            assert promoted["status"] == "promoted" and promoted["alias_moved"] is True

            from tasks.core import registry

            client = registry.client(mlflow.uri)
            versions = client.search_model_versions("name='realtor-price'")
            ledger = Ledger.open(ledger_url)
            with ledger.session() as session:
                trainings = session.query(Training).count()
                promotions = session.query(Promotion).count()
            ledger.engine.dispose()
            assert (len(versions), trainings, promotions) == (1, 1, 1)
            assert registry.champion(client, "realtor-price").version == "1"
            figure(
                "mlflow_killed_during_train",
                seconds_from_kill_to_failure=round(train_fail, 1),
                note="killed before the search; fails at the next MLflow call, after search and fit",
                reason=train_reason[:200],
                retry_seconds=round(train_retry, 1),
                model_versions=len(versions),
                trainings=trainings,
            )
            figure(
                "mlflow_down_during_promote",
                time_to_fail_seconds=round(promote_fail, 1),
                reason=promote_reason[:200],
                retry_seconds=round(promote_retry, 1),
                promotions=promotions,
            )
        finally:
            mlflow.stop()


def wait_for_running_run(tracking_uri: str, batch_id: str, timeout: float = 300) -> str:
    """The id of the MLflow run of ``batch_id``'s training once it is RUNNING (polled)."""
    from tasks.core import registry

    client = registry.client(tracking_uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("realtor-price")
        if experiment is not None:
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.batch_id = '{batch_id}' and attributes.status = 'RUNNING'",
            )
            if runs:
                return runs[0].info.run_id
        time.sleep(0.1)
    raise AssertionError(f"no RUNNING run of batch {batch_id} within {timeout} s")


def train_stopped_mid_logging(
    env: dict[str, str], batch: str, tracking_uri: str, signum: int
) -> tuple[int, str, str]:
    """Start ``tasks.train``; send ``signum`` once its MLflow run is RUNNING: (code, stderr, run)."""
    import signal as signals

    xcom = Path(env["XCOM_RETURN_PATH"])
    xcom.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.train", "--batch-id", batch],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = wait_for_running_run(tracking_uri, batch)
        os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signals.SIGKILL)
            process.wait()
    return process.returncode, stderr, run_id


@pytest.mark.postgres
@pytest.mark.s3
def test_train_killed_mid_logging_then_the_next_run_finishes_the_batch(
    tmp_path: Path, s3: S3Endpoint
):
    """SIGTERM and SIGKILL on a real train while its MLflow run is RUNNING; then the next run.

    SIGTERM: the task ends its own run FAILED and exits 1 saying why. SIGKILL: the run stays
    RUNNING until the next train of the batch ends it FAILED, tagged ``ended_by``. The batch
    has no record row, so the next fetch returns it (``resumed``) instead of a new batch.
    """
    import signal as signals

    from tasks.core import registry

    with (
        fresh_database("realtor_killed") as ledger_url,
        fresh_database("mlflow_killed") as mlflow_db,
        running_data_api(scale=0.01, seed=42) as api,
    ):
        mlflow = MlflowServer(mlflow_db, s3, tmp_path, "mlflow-killed")
        mlflow.start()
        s3.create_bucket("killed")
        env = {
            **s3.env(),
            "DATA_API_URL": api,
            "GROUP_NUMBER": "1",
            "DAY": "Tuesday",
            "STORAGE_URL": "s3://killed/lake",
            "LEDGER_URL": ledger_url,
            "MLFLOW_TRACKING_URI": mlflow.uri,
            "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
            "MIN_TRAIN_ROWS": "200",
            "TRAIN_TIME_BUDGET_SECONDS": "2",
            "TRAIN_MAX_TRIALS": "1",
        }
        try:
            code, stderr, fetched, _ = task("fetch", env)
            assert code == 0, stderr
            batch = str(fetched["batch_id"])
            for step in ("validate", "drift_check"):
                code, stderr, _, _ = task(step, env, "--batch-id", batch)
                assert code == 0, stderr
            client = registry.client(mlflow.uri)

            # SIGTERM (Airflow's on_kill): the task ends its run FAILED itself
            code, stderr, terminated = train_stopped_mid_logging(
                env, batch, mlflow.uri, signals.SIGTERM
            )
            assert code == 1, stderr
            assert "stopped by SIGTERM while training" in last_line(stderr)
            assert client.get_run(terminated).info.status == "FAILED"

            # SIGKILL: nothing runs in the task; the run stays RUNNING...
            code, stderr, killed = train_stopped_mid_logging(
                env, batch, mlflow.uri, signals.SIGKILL
            )
            assert code == -signals.SIGKILL
            assert client.get_run(killed).info.status == "RUNNING"
            # ...and the next run's fetch hands the interrupted batch back, not a new one
            code, stderr, again, _ = task("fetch", env)
            assert code == 0, stderr
            assert (again["batch_id"], again["outcome"]) == (fetched["batch_id"], "resumed")
            assert "was interrupted in an earlier run" in again["note"]
            # its train ends the abandoned run FAILED, with why, and trains the batch once
            code, stderr, trained, _ = task("train", env, "--batch-id", batch)
            assert code == 0, stderr
            assert trained["status"] == "trained"
            assert trained["ended_abandoned_runs"] == [killed]
            abandoned = client.get_run(killed)
            assert abandoned.info.status == "FAILED"
            assert "its task was killed" in abandoned.data.tags["ended_by"]
            assert client.get_run(trained["run_id"]).info.status == "FINISHED"
            for step in ("promote", "record"):
                code, stderr, _, _ = task(step, env, "--batch-id", batch)
                assert code == 0, stderr
            # the batch's run has ended: the next fetch asks the API for a new batch
            code, stderr, following, _ = task("fetch", env)
            assert code == 0, stderr
            assert (following["batch_number"], following["outcome"]) == (2, "stored")
            versions = client.search_model_versions("name='realtor-price'")
            assert len(versions) == 1
            figure(
                "train_killed_mid_logging",
                sigterm="run FAILED by the task itself, exit 1",
                sigkill="run RUNNING until the next train ended it FAILED (ended_by tag)",
                next_fetch="returned the interrupted batch (resumed), then batch 2",
                model_versions=len(versions),
            )
        finally:
            mlflow.stop()
