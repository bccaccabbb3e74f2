"""Realistic Realtor rows for the lifecycle tests, and a helper that stores them as fetch would.

``make_rows`` builds a table in :data:`tasks.core.schema.CANONICAL_SCHEMA` from a seeded numpy
generator: prices log-normal around $350k (scaled by house size and state), beds and baths
small integers, lots in acres, zip codes as five-character strings. ``put_batch`` writes it to
the raw zone with :func:`tasks.core.lake.to_parquet` / :func:`tasks.core.lake.raw_key` and inserts the
ledger's ``batches`` row. Shared by the validate/drift and the train/promote tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa

from tasks.core.expectations import arrow_schema_problems
from tasks.core.lake import raw_key, to_parquet
from tasks.core.ledger import Batch, Ledger
from tasks.core.schema import CANONICAL_SCHEMA
from tasks.core.storage import ObjectStore
from tasks.core.wire import STATUSES

#: (state, share of rows, price factor, cities, first zip digits)
_STATES: tuple[tuple[str, float, float, tuple[str, ...], int], ...] = (
    ("California", 0.16, 1.9, ("Los Angeles", "San Diego", "Fresno", "Sacramento"), 90),
    ("Texas", 0.14, 0.85, ("Houston", "Austin", "Dallas", "San Antonio"), 75),
    ("Florida", 0.14, 1.0, ("Miami", "Tampa", "Orlando", "Jacksonville"), 32),
    ("New York", 0.08, 1.5, ("New York", "Buffalo", "Rochester"), 10),
    ("Pennsylvania", 0.07, 0.75, ("Philadelphia", "Pittsburgh"), 15),
    ("Ohio", 0.06, 0.6, ("Columbus", "Cleveland", "Cincinnati"), 43),
    ("Georgia", 0.06, 0.9, ("Atlanta", "Savannah"), 30),
    ("North Carolina", 0.06, 0.9, ("Charlotte", "Raleigh"), 27),
    ("Washington", 0.05, 1.4, ("Seattle", "Spokane"), 98),
    ("Illinois", 0.05, 0.8, ("Chicago", "Springfield"), 60),
    ("Arizona", 0.04, 1.1, ("Phoenix", "Tucson"), 85),
    ("Massachusetts", 0.04, 1.6, ("Boston", "Worcester"), 2),
    ("Puerto Rico", 0.02, 0.5, ("San Juan", "Ponce"), 0),
    ("District of Columbia", 0.01, 1.7, ("Washington",), 20),
    ("Vermont", 0.02, 0.9, ("Burlington",), 5),
)

_STATUS_WEIGHTS = {"for_sale": 0.6, "sold": 0.38, "ready_to_build": 0.02}


def make_rows(
    n: int,
    seed: int,
    *,
    status: str | None = None,
    state: str | None = None,
    min_price: float | None = None,
) -> pa.Table:
    """``n`` realistic rows in the canonical schema (same arguments, same table).

    ``status``/``state`` fix that column for every row (the state must be one this factory
    knows, e.g. "California", "Puerto Rico"); ``min_price`` keeps prices at or above it (by
    redrawing the lower ones uniformly between ``min_price`` and 4x ``min_price``).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    rng = np.random.default_rng(seed)
    names = [s[0] for s in _STATES]
    if state is not None:
        if state not in names:
            raise ValueError(f"state {state!r} is not one of the factory's states: {names}")
        state_idx = np.full(n, names.index(state))
    else:
        weights = np.array([s[1] for s in _STATES])
        state_idx = rng.choice(len(_STATES), size=n, p=weights / weights.sum())

    if status is not None:
        statuses = np.full(n, status, dtype=object)
    else:
        statuses = rng.choice(
            list(_STATUS_WEIGHTS), size=n, p=list(_STATUS_WEIGHTS.values())
        ).astype(object)

    bed = np.clip(rng.poisson(2.2, n) + 1, 1, 12).astype(float)
    bath = np.clip(np.round(bed * rng.uniform(0.5, 1.1, n)), 1, 10).astype(float)
    house_size = np.round(np.clip(rng.lognormal(np.log(650 * bed), 0.3), 300, 20_000))
    acre_lot = np.round(np.clip(rng.lognormal(np.log(0.2), 1.0, n), 0.01, 500), 2)
    factor = np.array([_STATES[i][2] for i in state_idx])
    price = np.round(house_size * 190 * factor * rng.lognormal(0.0, 0.35, n), -2)
    price = np.clip(price, 5_000, 30_000_000)
    if min_price is not None:
        low = price < min_price
        price[low] = np.round(rng.uniform(min_price, 4 * min_price, int(low.sum())), -2)
        price = np.maximum(price, min_price)

    cities = np.array(
        [
            _STATES[i][3][j % len(_STATES[i][3])]
            for i, j in zip(state_idx, rng.integers(0, 9, n), strict=True)
        ],
        dtype=object,
    )
    zips = np.array(
        [
            f"{_STATES[i][4]:02d}{z:03d}"
            for i, z in zip(state_idx, rng.integers(0, 1000, n), strict=True)
        ],
        dtype=object,
    )
    sold_days = rng.integers(0, 365 * 25, n)
    has_sold = rng.random(n) < 0.6
    epoch = dt.date(1999, 1, 1)
    prev_sold = [
        epoch + dt.timedelta(days=int(d)) if h else None
        for d, h in zip(sold_days, has_sold, strict=True)
    ]
    # nullable side columns, as in the real data (a few percent missing)
    bed_null = rng.random(n) < 0.03
    size_null = rng.random(n) < 0.04
    lot_null = rng.random(n) < 0.05

    columns = {
        "brokered_by": pa.array(rng.integers(1, 110_000, n), type=pa.int64()),
        "status": pa.array(statuses.tolist(), type=pa.string()),
        "price": pa.array(price, type=pa.float64()),
        "bed": pa.array(bed, type=pa.float64(), mask=bed_null),
        "bath": pa.array(bath, type=pa.float64(), mask=bed_null),
        "acre_lot": pa.array(acre_lot, type=pa.float64(), mask=lot_null),
        "street": pa.array(rng.integers(1, 2_000_000, n), type=pa.int64()),
        "city": pa.array(cities.tolist(), type=pa.string()),
        "state": pa.array([names[i] for i in state_idx], type=pa.string()),
        "zip_code": pa.array(zips.tolist(), type=pa.string()),
        "house_size": pa.array(house_size, type=pa.float64(), mask=size_null),
        "prev_sold_date": pa.array(prev_sold, type=pa.date32()),
    }
    return pa.table(columns, schema=CANONICAL_SCHEMA)


def put_batch(
    store: ObjectStore,
    ledger: Ledger,
    table: pa.Table,
    *,
    group_number: int = 1,
    day: str = "Tuesday",
    batch_number: int,
    schema_problems: list[str] | None = None,
) -> Batch:
    """Store ``table`` in the raw zone and record it in the ledger, as fetch does.

    ``schema_problems`` defaults to none when ``table`` has the canonical schema, else to a
    description of each missing column or column of another type (what fetch would list).
    """
    data = to_parquet(table)
    sha256 = hashlib.sha256(data).hexdigest()
    key = raw_key(group_number, day, batch_number, sha256)
    store.put_bytes(key, data, content_type="application/vnd.apache.parquet")
    if schema_problems is None:
        schema_problems = arrow_schema_problems(table.schema)
    batch = Batch(
        group_number=group_number,
        day=day,
        batch_number=batch_number,
        sha256=sha256,
        raw_key=key,
        rows=table.num_rows,
        bytes=len(data),
        schema_problems=schema_problems,
        status="raw",
    )
    with ledger.session() as session:
        session.add(batch)
    return batch


def register_champion(
    tracking_uri: str,
    ledger: Ledger,
    *,
    model_name: str,
    batch_id: int,
    training_batch_ids: list[int],
    alias: str = "production",
) -> str:
    """Register a trivial model version with ``alias`` and its ledger ``trainings`` row.

    No model is trained: the version points at a run with no artifacts, which is all the
    lineage (alias -> version -> training -> batches) needs. Returns the version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tasks.core.ledger import Training

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if "already exists" not in str(exc).lower():
            raise
    try:
        experiment_id = client.create_experiment("lifecycle-tests")
    except MlflowException as exc:  # made by an earlier call (or meanwhile): use it
        if "already exists" not in str(exc).lower():
            raise
        experiment_id = client.get_experiment_by_name("lifecycle-tests").experiment_id
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        model_name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias(model_name, alias, version.version)
    with ledger.session() as session:
        session.add(
            Training(
                batch_id=batch_id,
                mlflow_run_id=run.info.run_id,
                model_name=model_name,
                model_version=str(version.version),
                training_batch_ids=list(training_batch_ids),
                metrics={},
                reasons=["test champion"],
            )
        )
    return str(version.version)
