"""Live requests of a window, read from the ledger's ``inference_log``: the features only.

Serving logs each prediction's inputs as one JSON object per row (``features``). The
monitor needs six of them, so the database extracts them (``features ->> 'bed'`` in
PostgreSQL, ``json_extract`` in SQLite, both from SQLAlchemy's JSON operators) and the rows
stream through a server-side cursor in chunks: a window of a million requests never sits in
memory as JSON or as Python objects, only as six columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from tasks.core.drift import CATEGORICAL, NUMERIC
from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import InferenceLog

#: rows per fetch of the server-side cursor
CHUNK_ROWS = 50_000


def read_features(
    ledger: Ledger, model_name: str, first_log_id: int, last_log_id: int
) -> pd.DataFrame:
    """The input features (:data:`tasks.core.drift.NUMERIC` and ``CATEGORICAL``) of the
    model's rows ``first_log_id..last_log_id``, in id order; a missing value is NaN/None."""
    features = InferenceLog.features
    statement = (
        select(
            *(features[c].as_float().label(c) for c in NUMERIC),
            *(features[c].as_string().label(c) for c in CATEGORICAL),
        )
        .where(
            InferenceLog.model_name == model_name,
            InferenceLog.id.between(first_log_id, last_log_id),
        )
        .order_by(InferenceLog.id)
    )
    columns = [*NUMERIC, *CATEGORICAL]
    parts: list[pd.DataFrame] = []
    with ledger.engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
            statement
        )
        for chunk in result.partitions():
            part = pd.DataFrame.from_records(chunk, columns=columns)
            for column in NUMERIC:
                part[column] = part[column].astype(float)
            for column in CATEGORICAL:
                part[column] = part[column].astype(object)
            parts.append(part)
    if not parts:
        return pd.DataFrame(
            {
                **{c: np.array([], dtype=float) for c in NUMERIC},
                **{c: np.array([], dtype=object) for c in CATEGORICAL},
            }
        )
    return pd.concat(parts, ignore_index=True)
