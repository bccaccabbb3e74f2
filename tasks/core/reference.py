"""The reference data of drift_check and monitor: what the production model was trained on.

Found by lineage: ``registered model settings.model_name @ production``
(:func:`tasks.core.registry.champion`) -> its version -> the ledger's ``trainings`` row with
that version -> ``training_batch_ids`` -> their curated objects (``validations.curated_key``).
No registered model, or no ``production`` alias: there is no champion (the first model).
Anything else that goes wrong (MLflow unreachable, a training row or curated object missing)
raises: the step fails, it never guesses. Shared by drift_check (a batch against the
reference) and monitor (live traffic against it), so both compare with the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.core.lake import read_table
from tasks.core.ledger import Ledger
from tasks.core.lifecycle_ledger import curated_validations, training_of_version
from tasks.core.registry import Champion
from tasks.core.storage import ObjectStore


@dataclass(frozen=True)
class Reference:
    """The curated batches the champion was trained on."""

    champion: Champion
    training_id: int
    batch_ids: tuple[int, ...]
    curated_keys: tuple[str, ...]
    rows: tuple[int, ...]


def reference_of(ledger: Ledger, champion: Champion) -> Reference:
    """The champion's training batches and their curated objects, from the ledger."""
    training = training_of_version(ledger, champion.model_name, champion.version)
    if training is None:
        raise LookupError(
            f"the production model {champion.model_name} v{champion.version} has no training "
            "row in the ledger (trainings.model_version): its training data is unknown, so "
            "drift cannot be measured; register models only through tasks.train, or record "
            "the training"
        )
    batch_ids = [int(b) for b in training.training_batch_ids or []]
    if not batch_ids:
        raise LookupError(
            f"the training of {champion.model_name} v{champion.version} (ledger id "
            f"{training.id}) lists no training_batch_ids"
        )
    validations = curated_validations(ledger, batch_ids)
    keys, rows = [], []
    for batch_id in batch_ids:
        validation = validations.get(batch_id)
        if validation is None or not validation.curated_key:
            raise LookupError(
                f"reference batch {batch_id} of {champion.model_name} v{champion.version} has "
                "no curated object in the ledger (validations.curated_key)"
            )
        keys.append(validation.curated_key)
        rows.append(int(validation.rows_out))
    return Reference(champion, training.id, tuple(batch_ids), tuple(keys), tuple(rows))


def allocate(rows: Sequence[int], n: int) -> list[int]:
    """How many of ``n`` sampled rows come from each part (proportional, exact total)."""
    total = sum(rows)
    if total <= n:
        return list(rows)
    exact = [n * r / total for r in rows]
    counts = [int(x) for x in exact]
    order = sorted(range(len(rows)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def sample_tables(
    store: ObjectStore,
    keys: Sequence[str],
    sizes: Sequence[int],
    columns: Sequence[str],
    n: int,
    seed: int | Sequence[int],
) -> pd.DataFrame:
    """Up to ``n`` rows drawn (seeded, without replacement) from the objects ``keys``.

    ``sizes`` are the objects' row counts (from the ledger); each object gives its share.
    One object at a time, only ``columns``: memory holds one batch's columns plus the sample.
    """
    rng = np.random.default_rng(seed)
    tables = []
    for key, size, take in zip(keys, sizes, allocate(sizes, n), strict=True):
        table = read_table(store, key, columns)
        if table.num_rows != size:
            raise ValueError(
                f"{key} holds {table.num_rows:,} rows but the ledger says {size:,}: "
                "the curated object changed after it was recorded"
            )
        if take < size:
            index = np.sort(rng.choice(size, size=take, replace=False))
            table = table.take(pa.array(index))
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=list(columns))
    return pa.concat_tables(tables).to_pandas()


def distinct_values(store: ObjectStore, keys: Sequence[str], column: str) -> set[str]:
    """Every non-null value of ``column`` across the objects ``keys``."""
    values: set[str] = set()
    for key in keys:
        unique = pc.unique(read_table(store, key, [column])[column]).to_pylist()
        values.update(v for v in unique if v is not None)
    return values
