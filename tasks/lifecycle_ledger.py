"""Ledger reads and writes of the validate and drift_check steps (validations, drift decisions).

Each write is one transaction: the record and the batch's new status land together, or
neither does. The train/promote steps keep their own helpers in their own module.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from tasks.ledger import Batch, DriftDecision, Ledger, Training, Validation


def find_validation(ledger: Ledger, batch_id: int) -> Validation | None:
    """The batch's validation record, if validate already ran to the end for it."""
    with ledger.session() as session:
        return session.scalar(
            select(Validation).where(Validation.batch_id == batch_id).order_by(Validation.id)
        )


def record_validation(ledger: Ledger, validation: Validation) -> tuple[Validation, bool]:
    """Insert ``validation`` and set the batch's status to its status; (row, created).

    If the batch already has a validation (a concurrent run won), that one is returned.
    """
    with ledger.session() as session:
        existing = session.scalar(
            select(Validation).where(Validation.batch_id == validation.batch_id)
        )
        if existing is not None:
            return existing, False
        batch = session.get(Batch, validation.batch_id)
        if batch is None:
            raise LookupError(f"no batch with id {validation.batch_id} in the ledger")
        session.add(validation)
        batch.status = validation.status
    return validation, True


def find_drift_decision(ledger: Ledger, batch_id: int) -> DriftDecision | None:
    with ledger.session() as session:
        return session.scalar(
            select(DriftDecision)
            .where(DriftDecision.batch_id == batch_id)
            .order_by(DriftDecision.id)
        )


def record_drift_decision(ledger: Ledger, decision: DriftDecision) -> tuple[DriftDecision, bool]:
    """Insert ``decision`` unless the batch already has one; (row, created)."""
    with ledger.session() as session:
        existing = session.scalar(
            select(DriftDecision).where(DriftDecision.batch_id == decision.batch_id)
        )
        if existing is not None:
            return existing, False
        session.add(decision)
    return decision, True


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
