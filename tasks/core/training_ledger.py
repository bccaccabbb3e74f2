"""What train and promote read from the ledger beyond their own records, and their locks.

- the curated batches a training reads (and the object key of each one's curated Parquet);
- :func:`step_lock`: a transaction that serialises one piece of work across processes
  (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite):
  :func:`training_lock` (one training per batch) and :func:`promotion_lock` (one promotion
  of a model at a time).

The ``trainings`` and ``promotions`` rows themselves are read and written through
:mod:`tasks.core.lifecycle_ledger`, like every step's record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tasks.core.lake import read_frame
from tasks.core.ledger import Batch, Ledger, Validation
from tasks.core.storage import ObjectStore


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


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key, stable for one name (``promote:<model>`` ...)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def promotion_lock(ledger: Ledger, model_name: str) -> Iterator[Session]:
    """A transaction held for read-compare-move of the alias; one promotion at a time."""
    with step_lock(ledger, f"promote:{model_name}") as session:
        yield session


@contextmanager
def training_lock(ledger: Ledger, batch_id: int) -> Iterator[Session]:
    """A transaction held while a batch is trained: two runs for one batch train once."""
    with step_lock(ledger, f"train:batch:{batch_id}") as session:
        yield session


@contextmanager
def step_lock(ledger: Ledger, name: str) -> Iterator[Session]:
    """A transaction that only one process at a time holds for ``name``.

    PostgreSQL: ``pg_advisory_xact_lock`` (released at commit or rollback; other work on the
    ledger goes on). SQLite: the transaction starts with ``BEGIN IMMEDIATE`` (the database's
    write lock: other writers wait, up to the busy timeout). Rows added to the yielded
    session commit when the block ends without an error.
    """
    backend = ledger.engine.dialect.name
    if backend == "postgresql":
        with ledger.session() as session:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
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
    raise LineageError(f"no lock for a {backend} ledger (use PostgreSQL or SQLite)")


def read_curated(store: ObjectStore, batch: CuratedBatch) -> pd.DataFrame:
    """The curated rows of ``batch`` as a DataFrame (canonical columns)."""
    return read_frame(store, batch.curated_key)
