"""Fetch the next batch of the data API into the raw zone, and record it in the ledger.

``python -m tasks.fetch [--group-number N] [--day D]`` (defaults from GROUP_NUMBER, DAY).

Outcomes (the XCom result's ``status``):
- ``stored``: a new batch is in the raw zone (immutable Parquet, key names group, day, batch
  number and content hash) and in the ledger;
- ``duplicate``: the ledger already holds this batch with the same content: nothing written;
- ``exhausted``: the API has served every batch of (group, day); downstream steps skip.
Failures exit 1 with a reason and leave no partial object and no ledger row.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from tasks.api_client import Exhausted, RetryPolicy, ServedBatch, fetch_batch
from tasks.cli import GroupDayInputs, run_task
from tasks.lake import PARQUET, raw_key, to_parquet
from tasks.ledger import Batch, Ledger
from tasks.logs import get_logger
from tasks.settings import TaskSettings
from tasks.storage import ObjectStore, open_store

log = get_logger(__name__)


class FetchInputs(GroupDayInputs):
    """Inputs of tasks.fetch."""


def store_batch(served: ServedBatch, store: ObjectStore, ledger: Ledger) -> tuple[Batch, str]:
    """Write the batch immutably and record it; returns (ledger row, stored|duplicate)."""
    data = to_parquet(served.coerced.table)
    sha256 = hashlib.sha256(data).hexdigest()
    key = raw_key(served.group_number, served.day, served.batch_number, sha256)
    existing = ledger.find_batch(served.group_number, served.day, served.batch_number)
    if existing is not None and existing.sha256 == sha256 and store.exists(existing.raw_key):
        return existing, "duplicate"
    if not store.exists(key):
        store.put_bytes(key, data, content_type=PARQUET)
    row, created = ledger.record_batch(
        Batch(
            group_number=served.group_number,
            day=served.day,
            batch_number=served.batch_number,
            sha256=sha256,
            raw_key=key,
            rows=served.rows,
            bytes=len(data),
            schema_problems=served.coerced.problems,
            status="raw",
        )
    )
    return row, "stored" if created else "duplicate"


def run(inputs: FetchInputs, settings: TaskSettings) -> dict[str, Any]:
    group_number, day = inputs.resolve(settings)
    ledger = Ledger.open(settings.ledger_url)
    store = open_store(settings.storage_url, settings)
    timeout = httpx.Timeout(
        settings.fetch_timeout_seconds, connect=settings.fetch_connect_timeout_seconds
    )
    retry = RetryPolicy(
        settings.fetch_attempts,
        settings.fetch_backoff_initial_seconds,
        settings.fetch_backoff_max_seconds,
    )
    outcome = fetch_batch(settings.data_api_url, group_number, day, timeout=timeout, retry=retry)
    base = {"group_number": group_number, "day": day}
    if isinstance(outcome, Exhausted):
        ledger.mark_exhausted(group_number, day)
        return {**base, "status": "exhausted", "detail": outcome.detail}
    batch, status = store_batch(outcome, store, ledger)
    if outcome.coerced.problems:
        log.warning("fetch.schema_problems", batch_id=batch.id, problems=outcome.coerced.problems)
    return {
        **base,
        "status": status,
        "batch_id": batch.id,
        "batch_number": batch.batch_number,
        "raw_key": batch.raw_key,
        "raw_uri": store.uri(batch.raw_key),
        "rows": batch.rows,
        "bytes": batch.bytes,
        "sha256": batch.sha256,
        "payload_bytes": outcome.payload_bytes,
        "attempts": outcome.attempts,
        "schema_problems": outcome.coerced.problems,
        "nulled_values": outcome.coerced.nulled,
    }


def summary(result: dict[str, Any]) -> str:
    if result["status"] == "exhausted":
        return f"fetch: group {result['group_number']} day {result['day']}: exhausted"
    return (
        f"fetch: {result['status']} batch {result['batch_number']} "
        f"({result['rows']:,} rows, {result['bytes']:,} bytes, sha256 {result['sha256'][:12]}) "
        f"-> {result['raw_uri']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_task("fetch", FetchInputs, run, argv, summary=summary, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
