"""The noiseless log price of the simulator's rows: the same rows as served, plus the ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_api.noise_free import NOISELESS_COLUMN, batch_with_noiseless_price
from data_api.scenarios import build_frame


def test_the_rows_are_the_served_rows_with_their_noiseless_log_price() -> None:
    served = build_frame(42, 0.02, 1, "Tuesday", 6)
    with_floor = batch_with_noiseless_price(42, 0.02, 1, "Tuesday", 6)
    pd.testing.assert_frame_equal(with_floor.drop(columns=[NOISELESS_COLUMN]), served)
    price = served["price"].to_numpy()
    usable = np.isfinite(price) & (price > 500) & (price < 5e8)
    residual = np.log(price[usable]) - with_floor[NOISELESS_COLUMN].to_numpy()[usable]
    # the noise is a symmetric Student-t (scale 0.25 houses, 0.45 land) plus price rounding
    assert abs(float(np.median(residual))) < 0.02
    assert 0.2 < float(np.mean(np.abs(residual))) < 0.35


def test_the_price_floor_scenario_keeps_each_row_with_its_own_noiseless_price() -> None:
    # batch 5 keeps only rows priced 300k and up, drawn in chunks: the column travels with them
    with_floor = batch_with_noiseless_price(42, 0.01, 1, "Tuesday", 5)
    assert (with_floor["price"].dropna() >= 300_000).all()
    residual = np.log(with_floor["price"]) - with_floor[NOISELESS_COLUMN]
    assert float(residual.dropna().median()) > 0  # selected on the noisy price: noise was high
    assert float(residual.abs().mean()) < 0.6
