"""Shadow predictions in the ledger: what serving writes, promote and the UI read.

Serving's shadow (``serving/shadow.py``) writes one ``shadow_predictions`` row per live record
the challenger scored beside production's answer. One place for the reads, so promote (its
shadow reason and the minimum shadow period) and the UI (agreement per challenger) count the
same rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import ShadowPrediction

#: the first word of a held promotion's first reason (promote's minimum shadow period); the
#: promotion is recorded with ``promoted`` false and ``held`` true, and a re-run of promote
#: evaluates it again
HELD = "held:"

#: two prices are "more than 10% apart" when one exceeds the other by more than this factor,
#: i.e. ``|log10(challenger) - log10(production)| > log10(1.1)``: promote's reason and the
#: Monitoring page use this one rule, and both give the median of ``|Δ log10 price|``
APART_FACTOR = 1.1


@dataclass(frozen=True)
class ShadowPairs:
    """The prices production answered and the challenger scored, for the same live records."""

    request_ids: list[str]
    production: list[float]
    challenger: list[float]
    first_at: datetime | None
    last_at: datetime | None


def shadow_pairs(
    ledger: Ledger, model_name: str, challenger_version: str, production_version: str
) -> ShadowPairs:
    """Every shadow row of ``challenger_version`` scored beside ``production_version``."""
    with ledger.session() as session:
        rows = session.execute(
            select(
                ShadowPrediction.request_id,
                ShadowPrediction.production_price,
                ShadowPrediction.challenger_price,
                ShadowPrediction.predicted_at,
            )
            .where(
                ShadowPrediction.model_name == model_name,
                ShadowPrediction.challenger_version == str(challenger_version),
                ShadowPrediction.production_version == str(production_version),
            )
            .order_by(ShadowPrediction.id)
        ).all()
    times = [row.predicted_at for row in rows]
    return ShadowPairs(
        request_ids=[row.request_id for row in rows],
        production=[float(row.production_price) for row in rows],
        challenger=[float(row.challenger_price) for row in rows],
        first_at=min(times) if times else None,
        last_at=max(times) if times else None,
    )
