"""Shared by the fast-path and explainer tests: a small real model, and rows that try to break it.

``training_frame`` is ``make_rows`` plus what real batches hold and the factory lacks: nulls in
the text columns (a frequent null state, so ``None`` is a known one-hot category), and rare
states and statuses (fewer than ``min_frequency`` = 20 rows: the encoder's infrequent
category). ``adversarial_frame`` then mixes, column by column, nulls, unseen and infrequent
categories, zero, negative, tiny and huge numbers, and dates from year 1 to 9999 (those outside
pandas' nanosecond range become NaT in ``feature_frame``, as they do at serving time).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from threadpoolctl import threadpool_limits

from tasks.core import model
from tests.tasks.factories import make_rows

TRAIN_ROWS = 3000
MODEL_PARAMS = {"max_iter": 50}

_EDGE_VALUES: dict[str, list[Any]] = {
    "status": [None, "pending", "foreclosure", "missing", ""],
    "state": [None, "Guam", "Atlantis", "california", "missing"],
    "city": [None, "Nowhere", "", "missing"],
    "zip_code": [None, "99999", "abc", "0"],
    "bed": [None, 0.0, -3.0, 2.5, 1e-300, 1e6, 1e300, -1.0],
    "bath": [None, 0.0, -3.0, 0.5, 1e-300, 1e6, 1e300, -1.0],
    "acre_lot": [None, 0.0, -0.5, -5.0, -0.999999, 1e-300, 1e12, 1e300],
    "house_size": [None, 0.0, -0.5, -5.0, -1e9, 1e-300, 1e12, 1e300],
    "prev_sold_date": [
        None,
        dt.date(1, 1, 1),
        dt.date(1500, 6, 1),
        dt.date(1677, 9, 21),
        dt.date(1677, 9, 22),
        dt.date(1900, 1, 1),
        dt.date(1969, 12, 31),
        dt.date(1970, 1, 1),
        dt.date(2100, 12, 31),
        dt.date(2262, 4, 11),
        dt.date(2262, 4, 12),
        dt.date(9999, 12, 31),
    ],
}


def training_frame(seed: int = 7) -> pd.DataFrame:
    """Canonical training rows with text nulls and infrequent categories (see module doc)."""
    frame = make_rows(TRAIN_ROWS, seed).to_pandas()
    frame["state"] = frame["state"].astype(object)
    frame["status"] = frame["status"].astype(object)
    frame.loc[frame.index[:30], "state"] = None  # frequent: None becomes a one-hot level
    frame.loc[frame.index[30:38], "state"] = "Guam"  # infrequent (8 < 20)
    frame.loc[frame.index[38:43], "state"] = "Alaska"  # infrequent
    frame.loc[frame.index[43:48], "status"] = "pending"  # infrequent
    frame.loc[frame.index[48:60], "status"] = None  # infrequent null
    frame.loc[frame.index[60:100], "city"] = None
    frame.loc[frame.index[100:110], "zip_code"] = None
    return frame


@functools.cache
def fit_model(seed: int = 7) -> TransformedTargetRegressor:
    """``tasks.core.model.build_model`` with small parameters, fitted on :func:`training_frame`.

    Cached (one fit per process; callers must not refit it) and single-threaded: on a busy
    machine OpenMP's spinning threads made this 0.2 s fit take over 10 s.
    """
    frame = training_frame(seed)
    fitted = model.build_model(MODEL_PARAMS, seed=seed)
    with threadpool_limits(limits=1):
        return fitted.fit(model.feature_frame(frame), model.target(frame))


def adversarial_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` canonical rows; in every column about a third of them hold an edge value."""
    frame = make_rows(n, seed).to_pandas()
    rng = np.random.default_rng(seed)
    for name, edges in _EDGE_VALUES.items():
        column = frame[name].astype(object)
        hit = np.flatnonzero(rng.random(n) < 0.35)
        picks = rng.integers(0, len(edges), hit.size)
        for row, pick in zip(hit.tolist(), picks.tolist(), strict=True):
            column.iat[row] = edges[pick]
        frame[name] = column
    return frame


def without_refused(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the model itself accepts: it refuses -1 in a log1p feature (log1p -> -inf)."""
    refused = np.zeros(len(frame), dtype=bool)
    for name in model.LOG_FEATURES:
        refused |= frame[name].map(lambda v: v is not None and v == -1.0).to_numpy(dtype=bool)
    return frame.loc[~refused].reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain-Python records (what the service receives): str|None, float|None, date|None."""
    out = []
    for row in frame[list(model.FEATURES)].itertuples(index=False):
        record = {}
        for name, value in zip(model.FEATURES, row, strict=True):
            if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                record[name] = None
            elif name in model.DATE_FEATURES:
                record[name] = value if isinstance(value, dt.date) else value.date()
            elif name in model.TEXT_FEATURES:
                record[name] = str(value)
            else:
                record[name] = float(value)
        out.append(record)
    return out


def max_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / |b| (0 for empty arrays)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if not a.size:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
