"""The fetch task's real command line against the real simulator over HTTP, SeaweedFS and Postgres.

What must hold: every row served is stored; a second run stores nothing; the end-of-data
answer is "exhausted"; transient faults are retried; persistent failure fails clearly and
leaves nothing behind; malformed and mis-shaped responses are rejected with their reason.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tasks.ledger import Ledger
from tasks.settings import TaskSettings
from tasks.storage import open_store
from tests.data_api.server import running_data_api
from tests.support.scripted_http import scripted_http
from tests.support.seaweed import S3Endpoint
from tests.tasks.test_schema import record

REPO = Path(__file__).resolve().parents[2]
SCALE = 0.005


def run_fetch(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    xcom = Path(env["XCOM_RETURN_PATH"])
    xcom.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "tasks.fetch", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, json.loads(xcom.read_text()) if xcom.exists() else None


@pytest.fixture(scope="module")
def data_api() -> Iterator[str]:
    with running_data_api(scale=SCALE, seed=11) as url:
        yield url


@pytest.fixture
def env(tmp_path: Path, data_api: str, s3: S3Endpoint, s3_bucket: str, pg_url: str) -> dict:
    httpx.put(f"{data_api}/admin/faults", json={"mode": "none"}).raise_for_status()
    httpx.get(
        f"{data_api}/restart_data_generation", params={"group_number": 3, "day": "Tuesday"}
    ).raise_for_status()
    return {
        "DATA_API_URL": data_api,
        "GROUP_NUMBER": "3",
        "DAY": "Tuesday",
        "STORAGE_URL": f"s3://{s3_bucket}/lake",
        "S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "LEDGER_URL": pg_url,
        "XCOM_RETURN_PATH": str(tmp_path / "xcom" / "return.json"),
        "FETCH_BACKOFF_INITIAL_SECONDS": "0.05",
        "FETCH_BACKOFF_MAX_SECONDS": "0.2",
        "FETCH_ATTEMPTS": "4",
    }


def open_env(env: dict) -> tuple[Ledger, object]:
    settings = TaskSettings(
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    return Ledger.open(env["LEDGER_URL"]), open_store(env["STORAGE_URL"], settings)


def fetch_until_exhausted(env: dict) -> list[dict]:
    results = []
    for _ in range(10):
        done, result = run_fetch(env)
        assert done.returncode == 0, done.stderr
        results.append(result)
        if result["status"] == "exhausted":
            return results
    raise AssertionError(f"never exhausted: {results}")


def served_rows(data_api: str, group: int) -> list[int]:
    """Rows per batch as the API serves them (replayed after a restart)."""
    httpx.get(
        f"{data_api}/restart_data_generation", params={"group_number": group, "day": "Tuesday"}
    )
    counts = []
    while True:
        response = httpx.get(
            f"{data_api}/data", params={"group_number": group, "day": "Tuesday"}, timeout=60
        )
        if response.status_code == 400:
            return counts
        counts.append(len(response.json()["data"]))


@pytest.mark.s3
@pytest.mark.postgres
def test_every_row_served_is_stored_once(env: dict, data_api: str):
    results = fetch_until_exhausted(env)
    stored = results[:-1]
    assert [r["status"] for r in stored] == ["stored"] * 6
    assert [r["batch_number"] for r in stored] == [1, 2, 3, 4, 5, 6]
    assert results[-1]["status"] == "exhausted"

    ledger, store = open_env(env)
    batches = ledger.batches(group_number=3)
    expected = served_rows(data_api, 3)
    assert [b.rows for b in batches] == expected
    for batch in batches:  # the objects hold exactly those rows, under keys that name them
        table = pq.read_table(io.BytesIO(store.get_bytes(batch.raw_key)))
        assert table.num_rows == batch.rows
        assert f"group=3/day=Tuesday/batch={batch.batch_number:04d}-" in batch.raw_key
    assert sum(b.rows for b in batches) == sum(expected)
    assert ledger.cursor(3, "Tuesday").exhausted_at is not None

    # a replay from the start stores nothing new
    objects_before = store.list_keys("raw/")
    httpx.get(f"{data_api}/restart_data_generation", params={"group_number": 3, "day": "Tuesday"})
    again = fetch_until_exhausted(env)
    assert [r["status"] for r in again[:-1]] == ["duplicate"] * 6
    assert [r["batch_id"] for r in again[:-1]] == [b.id for b in batches]
    assert store.list_keys("raw/") == objects_before
    assert len(ledger.batches()) == 6


@pytest.mark.s3
@pytest.mark.postgres
@pytest.mark.parametrize(
    "fault",
    [{"mode": "error500", "first_n": 2}, {"mode": "timeout", "first_n": 1, "timeout_seconds": 3}],
)
def test_transient_faults_are_retried(env: dict, data_api: str, fault: dict):
    httpx.put(f"{data_api}/admin/faults", json=fault).raise_for_status()
    done, result = run_fetch({**env, "FETCH_TIMEOUT_SECONDS": "1"})
    assert done.returncode == 0, done.stderr
    assert result["status"] == "stored"
    assert result["batch_number"] == 1  # the faulted requests consumed no batch
    assert result["attempts"] == fault["first_n"] + 1
    assert "data_api.retry" in done.stderr


@pytest.mark.s3
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("mode", "message"), [("error500", "HTTP 500"), ("malformed", "not valid JSON")]
)
def test_persistent_failure_fails_clearly_and_leaves_nothing(env, data_api, mode, message):
    httpx.put(f"{data_api}/admin/faults", json={"mode": mode, "rate": 1.0}).raise_for_status()
    done, result = run_fetch(env)
    assert done.returncode == 1
    assert result is None
    assert "failed 4 times in a row" in done.stderr
    assert message in done.stderr
    assert "nothing was stored" in done.stderr
    ledger, store = open_env(env)
    assert ledger.batches() == []
    assert store.list_keys() == []


# --- responses the simulator never sends: a tiny real HTTP server serves them -------------------


@pytest.fixture
def crafted_api() -> Iterator[Callable[[int, object], str]]:
    with scripted_http(lambda: (500, b"")) as server:

        def serve(status: int, payload: object) -> str:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            server.respond = lambda: (status, body)
            return server.url

        yield serve


@pytest.fixture
def local_env(tmp_path: Path) -> dict:
    return {
        "GROUP_NUMBER": "1",
        "DAY": "Tuesday",
        "STORAGE_URL": f"file://{tmp_path / 'lake'}",
        "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
        "FETCH_BACKOFF_INITIAL_SECONDS": "0.01",
        "FETCH_ATTEMPTS": "2",
    }


def batch_body(batch_number: int = 1, **changes) -> dict:
    return {
        "group_number": 1,
        "day": "Tuesday",
        "batch_number": batch_number,
        "data": [record(**changes)],
    }


def test_end_of_data_is_a_clean_exhausted_outcome(crafted_api, local_env):
    url = crafted_api(400, {"detail": "Ya se recolectó toda la información mínima necesaria"})
    done, result = run_fetch({**local_env, "DATA_API_URL": url})
    assert done.returncode == 0, done.stderr
    assert result["status"] == "exhausted"
    assert "exhausted" in done.stdout


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (400, {"detail": "group_number inválido"}, "HTTP 400: 'group_number inválido'"),
        (404, {"detail": "Not Found"}, "HTTP 404"),
        (200, {"group_number": 1, "batch_number": 1, "data": {"x": 1}}, "'data' is a JSON object"),
        (200, {"group_number": 2, "batch_number": 1, "data": []}, "the API served group 2"),
        (200, {"group_number": 1, "data": []}, "lacks batch_number"),
    ],
)
def test_refusals_and_wrong_shapes_fail_at_once_with_the_reason(
    crafted_api, local_env, status, payload, message
):
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(status, payload)})
    assert done.returncode == 1
    assert result is None
    assert message in done.stderr
    assert "retry" not in done.stderr  # not a transient failure
    assert not (Path(local_env["STORAGE_URL"].removeprefix("file://"))).exists()


def test_a_batch_with_schema_problems_is_stored_raw_with_them(crafted_api, local_env):
    url = crafted_api(200, batch_body(price="expensive"))
    done, result = run_fetch({**local_env, "DATA_API_URL": url})
    assert done.returncode == 0, done.stderr
    assert result["status"] == "stored"
    assert "'price'" in result["schema_problems"][0]
    ledger = Ledger.open(local_env["LEDGER_URL"])
    assert ledger.get_batch(result["batch_id"]).schema_problems == result["schema_problems"]


def test_different_content_for_a_recorded_batch_is_refused(crafted_api, local_env):
    done, _ = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(price=1.0))})
    assert done.returncode == 0, done.stderr
    done, _ = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(price=2.0))})
    assert done.returncode == 1
    assert "already recorded with sha256" in done.stderr
    assert len(Ledger.open(local_env["LEDGER_URL"]).batches()) == 1


def test_bad_arguments_exit_2(local_env):
    done, _ = run_fetch(local_env, "--day", "not a day!")
    assert done.returncode == 2
    assert "must be 1-32 letters" in done.stderr
