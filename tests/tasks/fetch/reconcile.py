"""Reconcile what an API served (seen by a recording proxy) with the raw zone and the ledger."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter, defaultdict
from typing import Any

import pyarrow.parquet as pq

from tasks.core.ledger import Ledger
from tasks.core.storage import ObjectStore
from tests.support.recording_proxy import Answer


def reconcile(answers: list[Answer], ledger: Ledger, store: ObjectStore) -> dict[str, Any]:
    """Assert rows served = rows in the raw zone = rows in the ledger, per delivery and in total.

    ``answers``: the /data answers with a body (status 200), in the order they were served
    (one fetch at a time). Returns the figure: counts and rows by outcome, lost, duplicated.
    """
    deliveries = sorted(ledger.deliveries(), key=lambda d: d.id)
    assert len(deliveries) == len(answers), (
        f"{len(answers)} answers served, {len(deliveries)} deliveries recorded"
    )
    batches = {b.id: b for b in ledger.batches()}
    by_outcome: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows_raw = rows_ledger = 0
    for answer, delivery in zip(answers, deliveries, strict=True):
        served_rows = answer.rows
        assert delivery.payload_sha256 == answer.sha256  # the same body, in the same order
        kept = gzip.decompress(store.get_bytes(delivery.payload_key))
        assert kept == answer.body  # byte for byte
        assert delivery.rows == served_rows, (delivery.id, delivery.rows, served_rows)
        raw_rows = json.loads(kept).get("data") if kept.startswith(b"{") else None
        rows_raw += len(raw_rows) if isinstance(raw_rows, list) else 0
        rows_ledger += delivery.rows or 0
        by_outcome[delivery.outcome][0] += 1
        by_outcome[delivery.outcome][1] += delivery.rows or 0
        if delivery.outcome == "rejected":
            assert delivery.batch_id is None and delivery.reason
            continue
        batch = batches[delivery.batch_id]
        assert batch.sha256 == answer.sha256
        assert batch.rows == served_rows
        table = pq.read_table(io.BytesIO(store.get_bytes(batch.raw_key)))
        assert table.num_rows == served_rows
    # no two batch rows for one content, and each stored content is exactly one batch
    contents = Counter((b.group_number, b.day, b.batch_number, b.sha256) for b in batches.values())
    duplicated = sum(n - 1 for n in contents.values())
    stored = [d for d in deliveries if d.outcome in ("stored", "redelivery", "gap")]
    assert sorted(d.batch_id for d in stored) == sorted(batches)
    # the raw zone holds exactly what the ledger points at: no object without its row
    referenced = {d.payload_key for d in deliveries} | {b.raw_key for b in batches.values()}
    assert set(store.list_keys("raw/")) == referenced
    rows_served = sum(a.rows or 0 for a in answers)
    figure = {
        "answers_with_data": len(answers),
        "rows_served": rows_served,
        "rows_in_raw_zone": rows_raw,
        "rows_in_ledger": rows_ledger,
        "rows_in_batches": sum(b.rows for b in batches.values()),
        "by_outcome": {
            k: {"deliveries": v[0], "rows": v[1]} for k, v in sorted(by_outcome.items())
        },
        "lost": rows_served - rows_ledger,
        "duplicated_batches": duplicated,
    }
    assert rows_served == rows_raw == rows_ledger, figure
    assert figure["lost"] == 0 and duplicated == 0, figure
    return figure
