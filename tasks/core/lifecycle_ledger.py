"""The one home of the steps' ledger records: validations, drift decisions, trainings, promotions,
and the record step's mark that a batch's run ended (``batch_records``).

One convention for all five, because the database says there is at most one row per batch
in each (a unique index on ``batch_id``, migration 0004):

- ``find_<record>(ledger_or_session, batch_id) -> row | None``: *the* row of the batch;
- ``record_<record>(ledger_or_session, row) -> (row, created)``: insert it; when another
  run recorded the batch first (the unique index refuses the second insert), that row is
  returned with ``created`` False. Never check-then-insert: the database decides.

Every reader (the steps, ``tasks.core.story``, ``tasks.record``, serving and the UI) reads these
rows, so they cannot disagree about a batch. Curated-data lineage and the step locks live in
:mod:`tasks.core.training_ledger`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tasks.core.ledger import (
    Batch,
    BatchRecord,
    DriftDecision,
    Ledger,
    Promotion,
    Training,
    Validation,
)

StepRecord = TypeVar("StepRecord", Validation, DriftDecision, Training, Promotion, BatchRecord)
LedgerOrSession = Ledger | Session


@contextmanager
def _session(where: LedgerOrSession) -> Iterator[Session]:
    if isinstance(where, Session):
        yield where
        return
    with where.session() as session:
        yield session


def _find(where: LedgerOrSession, model: type[StepRecord], batch_id: int) -> StepRecord | None:
    with _session(where) as session:
        return session.scalar(select(model).where(model.batch_id == batch_id))


def _record(where: LedgerOrSession, row: StepRecord) -> tuple[StepRecord, bool]:
    model = type(row)
    if isinstance(where, Session):  # the caller's transaction (a lock): a savepoint
        try:
            with where.begin_nested():
                where.add(row)
            return row, True
        except IntegrityError:
            existing = _find(where, model, row.batch_id)
            if existing is None:
                raise
            return existing, False
    try:
        with where.session() as session:
            if model is Validation:
                batch = session.get(Batch, row.batch_id)
                if batch is None:
                    raise LookupError(f"no batch with id {row.batch_id} in the ledger")
                batch.status = row.status  # the record and the batch's status land together
            session.add(row)
        return row, True
    except IntegrityError:
        existing = _find(where, model, row.batch_id)
        if existing is None:
            raise
        return existing, False


def find_validation(where: LedgerOrSession, batch_id: int) -> Validation | None:
    """The batch's validation, if validate ran to the end for it."""
    return _find(where, Validation, batch_id)


def record_validation(ledger: Ledger, validation: Validation) -> tuple[Validation, bool]:
    """Insert ``validation`` and set the batch's status to its status: (row, created)."""
    return _record(ledger, validation)


def find_drift_decision(where: LedgerOrSession, batch_id: int) -> DriftDecision | None:
    return _find(where, DriftDecision, batch_id)


def record_drift_decision(
    where: LedgerOrSession, decision: DriftDecision
) -> tuple[DriftDecision, bool]:
    return _record(where, decision)


def find_training(where: LedgerOrSession, batch_id: int) -> Training | None:
    return _find(where, Training, batch_id)


def record_training(where: LedgerOrSession, training: Training) -> tuple[Training, bool]:
    return _record(where, training)


def find_promotion(where: LedgerOrSession, batch_id: int) -> Promotion | None:
    return _find(where, Promotion, batch_id)


def record_promotion(where: LedgerOrSession, promotion: Promotion) -> tuple[Promotion, bool]:
    return _record(where, promotion)


def find_batch_record(where: LedgerOrSession, batch_id: int) -> BatchRecord | None:
    """The batch's record row: its run ended (None: not yet, or interrupted)."""
    return _find(where, BatchRecord, batch_id)


def record_batch_record(where: LedgerOrSession, row: BatchRecord) -> tuple[BatchRecord, bool]:
    return _record(where, row)


def training_of_version(ledger: Ledger, model_name: str, model_version: str) -> Training | None:
    """The training that registered ``model_name`` version ``model_version``."""
    with ledger.session() as session:
        return session.scalar(
            select(Training)
            .where(Training.model_name == model_name, Training.model_version == model_version)
            .order_by(Training.id.desc())
        )


def curated_validations(ledger: Ledger, batch_ids: Sequence[int]) -> dict[int, Validation]:
    """The validations of ``batch_ids`` (any status), keyed by batch id."""
    if not batch_ids:
        return {}
    with ledger.session() as session:
        rows = session.scalars(select(Validation).where(Validation.batch_id.in_(list(batch_ids))))
        return {row.batch_id: row for row in rows}
