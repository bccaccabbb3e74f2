"""The fetch task's real command line against the real simulator over HTTP, SeaweedFS and Postgres.

What must hold: every row served is stored; a second run stores nothing; the end-of-data
answer is "exhausted"; transient faults are retried; persistent failure fails clearly and
leaves nothing behind; malformed and mis-shaped responses are rejected with their reason.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tasks.core.lake import payload_key
from tasks.core.ledger import Ledger
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tests.data_api.server import running_data_api
from tests.support.monitor_windows import add_window
from tests.support.scripted_http import scripted_http
from tests.support.seaweed import S3Endpoint
from tests.support.steps import run_step
from tests.tasks.core.test_schema import record

SCALE = 0.005


def run_fetch(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    run = run_step("fetch", env, *args, timeout=120)
    return run, run.result


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


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (400, {"detail": "Número de grupo inválido"}, "HTTP 400 'Número de grupo inválido'"),
        (404, {"detail": "Not Found"}, "HTTP 404"),
        (422, {"detail": [{"loc": ["query", "group_number"]}]}, "HTTP 422"),
    ],
)
def test_refusals_fail_at_once_in_one_line_and_store_nothing(
    crafted_api, local_env, status, payload, message
):
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(status, payload)})
    assert done.returncode == 1
    assert result is None
    assert message in done.stderr
    assert "retry" not in done.stderr  # not a transient failure
    assert len(failure_lines(done)) == 1
    assert not (Path(local_env["STORAGE_URL"].removeprefix("file://"))).exists()


def failure_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("tasks.fetch")]


@pytest.mark.parametrize(
    ("payload", "message", "rows"),
    [
        ({"group_number": 1, "batch_number": 1, "data": {"x": 1}}, "'data' is a JSON object", None),
        ({"group_number": 2, "batch_number": 1, "data": [record()]}, "the API served group 2", 1),
        ({"group_number": 1, "data": [record(), record()]}, "lacks batch_number", 2),
        ({"group_number": 1, "batch_number": "3", "data": [record()]}, "batch_number is '3'", 1),
        ({"group_number": 1, "batch_number": -1, "data": []}, "batch_number is -1", 0),
        ({"group_number": 1, "batch_number": 1, "data": [record(), 7]}, "record 1 is a JSON", 2),
    ],
)
def test_a_body_it_cannot_accept_is_kept_raw_recorded_and_blocks_the_next_run(
    crafted_api, local_env, payload, message, rows
):
    url = crafted_api(200, payload)
    done, result = run_fetch({**local_env, "DATA_API_URL": url})
    assert done.returncode == 1
    assert result is None
    (line,) = failure_lines(done)
    assert message in line and "kept as" in line and "--resolve-incidents" in line
    assert "retry" not in done.stderr
    ledger = Ledger.open(local_env["LEDGER_URL"])
    (delivery,) = ledger.deliveries()
    assert (delivery.outcome, delivery.rows, delivery.batch_id) == ("rejected", rows, None)
    assert message in delivery.reason
    lake = open_store(local_env["STORAGE_URL"])
    assert lake.list_keys() == [delivery.payload_key]  # the body, and nothing else
    assert gzip.decompress(lake.get_bytes(delivery.payload_key)) == json.dumps(payload).encode()
    assert hashlib.sha256(json.dumps(payload).encode()).hexdigest() == delivery.payload_sha256
    if "batch_number is '3'" not in message:
        return  # the rest, once: blocked, then resolved
    # a retry (Airflow's) does not move on to the next batch
    following = 1 if delivery.batch_number is None else delivery.batch_number + 1
    url = crafted_api(200, batch_body(batch_number=following))
    done, _ = run_fetch({**local_env, "DATA_API_URL": url})
    assert done.returncode == 1
    assert "open incident" in failure_lines(done)[0]
    assert len(ledger.deliveries()) == 1
    # a person resolves it, and reading goes on
    done, result = run_fetch(
        {**local_env, "DATA_API_URL": url}, "--resolve-incidents", "the API sent a bad header"
    )
    assert done.returncode == 0, done.stderr
    assert result["status"] == "stored"
    assert result["resolved"] == [delivery.id]


def test_batch_numbers_start_at_zero(crafted_api, local_env):
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(0))})
    assert done.returncode == 0, done.stderr
    assert (result["status"], result["batch_number"]) == ("stored", 0)


@pytest.mark.parametrize(
    "detail",
    [
        "Ya se recolectó toda la información mínima necesaria",
        "Ya se recolectó toda la información minima necesaria",
        "YA SE RECOLECTO TODA LA INFORMACION MINIMA NECESARIA.",
    ],
)
def test_end_of_data_is_a_clean_exhausted_outcome(crafted_api, local_env, detail):
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(400, {"detail": detail})})
    assert done.returncode == 0, done.stderr
    assert result["status"] == "exhausted"
    assert "exhausted" in done.stdout


def test_exhausted_says_live_drift_no_batch_took_yet(crafted_api, local_env):
    """A run the monitor started finds the API exhausted: its result says why it matters."""
    window = add_window(Ledger.open(local_env["LEDGER_URL"]), model_name="m-live", version="3")
    end = {"detail": "Ya se recolectó toda la información mínima necesaria"}
    done, result = run_fetch(
        {**local_env, "MODEL_NAME": "m-live", "DATA_API_URL": crafted_api(400, end)}
    )
    assert done.returncode == 0, done.stderr
    assert result["status"] == "exhausted"
    (line,) = result["pending_live_drift"]
    assert line.startswith(f"live drift, no labelled data yet: window {window} ")
    assert f"exhausted | {line}" in done.stdout


def test_an_html_page_is_not_retried_and_says_what_to_fix(local_env):
    with scripted_http(lambda: (200, b"<!doctype html><html>Welcome</html>")) as server:
        server.content_type = "text/html; charset=utf-8"
        done, result = run_fetch({**local_env, "DATA_API_URL": server.url})
    assert done.returncode == 1
    assert result is None
    (line,) = failure_lines(done)
    assert "text/html, not JSON" in line and "DATA_API_URL" in line
    assert "retry" not in done.stderr


def test_a_url_without_scheme_is_not_retried(local_env):
    started = time.monotonic()
    done, _ = run_fetch({**local_env, "DATA_API_URL": "10.43.100.103:8080"})
    assert done.returncode == 1
    (line,) = failure_lines(done)
    assert "is not an http(s) URL with a host" in line
    assert "retry" not in done.stderr
    assert time.monotonic() - started < 30


def test_a_batch_with_schema_problems_is_stored_raw_with_them(crafted_api, local_env):
    payload = batch_body(price="expensive", prev_sold_date="31/12/2021")
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, payload)})
    assert done.returncode == 0, done.stderr
    assert result["status"] == "stored"
    assert "'price'" in result["schema_problems"][0]
    ledger = Ledger.open(local_env["LEDGER_URL"])
    assert ledger.get_batch(result["batch_id"]).schema_problems == result["schema_problems"]
    # the value coercion could not parse is still in the raw zone, as sent
    lake = open_store(local_env["STORAGE_URL"])
    kept = json.loads(gzip.decompress(lake.get_bytes(result["payload_key"])))
    assert kept["data"][0]["prev_sold_date"] == "31/12/2021"


def test_different_content_for_a_recorded_batch_is_a_delivery_of_its_own(crafted_api, local_env):
    done, first = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(price=1.0))})
    assert done.returncode == 0, done.stderr
    done, second = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(price=2.0))})
    assert done.returncode == 0, done.stderr
    assert (second["status"], second["outcome"], second["delivery"]) == ("stored", "redelivery", 2)
    assert second["batch_id"] != first["batch_id"]
    done, third = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(price=2.0))})
    assert (third["status"], third["batch_id"]) == ("duplicate", second["batch_id"])
    assert len(Ledger.open(local_env["LEDGER_URL"]).batches()) == 2


def test_a_body_kept_by_a_run_that_died_before_its_ledger_row_is_recorded_next(
    crafted_api, local_env
):
    body = json.dumps(batch_body(1)).encode()
    lake = open_store(local_env["STORAGE_URL"])
    sha = hashlib.sha256(body).hexdigest()
    lake.put_bytes(payload_key(1, "Tuesday", sha), gzip.compress(body, mtime=0))
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(2))})
    assert done.returncode == 0, done.stderr
    assert result["batch_number"] == 2
    ledger = Ledger.open(local_env["LEDGER_URL"])
    assert [(d.id, d.batch_number, d.outcome) for d in ledger.deliveries()] == [
        (1, 1, "stored"),
        (2, 2, "stored"),
    ]
    assert result["adopted_deliveries"] == [1]
    referenced = {b.raw_key for b in ledger.batches()} | {
        d.payload_key for d in ledger.deliveries()
    }
    assert set(lake.list_keys()) == referenced


def test_bad_arguments_exit_2_in_one_line(local_env):
    done, _ = run_fetch(local_env, "--day", "not a day!")
    assert done.returncode == 2
    assert "must be 1-32 letters" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "errors.pydantic.dev" not in done.stderr
    done, _ = run_fetch(local_env, "--group", "1")  # no abbreviations
    assert done.returncode == 2
    assert "unrecognized arguments: --group" in done.stderr


# --- bad input at the edge: backwards, oversize, not JSON; runs that end half-way ----------------


def test_a_batch_number_that_goes_backwards_with_new_content_is_an_incident(crafted_api, local_env):
    for number in (1, 2, 3):
        done, _ = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(number))})
        assert done.returncode == 0, done.stderr
    # batch 3 again with new content: the time window resampling, not an incident
    resampled = crafted_api(200, batch_body(3, price=999.0))
    done, result = run_fetch({**local_env, "DATA_API_URL": resampled})
    assert done.returncode == 0, done.stderr
    assert (result["outcome"], result["delivery"]) == ("redelivery", 2)
    # batch 1 again with its content: a replay, a duplicate
    done, result = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(1))})
    assert (done.returncode, result["status"]) == (0, "duplicate"), done.stderr
    # batch 1 with new content after batch 3: the API went back
    url = crafted_api(200, batch_body(1, price=5.0))
    done, result = run_fetch({**local_env, "DATA_API_URL": url})
    assert done.returncode == 1 and result is None
    (line,) = failure_lines(done)
    assert "backwards: batch 1 with new content after batch 3" in line
    assert "--resolve-incidents" in line and "realtor_replay" in line
    ledger = Ledger.open(local_env["LEDGER_URL"])
    incident = ledger.deliveries()[-1]
    assert (incident.outcome, incident.batch_number, incident.expected_batch_number) == (
        "backwards",
        1,
        4,
    )
    assert incident.batch_id is not None  # stored: nothing lost
    done, _ = run_fetch({**local_env, "DATA_API_URL": crafted_api(200, batch_body(4))})
    assert done.returncode == 1 and "open incident" in failure_lines(done)[0]
    done, result = run_fetch(
        {**local_env, "DATA_API_URL": crafted_api(200, batch_body(4))},
        "--resolve-incidents",
        "another member of group 1 restarted the API",
    )
    assert done.returncode == 0, done.stderr
    # the accepted batch goes through the pipeline before the API is asked for batch 4
    assert result["resolved"] == [incident.id]
    assert (result["outcome"], result["batch_id"]) == ("accepted", incident.batch_id)
    assert "accepted" in done.stdout and "before asking the API" in done.stdout


def test_an_answer_far_larger_than_any_before_is_an_incident(crafted_api, local_env):
    env = {**local_env, "FETCH_OVERSIZE_FACTOR": "5"}
    usual = batch_body(1)
    usual["data"] = [record() for _ in range(20)]
    done, _ = run_fetch({**env, "DATA_API_URL": crafted_api(200, usual)})
    assert done.returncode == 0, done.stderr
    # 4x: larger, not far larger
    bigger = batch_body(2)
    bigger["data"] = [record() for _ in range(80)]
    done, _ = run_fetch({**env, "DATA_API_URL": crafted_api(200, bigger)})
    assert done.returncode == 0, done.stderr
    huge = batch_body(3)
    huge["data"] = [record() for _ in range(800)]  # 10x the largest so far
    done, result = run_fetch({**env, "DATA_API_URL": crafted_api(200, huge)})
    assert done.returncode == 1 and result is None
    (line,) = failure_lines(done)
    assert "oversize:" in line and "10.0x the largest body accepted so far" in line
    assert "FETCH_OVERSIZE_FACTOR is 5" in line and "--resolve-incidents" in line
    ledger = Ledger.open(local_env["LEDGER_URL"])
    incident = ledger.deliveries()[-1]
    assert (incident.outcome, incident.rows) == ("oversize", 800)
    assert ledger.get_batch(incident.batch_id).rows == 800  # stored, nothing lost


@pytest.mark.parametrize(
    ("body", "begins"),
    [
        (b"<!doctype html><html><head><title>Login</title></head></html>", "<!doctype html>"),
        (b"upstream connect error or disconnect/reset before headers", "upstream connect"),
    ],
)
def test_a_body_that_is_not_json_labelled_json_is_named_and_not_retried(local_env, body, begins):
    with scripted_http(lambda: (200, body)) as server:
        assert server.content_type == "application/json"
        done, result = run_fetch({**local_env, "DATA_API_URL": server.url})
    assert done.returncode == 1 and result is None
    (line,) = failure_lines(done)
    assert "application/json but the body is not JSON" in line and begins in line
    assert "DATA_API_URL" in line and "nothing was stored" in line
    assert "retry" not in done.stderr and "cut short" not in line
    assert not (Path(local_env["STORAGE_URL"].removeprefix("file://"))).exists()


def test_a_json_body_cut_short_is_retried(local_env):
    body = json.dumps(batch_body(1)).encode()
    answers = iter([body[: len(body) // 2], body])
    with scripted_http(lambda: (200, next(answers))) as server:
        done, result = run_fetch({**local_env, "DATA_API_URL": server.url})
    assert done.returncode == 0, done.stderr
    assert (result["status"], result["attempts"]) == ("stored", 2)
    assert "cut short after" in done.stderr  # the retry's log names why
