"""A batch with a broken schema is quarantined, and the pipeline carries on with the next one.

A small real HTTP server replays simulator batches and breaks the second one (price sent as
text, house_size missing); fetch, validate and drift_check run through their command lines.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tasks.core.ledger import Ledger
from tasks.core.storage import open_store
from tests.data_api.server import running_data_api
from tests.support.scripted_http import scripted_http
from tests.tasks.test_lifecycle_story import run_task

END = json.dumps({"detail": "Ya se recolectó toda la información mínima necesaria"}).encode()


def break_schema(body: dict) -> dict:
    for record in body["data"]:
        record["price"] = f"${record['price']:,.0f}" if record["price"] is not None else None
        del record["house_size"]
    return body


@pytest.fixture(scope="module")
def replayed_api() -> Iterator[str]:
    with running_data_api(scale=0.01, seed=5) as api:
        bodies = []
        for _ in range(3):
            body = httpx.get(f"{api}/data", params={"group_number": 1, "day": "Tuesday"}).json()
            bodies.append(body)
    bodies[1] = break_schema(bodies[1])
    queue = [json.dumps(b).encode() for b in bodies]

    def respond() -> tuple[int, bytes]:
        return (200, queue.pop(0)) if queue else (400, END)

    with scripted_http(respond) as server:
        yield server.url


def test_broken_batch_is_quarantined_and_the_next_one_goes_on(replayed_api: str, tmp_path: Path):
    env = {
        "DATA_API_URL": replayed_api,
        "STORAGE_URL": f"file://{tmp_path / 'lake'}",
        "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
        "MIN_TRAIN_ROWS": "100",
    }
    outcomes = []
    while (fetched := run_task("fetch", env))["status"] != "exhausted":
        batch = str(fetched["batch_id"])
        validated = run_task("validate", env, "--batch-id", batch)
        decided = run_task("drift_check", env, "--batch-id", batch)
        run_task("record", env, "--batch-id", batch)  # the run ends (skip_training -> record)
        outcomes.append((fetched, validated, decided))
    assert len(outcomes) == 3

    broken_fetch, broken, broken_decision = outcomes[1]
    assert any("'price'" in p for p in broken_fetch["schema_problems"])
    assert broken["status"] == "quarantined"
    assert broken["outcome"] == "fail"
    reasons = " ".join(broken["reasons"])
    assert "price" in reasons
    assert "house_size" in reasons
    assert broken_decision["decision"] == "skip"
    assert any("quarantine" in r for r in broken_decision["reasons"])

    store = open_store(env["STORAGE_URL"])
    assert store.exists(broken["report_key"])
    assert store.exists(broken["report_html_key"])

    # nothing is lost from the raw zone: every body as received, byte for byte (sha256 names
    # the body), next to its canonical Parquet with every row
    ledger = Ledger.open(env["LEDGER_URL"])
    for fetched, _, _ in outcomes:
        batch = ledger.get_batch(fetched["batch_id"])
        body = gzip.decompress(store.get_bytes(batch.payload_key))
        assert hashlib.sha256(body).hexdigest() == batch.sha256
        assert len(json.loads(body)["data"]) == batch.rows
        assert pq.read_table(io.BytesIO(store.get_bytes(batch.raw_key))).num_rows == batch.rows
    assert ledger.get_batch(broken_fetch["batch_id"]).status == "quarantined"

    _, after, after_decision = outcomes[2]
    assert after["status"] == "curated"
    assert after_decision["decision"] == "train"  # no champion yet: the first model's reason
    assert any("first model" in r for r in after_decision["reasons"])
