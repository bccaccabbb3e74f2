"""A small curated batch in the cluster's ledger and lake (as validate and drift_check leave
one), for the train pod to train on: the pipeline's settings and Secret, mapped to here."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def curated_batch(env: dict[str, str], rows: int = 3000) -> int:
    from tasks.ledger import Ledger
    from tasks.settings import TaskSettings
    from tasks.storage import open_store
    from tests.lifecycle.train_factories import curated_batch as make_batch
    from tests.lifecycle.train_factories import make_rows

    settings = TaskSettings(
        ledger_url=env["LEDGER_URL"],
        storage_url=env["STORAGE_URL"],
        s3_endpoint_url=env.get("S3_ENDPOINT_URL"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )
    ledger = Ledger.open(settings.ledger_url)
    try:
        store = open_store(settings.storage_url, settings)
        batch = make_batch(
            store, ledger, make_rows(rows, seed=21), batch_number=900, group_number=9
        )
    finally:
        ledger.engine.dispose()
    return int(batch.id)
