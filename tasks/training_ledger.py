"""Ledger reads and writes of the train and promote steps (on top of :mod:`tasks.ledger`).

- the curated batches a training reads (and the object key of each one's curated Parquet);
- the drift decision that justifies a training;
- ``trainings`` and ``promotions`` rows, one per batch (the idempotency key of both steps);
- :func:`promotion_lock`: a transaction that serialises promotions of one model
  (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tasks.lake import read_frame
from tasks.ledger import Batch, DriftDecision, Ledger, Promotion, Training, Validation
from tasks.storage import ObjectStore


@dataclass(frozen=True)
class CuratedBatch:
    """A curated batch and where its curated rows are."""

    batch_id: int
    group_number: int
    day: str
    batch_number: int
    sha256: str
    curated_key: str
    rows: int

    @classmethod
    def of(cls, batch: Batch, validation: Validation) -> CuratedBatch:
        return cls(
            batch_id=batch.id,
            group_number=batch.group_number,
            day=batch.day,
            batch_number=batch.batch_number,
            sha256=batch.sha256,
            curated_key=validation.curated_key or "",
            rows=int(validation.rows_out),
        )


class LineageError(RuntimeError):
    """The ledger does not hold what a training or promotion needs."""


def latest_drift_decision(ledger: Ledger, batch_id: int) -> DriftDecision | None:
    with ledger.session() as session:
        return session.scalar(
            select(DriftDecision)
            .where(DriftDecision.batch_id == batch_id)
            .order_by(DriftDecision.id.desc())
            .limit(1)
        )


def _curated_validation(session: Session, batch_id: int) -> Validation | None:
    return session.scalar(
        select(Validation)
        .where(Validation.batch_id == batch_id, Validation.status == "curated")
        .where(Validation.curated_key.is_not(None))
        .order_by(Validation.id.desc())
        .limit(1)
    )


def curated_batches(ledger: Ledger, batch: Batch, window: int = 0) -> list[CuratedBatch]:
    """The curated batches of ``batch``'s group and day up to and including it (oldest first).

    ``window`` > 0 keeps only the last ``window`` of them. ``batch`` itself must be curated.
    """
    with ledger.session() as session:
        rows = list(
            session.scalars(
                select(Batch)
                .where(
                    Batch.group_number == batch.group_number,
                    Batch.day == batch.day,
                    Batch.batch_number <= batch.batch_number,
                    Batch.status == "curated",
                )
                .order_by(Batch.batch_number, Batch.id)
            )
        )
        found: list[CuratedBatch] = []
        for row in rows:
            validation = _curated_validation(session, row.id)
            if validation is None or validation.curated_key is None:
                raise LineageError(
                    f"batch {row.id} is marked curated but has no validation with a curated_key; "
                    "re-run `python -m tasks.validate --batch-id "
                    f"{row.id}`"
                )
            found.append(CuratedBatch.of(row, validation))
    if not any(item.batch_id == batch.id for item in found):
        raise LineageError(
            f"batch {batch.id} is {batch.status!r}, not curated: only curated batches are trained on"
        )
    return found[-window:] if window > 0 else found


def curated_batches_by_id(ledger: Ledger, batch_ids: list[int]) -> list[CuratedBatch]:
    """The curated batches with these ids, in the given order (for promote's holdout)."""
    found: list[CuratedBatch] = []
    with ledger.session() as session:
        for batch_id in batch_ids:
            row = session.get(Batch, batch_id)
            validation = _curated_validation(session, batch_id) if row else None
            if row is None or validation is None or validation.curated_key is None:
                raise LineageError(
                    f"batch {batch_id} was trained on but has no curated data in the ledger"
                )
            found.append(CuratedBatch.of(row, validation))
    return found


def find_training(ledger: Ledger, batch_id: int) -> Training | None:
    with ledger.session() as session:
        return session.scalar(
            select(Training).where(Training.batch_id == batch_id).order_by(Training.id).limit(1)
        )


def record_training(ledger: Ledger, training: Training) -> Training:
    """Insert ``training`` unless the batch already has one (then return that one)."""
    with ledger.session() as session:
        existing = session.scalar(
            select(Training)
            .where(Training.batch_id == training.batch_id)
            .order_by(Training.id)
            .limit(1)
        )
        if existing is not None:
            return existing
        session.add(training)
        session.flush()
        return training


def find_promotion(session_or_ledger: Ledger | Session, batch_id: int) -> Promotion | None:
    query = select(Promotion).where(Promotion.batch_id == batch_id).order_by(Promotion.id).limit(1)
    if isinstance(session_or_ledger, Session):
        return session_or_ledger.scalar(query)
    with session_or_ledger.session() as session:
        return session.scalar(query)


def lock_key(model_name: str) -> int:
    """A signed 64-bit advisory lock key, stable for one model name."""
    digest = hashlib.sha256(f"promote:{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def promotion_lock(ledger: Ledger, model_name: str) -> Iterator[Session]:
    """A transaction held for read-compare-move of the alias; one promotion at a time.

    PostgreSQL: ``pg_advisory_xact_lock`` (released at commit or rollback). SQLite: the
    transaction starts with ``BEGIN IMMEDIATE`` (the database's write lock). Rows added to
    the yielded session commit when the block ends without an error.
    """
    backend = ledger.engine.dialect.name
    if backend == "postgresql":
        with ledger.session() as session:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(model_name)}
            )
            yield session
        return
    if backend == "sqlite":
        with ledger.engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            session = Session(bind=connection, join_transaction_mode="rollback_only")
            try:
                yield session
                session.flush()
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                session.close()
        return
    raise LineageError(f"no promotion lock for a {backend} ledger (use PostgreSQL or SQLite)")


def read_curated(store: ObjectStore, batch: CuratedBatch) -> pd.DataFrame:
    """The curated rows of ``batch`` as a DataFrame (canonical columns)."""
    return read_frame(store, batch.curated_key)
