"""validate through its real command line: clean, absurd rows, text price, missing column.

The four batches share one ledger and store; their four ``python -m tasks.validate`` runs
start together (each a fresh interpreter, as a pod would be) to keep the suite quick.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from tasks.core.ledger import Ledger, Validation
from tasks.core.schema import CANONICAL_SCHEMA, COLUMNS
from tasks.core.storage import FileStore, ObjectStore, open_store
from tests.support.steps import StepProcess, start_step
from tests.tasks.factories import make_rows, put_batch

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

#: (row, column, value) planted in the "absurd" batch, and the rule each breaks
PLANTED = [
    (0, "price", 0.0, "price out of range"),
    (1, "price", 2_147_483_600.0, "price out of range"),
    (2, "acre_lot", 100_000.0, "acre_lot out of range"),
    (3, "bed", 473.0, "bed out of range"),
    (4, "house_size", 1_040_400_400.0, "house_size out of range"),
    (5, "zip_code", "123", "zip code not 5 digits"),
    (6, "state", "Atlantis", "state not a US state or territory"),
    (7, "status", "pending", "status not in domain"),
    (8, "price", None, "price missing"),
]


def absurd_table(n: int = 400) -> pa.Table:
    frame = make_rows(n, seed=11).to_pandas()
    for row, column, value, _ in PLANTED:
        frame.loc[row, column] = value
    frame.loc[9, "price"] = 0.0  # row 9 breaks two rules: price and bath
    frame.loc[9, "bath"] = 830.0
    frame = pd.concat([frame, frame.iloc[[20, 21]]], ignore_index=True)  # two exact copies
    return pa.Table.from_pandas(frame, schema=CANONICAL_SCHEMA, preserve_index=False)


def task_env(ledger_url: str, storage_url: str, xcom: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "STORAGE_"))}
    env.update(
        LEDGER_URL=ledger_url,
        STORAGE_URL=storage_url,
        XCOM_RETURN_PATH=str(xcom),
        LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def start_validate(batch_id: int, env: dict[str, str]) -> StepProcess:
    return start_step("validate", env, "--batch-id", str(batch_id))


def finish(process: StepProcess, xcom: Path) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, f"exit {process.returncode}\n{stdout}\n{stderr}"
    return {"stdout": stdout, "stderr": stderr, "xcom": json.loads(xcom.read_text())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("validate_cli")
    ledger_url = f"sqlite:///{tmp / 'ledger.db'}"
    storage_url = f"file://{tmp / 'lake'}"
    ledger = Ledger.open(ledger_url)
    store = open_store(storage_url)
    clean = make_rows(500, seed=10)
    text_price = clean.set_column(
        COLUMNS.index("price"), "price", pc.cast(clean["price"], pa.string())
    )
    batches = {
        "clean": put_batch(store, ledger, clean, batch_number=1),
        "absurd": put_batch(store, ledger, absurd_table(), batch_number=2),
        "text_price": put_batch(store, ledger, text_price, batch_number=3),
        "missing_column": put_batch(store, ledger, clean.drop_columns(["bath"]), batch_number=4),
    }
    raw_before = {name: store.get_bytes(b.raw_key) for name, b in batches.items()}
    processes = {
        name: (
            start_validate(b.id, task_env(ledger_url, storage_url, tmp / f"{name}.json")),
            tmp / f"{name}.json",
        )
        for name, b in batches.items()
    }
    results = {name: finish(p, xcom) for name, (p, xcom) in processes.items()}
    return {
        "tmp": tmp,
        "ledger": ledger,
        "ledger_url": ledger_url,
        "storage_url": storage_url,
        "store": store,
        "batches": batches,
        "raw_before": raw_before,
        "results": results,
    }


def test_a_clean_batch_is_curated_whole(runs: dict[str, Any]) -> None:
    result = runs["results"]["clean"]["xcom"]
    store: ObjectStore = runs["store"]
    batch = runs["batches"]["clean"]
    assert result["status"] == "curated" and result["outcome"] == "pass"
    assert (result["rows_in"], result["rows_out"], result["rows_dropped"]) == (500, 500, 0)
    assert result["dropped_by_rule"] == {}
    assert result["curated_key"] == batch.raw_key.replace("raw/", "curated/", 1)
    curated = pq.read_table(io.BytesIO(store.get_bytes(result["curated_key"])))
    assert curated.schema.equals(CANONICAL_SCHEMA)
    assert curated.num_rows == 500
    assert runs["results"]["clean"]["stdout"].strip() == (
        f"validate: batch {batch.id} curated (pass): 500 of 500 rows kept"
    )
    assert runs["ledger"].get_batch(batch.id).status == "curated"


def test_absurd_rows_are_dropped_and_counted_exactly(runs: dict[str, Any]) -> None:
    result = runs["results"]["absurd"]["xcom"]
    expected: dict[str, int] = {}
    for *_, rule in PLANTED:
        expected[rule] = expected.get(rule, 0) + 1
    expected["price out of range"] += 1  # row 9
    expected["bath out of range"] = 1  # row 9
    expected["duplicate row"] = 2
    assert result["dropped_by_rule"] == expected
    # 10 bad rows (one breaks two rules) + 2 copies, of 402: 2.5% bad > 1% -> warn
    assert (result["rows_in"], result["rows_dropped"], result["rows_out"]) == (402, 12, 390)
    assert (result["status"], result["outcome"]) == ("curated", "warn")
    assert result["reasons"][0].startswith("bad rows above the warning level: 10 of 402")
    curated = pq.read_table(io.BytesIO(runs["store"].get_bytes(result["curated_key"])))
    assert curated.num_rows == 390
    prices = curated["price"]
    assert pc.min(prices).as_py() >= 1_000 and pc.max(prices).as_py() <= 50_000_000
    assert curated.to_pandas().duplicated().sum() == 0
    assert "12 dropped (" in runs["results"]["absurd"]["stdout"]
    report = json.loads(runs["store"].get_bytes(result["report_key"]))
    assert report["result"]["dropped_by_rule"] == expected
    html = runs["store"].get_bytes(result["report_html_key"]).decode()
    assert "price out of range" in html and "<script" not in html


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("text_price", "column 'price' is string, not double"),
        ("missing_column", "column 'bath' is missing"),
    ],
)
def test_a_wrong_schema_is_quarantined_with_its_report(
    runs: dict[str, Any], name: str, problem: str
) -> None:
    result = runs["results"][name]["xcom"]
    batch = runs["batches"][name]
    store: FileStore = runs["store"]
    assert (result["status"], result["outcome"]) == ("quarantined", "fail")
    assert result["curated_key"] is None and result["rows_out"] == 0
    assert f"schema: {problem}" in result["reasons"]
    # the raw object is untouched, and copied beside the validation result
    raw = store.get_bytes(batch.raw_key)
    assert raw == runs["raw_before"][name]
    assert hashlib.sha256(raw).hexdigest() == batch.sha256
    prefix = result["quarantine_key"]
    assert prefix == batch.raw_key.replace("raw/", "quarantine/", 1).removesuffix(".parquet") + "/"
    assert store.get_bytes(f"{prefix}data.parquet") == raw
    beside = json.loads(store.get_bytes(f"{prefix}validation.json"))
    assert beside["result"]["status"] == "quarantined"
    assert escape(problem) in store.get_bytes(f"{prefix}validation.html").decode()
    assert store.exists(result["report_key"]) and store.exists(result["report_html_key"])
    assert not store.list_keys("curated/") or all(
        batch.sha256[:16] not in key for key in store.list_keys("curated/")
    )
    assert runs["ledger"].get_batch(batch.id).status == "quarantined"
    assert "quarantined: schema:" in runs["results"][name]["stdout"]


def test_re_running_returns_the_recorded_result_and_writes_nothing(
    runs: dict[str, Any],
) -> None:
    tmp: Path = runs["tmp"]
    batch = runs["batches"]["absurd"]
    lake = tmp / "lake"
    before = {p: p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file()}
    xcom = tmp / "rerun.json"
    result = finish(
        start_validate(batch.id, task_env(runs["ledger_url"], runs["storage_url"], xcom)), xcom
    )
    first = dict(runs["results"]["absurd"]["xcom"])
    again = dict(result["xcom"])
    first.pop("seconds"), again.pop("seconds")
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file()} == before
    with runs["ledger"].session() as session:
        count = session.scalar(
            select(func.count()).select_from(Validation).where(Validation.batch_id == batch.id)
        )
    assert count == 1


def test_an_unknown_batch_fails_with_a_reason(runs: dict[str, Any]) -> None:
    xcom = runs["tmp"] / "unknown.json"
    process = start_validate(999, task_env(runs["ledger_url"], runs["storage_url"], xcom))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "no batch with id 999" in stderr
    assert not xcom.exists()


@pytest.mark.s3
@pytest.mark.postgres
def test_validate_against_real_s3_and_postgres(s3, s3_bucket: str, pg_url: str, tmp_path: Path):
    ledger = Ledger.open(pg_url)
    env_s3 = s3.env()
    store = open_store(
        f"s3://{s3_bucket}/lake",
        _settings(env_s3),
    )
    batch = put_batch(store, ledger, absurd_table(), batch_number=7)
    xcom = tmp_path / "xcom.json"
    env = task_env(pg_url, f"s3://{s3_bucket}/lake", xcom, **env_s3)
    result = finish(start_validate(batch.id, env), xcom)["xcom"]
    assert (result["status"], result["outcome"], result["rows_out"]) == ("curated", "warn", 390)
    assert store.exists(result["curated_key"]) and store.exists(result["report_html_key"])
    assert store.get_bytes(batch.raw_key)  # still there, untouched
    assert hashlib.sha256(store.get_bytes(batch.raw_key)).hexdigest() == batch.sha256
    assert ledger.get_batch(batch.id).status == "curated"


def _settings(env: dict[str, str]):
    from tasks.core.settings import TaskSettings

    return TaskSettings(
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
