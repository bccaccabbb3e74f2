"""Curated batches with drift decisions, as validate and drift_check leave them for train.

Builds on :mod:`tests.tasks.factories` (rows and raw batches): ``curated_batch`` writes
the rows to the curated zone, records a curated validation (and the batch's status) and a
drift decision, so the train and promote tests need neither validate nor drift_check.
"""

from __future__ import annotations

import pyarrow as pa

from tasks.core.lake import PARQUET, curated_key, to_parquet
from tasks.core.ledger import Batch, DriftDecision, Ledger, Validation
from tasks.core.storage import ObjectStore
from tests.tasks.factories import make_rows, put_batch

__all__ = ["curated_batch", "make_rows"]


def passed_validation(batch_id: int, rows: int, curated_key: str, **keys: str) -> Validation:
    """The validation row of a batch that passed whole: every row curated."""
    return Validation(
        batch_id=batch_id,
        outcome="pass",
        status="curated",
        rows_in=rows,
        rows_out=rows,
        rows_dropped=0,
        curated_key=curated_key,
        reasons=[],
        **keys,
    )


def curated_batch(
    store: ObjectStore,
    ledger: Ledger,
    table: pa.Table,
    *,
    batch_number: int,
    group_number: int = 1,
    day: str = "Tuesday",
    decision: str | None = "train",
    reasons: list[str] | None = None,
) -> Batch:
    """A raw batch, its curated copy and validation, and (unless None) its drift decision."""
    batch = put_batch(
        store, ledger, table, group_number=group_number, day=day, batch_number=batch_number
    )
    key = curated_key(batch)
    store.put_bytes(key, to_parquet(table), content_type=PARQUET)
    with ledger.session() as session:
        session.add(passed_validation(batch.id, table.num_rows, key))
        row = session.get(Batch, batch.id)
        assert row is not None
        row.status = "curated"
        if decision is not None:
            session.add(
                DriftDecision(
                    batch_id=batch.id,
                    decision=decision,
                    reasons=reasons
                    or (
                        [f"first batch: {table.num_rows:,} rows, no model yet"]
                        if decision == "train"
                        else ["no drift: 0 of 9 columns drifted"]
                    ),
                    details={},
                )
            )
    batch.status = "curated"
    return batch
