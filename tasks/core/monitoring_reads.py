"""Live traffic as the Monitoring page shows it: the inference log and the shadow predictions,
aggregated by the database.

The inference log grows by every request (millions of rows), so nothing here reads it row by
row: each query groups by hour (``date_trunc`` on PostgreSQL, ``strftime`` on SQLite) and
returns at most one row per hour and version over a bounded span. The monitor windows
themselves are read through :mod:`tasks.core.monitor_ledger`.

Shadow agreement: two prices are "more than 10% apart" when one exceeds the other by more than
10% (:data:`tasks.core.shadow_ledger.APART_FACTOR`, promote's rule too); the test is written with
products so that SQLite (no ``log`` in every build) computes it too. The median of
``|Δ log10 price|`` is
``percentile_cont`` on PostgreSQL; on SQLite (the embedded mode, small logs) the price pairs of
each challenger are read and the median is taken in Python.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Float, and_, case, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tasks.core.ledger import InferenceLog, Ledger, ShadowPrediction
from tasks.core.shadow_ledger import APART_FACTOR

#: the span of hours the page shows, back from the newest logged request
DEFAULT_SPAN = timedelta(days=7)


def _hour(ledger: Ledger, column: Any) -> ColumnElement[Any]:
    if ledger.engine.dialect.name == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)


def _apart(model: type[ShadowPrediction] = ShadowPrediction) -> ColumnElement[bool]:
    return or_(
        model.challenger_price > model.production_price * APART_FACTOR,
        model.production_price > model.challenger_price * APART_FACTOR,
    )


def newest_request(ledger: Ledger, model_name: str) -> datetime | None:
    """When the newest request of ``model_name`` was logged (None: none yet)."""
    with ledger.session() as session:
        return session.scalar(
            select(func.max(InferenceLog.predicted_at)).where(InferenceLog.model_name == model_name)
        )


def requests_per_hour(
    ledger: Ledger, model_name: str, span: timedelta = DEFAULT_SPAN
) -> list[dict[str, Any]]:
    """Requests and predicted prices (mean, min, max) per hour and version, over ``span``
    back from the newest request; oldest hour first."""
    newest = newest_request(ledger, model_name)
    if newest is None:
        return []
    hour = _hour(ledger, InferenceLog.predicted_at).label("hour")
    query = (
        select(
            hour,
            InferenceLog.model_version,
            func.count().label("requests"),
            func.avg(InferenceLog.price).label("mean_price"),
            func.min(InferenceLog.price).label("min_price"),
            func.max(InferenceLog.price).label("max_price"),
        )
        .where(
            InferenceLog.model_name == model_name,
            InferenceLog.predicted_at >= newest - span,
        )
        .group_by(hour, InferenceLog.model_version)
        .order_by(hour, InferenceLog.model_version)
    )
    with ledger.session() as session:
        return [dict(row._mapping) for row in session.execute(query)]


def shadow_agreement(ledger: Ledger, model_name: str) -> list[dict[str, Any]]:
    """Per challenger version (and the production version it was compared with): requests
    compared, share more than 10% apart, median ``|Δ log10 price|``, first and last compared."""
    model = ShadowPrediction
    apart = func.sum(case((_apart(), 1), else_=0))
    query = (
        select(
            model.challenger_version,
            model.production_version,
            func.count().label("compared"),
            (cast(apart, Float) / func.count()).label("share_apart"),
            func.min(model.predicted_at).label("first"),
            func.max(model.predicted_at).label("last"),
        )
        .where(model.model_name == model_name)
        .group_by(model.challenger_version, model.production_version)
        .order_by(func.max(model.predicted_at))
    )
    with ledger.session() as session:
        rows = [dict(row._mapping) for row in session.execute(query)]
        for row in rows:
            row["median_abs_log_diff"] = _median_abs_log_diff(
                ledger, session, model_name, row["challenger_version"], row["production_version"]
            )
    return rows


def _median_abs_log_diff(
    ledger: Ledger, session: Any, model_name: str, challenger: str, production: str
) -> float | None:
    model = ShadowPrediction
    where = and_(
        model.model_name == model_name,
        model.challenger_version == challenger,
        model.production_version == production,
        model.challenger_price > 0,
        model.production_price > 0,
    )
    if ledger.engine.dialect.name == "postgresql":
        # PostgreSQL's log(x) is base 10
        diff = func.abs(func.log(model.challenger_price) - func.log(model.production_price))
        value = session.scalar(select(func.percentile_cont(0.5).within_group(diff)).where(where))
        return None if value is None else float(value)
    pairs = np.asarray(
        session.execute(select(model.challenger_price, model.production_price).where(where)).all(),
        dtype=np.float64,
    )
    if pairs.size == 0:
        return None
    return float(np.median(np.abs(np.log10(pairs[:, 0]) - np.log10(pairs[:, 1]))))


def shadow_per_hour(
    ledger: Ledger, model_name: str, span: timedelta = DEFAULT_SPAN
) -> list[dict[str, Any]]:
    """Requests compared and the share more than 10% apart, per hour and challenger, over
    ``span`` back from the newest shadow prediction; oldest hour first."""
    model = ShadowPrediction
    with ledger.session() as session:
        newest = session.scalar(
            select(func.max(model.predicted_at)).where(model.model_name == model_name)
        )
    if newest is None:
        return []
    hour = _hour(ledger, model.predicted_at).label("hour")
    apart = func.sum(case((_apart(), 1), else_=0))
    query = (
        select(
            hour,
            model.challenger_version,
            func.count().label("compared"),
            (cast(apart, Float) / func.count()).label("share_apart"),
        )
        .where(model.model_name == model_name, model.predicted_at >= newest - span)
        .group_by(hour, model.challenger_version)
        .order_by(hour, model.challenger_version)
    )
    with ledger.session() as session:
        return [dict(row._mapping) for row in session.execute(query)]


#: ``log10(1.1)``: the same threshold in log10-price terms, for the page's captions
APART_LOG = math.log10(APART_FACTOR)
