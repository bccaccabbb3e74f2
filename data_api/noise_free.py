"""The noiseless log price of a batch's rows: the ceiling of any model, for benchmarks only.

The generator draws each row's price noise explicitly (:mod:`data_api.generator`) and keeps,
beside the wire columns, the natural log of the price with the noise scales set to zero. This
module regenerates a batch exactly as the API serves it (same seed, scale, group, day and batch
number, so the same rows in the same order) and returns it with that value as one more column,
matched row by row. Nothing here is served: the wire format does not change.

The noise is symmetric (a Student-t), so the noiseless log price is also the median of the
served log price given the row's true features: no model has a lower expected absolute error in
log price. The error of the noiseless price itself against the served price is the noise floor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_api import generator as gen
from data_api.geography import build_world
from data_api.scenarios import SCENARIOS, build_rows

NOISELESS_COLUMN = "noiseless_log_price"
LAND_COLUMN = "is_land"


def batch_with_noiseless_price(
    seed: int, scale: float, group_number: int, day: str, batch_number: int
) -> pd.DataFrame:
    """Batch ``batch_number`` (1-based) in the wire format, plus :data:`NOISELESS_COLUMN`."""
    return batch_with_truth(seed, scale, group_number, day, batch_number).drop(
        columns=[LAND_COLUMN]
    )


def batch_with_truth(
    seed: int, scale: float, group_number: int, day: str, batch_number: int
) -> pd.DataFrame:
    """:func:`batch_with_noiseless_price` plus :data:`LAND_COLUMN`: whether the row is land
    (the generator's own flag; on the wire a land row and a house whose bed, bath and size
    are all null look the same)."""
    rows = build_rows(seed, scale, group_number, day, SCENARIOS[batch_number - 1])
    frame = gen.to_frame(rows, build_world(seed))
    frame[NOISELESS_COLUMN] = np.asarray(rows[NOISELESS_COLUMN], dtype=np.float64)
    frame[LAND_COLUMN] = np.asarray(rows["land"], dtype=bool)
    return frame
