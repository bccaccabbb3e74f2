"""Vectorised synthetic Realtor rows (no Python loop per row).

The "true" model, per row (``t_k`` is a Student-t draw with k degrees of freedom, ``N`` a normal):

* ``state`` ~ the scenario's state mix (default: published listing counts, see geography);
  ``city`` ~ Zipf-like popularity within the state; ``zip_code`` = a zip of the city's block.
* ``status`` ~ the scenario's mix (default for_sale 62.4 %, sold 36.5 %, ready_to_build 1.1 %).
* land listing with probability 22.5 % (for_sale), 14 % (sold), 0 % (ready_to_build).
* houses: ``log(size) = log(1760) + 0.42 t_8 (+0.12 if ready_to_build)``;
  ``bed = max(1, round(3.1 + 1.6 dlog(size) + 0.5 N))``;
  ``bath = max(1, round(2.35 + 0.3 (bed - 3) + 1.4 dlog(size) + 0.45 N))``;
  ``acre_lot = 0.22 exp(0.9 N) * rural_state``.
* land: ``acre_lot = 3.0 exp(1.6 N) * rural_state``; bed, bath and house_size unknown.
  ``rural_state = exp(-0.35 (log(state median) - log(300k)))``: cheap states, bigger lots.
* price (log-linear)::

    house: log p = L_state + u_city + 0.85 dlog(size) + 0.06 (bath - 2.5) - 0.03 (bed - 3)
                   + 0.07 log(acre_lot / 0.22) + s_status + 0.25 t_5
    land:  log p = L_state + u_city - 1.6 + 0.45 log(acre_lot / 3.0) + s_status + 0.45 t_5

  with ``dlog(size) = log(size) - log(1760)``, ``L_state`` = log of the state's median price
  level + 0.15 (global offset, calibrated so the overall median is ~325k),
  ``u_city ~ N(0, 0.30)`` fixed per city (centred within its state), ``s_status`` = 0
  (for_sale), +0.05 (sold), +0.05 (ready_to_build, which is also bigger). Prices are rounded like listings (to
  $100 or $1,000, a fifth of them ending in 900), at least $500, at most ~$5e8.
* missing values (on top of the true values, after pricing): land rows miss bed, bath and
  house_size together; houses miss all three with 3 %, then bed 0.5 %, bath 2 %, house_size 5 %
  more; acre_lot 17 % of houses and 5 % of land; prev_sold_date 0 % (sold), 51 % (for_sale),
  100 % (ready_to_build); brokered_by 0.2 %, street 0.5 %, city 0.06 %, zip_code 0.01 %,
  price 0.07 %, state 0.0004 %.
* absurd values at tiny rates: price 0 (1.26e-4), price 2,147,483,600, house_size 1,040,400,400,
  bed 473, bath 830 (5e-7 each), acre_lot 100,000 (2e-5). Scenarios may plant one of each.
* prev_sold_date: sold rows, the sale itself (uniform over 2021-10-01..2022-05-31); for_sale
  rows, an older sale (``2022-04-01 - 7 years * exp(0.8 N)``, not before 1901-01-01).

Calibration (seed 42, 300k rows, default mix): price quartiles 175k / 327k / 562k (published
165k / 325k / 550k), house_size median 1,766 (1,760), acre_lot quartiles 0.13 / 0.28 / 0.69
(0.15 / 0.26 / 0.98), status medians for_sale 309k / sold 354k / ready_to_build 456k
(305k / 345k / 454k). The heavy-tailed noise (sd about 0.32 in log space for houses) leaves a
HistGradientBoosting model on log price (bed, bath, acre_lot, house_size, zip_code, state,
status, sold year) R² ~0.71 and MAE ~0.36 (published: 0.72-0.73 and 0.39).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_api.geography import World
from tasks.core.wire import COLUMNS, STATUSES

DEFAULT_STATUS_MIX: tuple[float, float, float] = (0.624, 0.365, 0.011)

PRICE_OFFSET = 0.15  # global log-price offset, calibrated to the published median of ~325k
LOG_1760 = float(np.log(1760.0))
LAND_SHARE = np.array([0.225, 0.14, 0.0])  # by status index
STATUS_EFFECT = np.array([0.0, 0.05, 0.05])
HOUSE_NOISE = 0.25
LAND_NOISE = 0.45

MAX_PRICE = 2_147_483_600.0
ABSURD_HOUSE_SIZE = 1_040_400_400.0
ABSURD_BED = 473.0
ABSURD_BATH = 830.0
ABSURD_ACRE_LOT = 100_000.0

_SOLD_FIRST = np.datetime64("2021-10-01", "D")
_SOLD_DAYS = int((np.datetime64("2022-05-31", "D") - _SOLD_FIRST).astype(int)) + 1
_FOR_SALE_ANCHOR = np.datetime64("2022-04-01", "D")
_OLDEST = np.datetime64("1901-01-01", "D")


@dataclass(frozen=True)
class RowSpec:
    """What one draw of rows looks like (the scenario's knobs)."""

    status_mix: tuple[float, float, float] = DEFAULT_STATUS_MIX
    state_weights: np.ndarray | None = None  # None = the world's default mix
    allow_state_null: bool = True


def _choose_city(rng: np.random.Generator, world: World, state: np.ndarray) -> np.ndarray:
    """City index for each row, by popularity within its state (one searchsorted)."""
    cum = np.empty_like(world.city_weight_in_state)
    for s, (start, count) in enumerate(
        zip(world.state_city_start, world.state_city_count, strict=True)
    ):
        block = np.cumsum(world.city_weight_in_state[start : start + count])
        block[-1] = 1.0
        cum[start : start + count] = s + block
    query = state + rng.random(state.size)
    return np.searchsorted(cum, query, side="right")


def _round_price(rng: np.random.Generator, raw: np.ndarray) -> np.ndarray:
    r = rng.random(raw.size)
    thousands = np.round(raw / 1000.0) * 1000.0 - np.where(r < 0.2, 100.0, 0.0)
    hundreds = np.round(raw / 100.0) * 100.0
    price = np.where(r < 0.55, thousands, hundreds)
    return np.maximum(price, 500.0)


def _null(rng: np.random.Generator, values: np.ndarray, rate: float | np.ndarray) -> None:
    values[rng.random(values.size) < rate] = np.nan


def draw_rows(
    rng: np.random.Generator, world: World, n: int, spec: RowSpec
) -> dict[str, np.ndarray]:
    """``n`` rows as numeric columns (strings still as indices); NaN marks a missing value.

    Columns: status (int), state (int, -1 = null), city (int, -1 = null), prev_sold_days
    (datetime64[D] as int days, NaN = null), the float columns of the wire format, and two
    that never go on the wire: land (bool) and noiseless_log_price (the natural log of the
    price before its noise and rounding: the log price with the noise scales set to zero).
    """
    state_p = world.state_weight if spec.state_weights is None else spec.state_weights
    status = rng.choice(3, size=n, p=np.asarray(spec.status_mix) / np.sum(spec.status_mix))
    state = rng.choice(state_p.size, size=n, p=state_p)
    city = _choose_city(rng, world, state)
    land = rng.random(n) < LAND_SHARE[status]

    # rural states (cheap land) have bigger lots
    rural = np.exp(-0.35 * (world.state_log_level[state] - np.log(300_000.0)))
    dlog_size = 0.42 * rng.standard_t(8, n) + 0.12 * (status == 2)
    size = np.exp(LOG_1760 + dlog_size)
    bed = np.maximum(1.0, np.round(3.1 + 1.6 * dlog_size + 0.5 * rng.standard_normal(n)))
    bath = np.maximum(
        1.0,
        np.round(2.35 + 0.3 * (bed - 3) + 1.4 * dlog_size + 0.45 * rng.standard_normal(n)),
    )
    acre = (
        np.where(
            land,
            3.0 * np.exp(1.6 * rng.standard_normal(n)),
            0.22 * np.exp(0.9 * rng.standard_normal(n)),
        )
        * rural
    )

    level = world.state_log_level[state] + world.city_effect[city] + PRICE_OFFSET
    house_noise = HOUSE_NOISE * rng.standard_t(5, n)
    land_noise = LAND_NOISE * rng.standard_t(5, n)
    house_log_p = (
        0.85 * dlog_size
        + 0.06 * (bath - 2.5)
        - 0.03 * (bed - 3)
        + 0.07 * np.log(acre / 0.22)
        + house_noise
    )
    land_log_p = -1.6 + 0.45 * np.log(acre / 3.0) + land_noise
    log_p = level + STATUS_EFFECT[status] + np.where(land, land_log_p, house_log_p)
    # the same price with the noise scales set to zero (the draws above are unchanged, so
    # every row keeps its features): what no model can beat, for benchmarks only
    noiseless_log_p = log_p - np.where(land, land_noise, house_noise)
    price = _round_price(rng, np.exp(np.minimum(log_p, np.log(5e8))))

    house_size = np.round(size)
    acre_lot = np.round(acre, 2)
    brokered_by = np.floor(110_143 * rng.random(n) ** 1.5)
    street = rng.integers(0, 2_001_358, size=n).astype(float)
    zip_code = (
        world.city_zip_base[city] + np.floor(world.city_zip_count[city] * rng.random(n) ** 1.5)
    ).astype(float)

    # prev_sold_date (days since epoch, as float so NaN can mark a null)
    sold_days = _SOLD_FIRST + rng.integers(0, _SOLD_DAYS, size=n).astype("timedelta64[D]")
    gap_days = np.round(365.25 * 7.0 * np.exp(0.8 * rng.standard_normal(n)))
    older = np.maximum(_FOR_SALE_ANCHOR - gap_days.astype("timedelta64[D]"), _OLDEST)
    prev_days = np.where(status == 1, sold_days, older).astype("int64").astype(float)

    # missing values
    house_missing_all = ~land & (rng.random(n) < 0.03)
    for values, extra in ((bed, 0.005), (bath, 0.02), (house_size, 0.05)):
        values[land | house_missing_all] = np.nan
        _null(rng, values, np.where(land, 0.0, extra))
    _null(rng, acre_lot, np.where(land, 0.05, 0.17))
    _null(rng, prev_days, np.array([0.51, 0.0, 1.0])[status])
    _null(rng, brokered_by, 0.002)
    _null(rng, street, 0.005)
    _null(rng, zip_code, 0.0001)
    _null(rng, price, 0.0007)
    city = np.where(rng.random(n) < 0.0006, -1, city)
    if spec.allow_state_null:
        state = np.where(rng.random(n) < 3.6e-6, -1, state)

    # absurd values at (realistically) tiny rates
    price[rng.random(n) < 1.26e-4] = 0.0
    price[rng.random(n) < 5e-7] = MAX_PRICE
    house_size[rng.random(n) < 5e-7] = ABSURD_HOUSE_SIZE
    bed[rng.random(n) < 5e-7] = ABSURD_BED
    bath[rng.random(n) < 5e-7] = ABSURD_BATH
    acre_lot[rng.random(n) < 2e-5] = ABSURD_ACRE_LOT

    return {
        "brokered_by": brokered_by,
        "status": status,
        "price": price,
        "bed": bed,
        "bath": bath,
        "acre_lot": acre_lot,
        "street": street,
        "city": city,
        "state": state,
        "zip_code": zip_code,
        "house_size": house_size,
        "prev_sold_days": prev_days,
        "land": land,
        "noiseless_log_price": np.minimum(noiseless_log_p, np.log(5e8)),
    }


def take(rows: dict[str, np.ndarray], index: np.ndarray | slice) -> dict[str, np.ndarray]:
    """The rows at ``index`` (a boolean mask or integer positions) of every column."""
    return {name: values[index] for name, values in rows.items()}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _labels(names: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Object array of names, None where the index is -1."""
    out = names.astype(object)[np.maximum(index, 0)]
    out[index < 0] = None
    return out


def to_frame(rows: dict[str, np.ndarray], world: World) -> pd.DataFrame:
    """The wire format: the twelve columns, floats with NaN or strings with None."""
    days = rows["prev_sold_days"]
    dates = np.full(days.size, None, dtype=object)
    known = ~np.isnan(days)
    dates[known] = np.datetime_as_string(days[known].astype("int64").astype("datetime64[D]"))
    frame = pd.DataFrame(
        {
            "brokered_by": rows["brokered_by"],
            "status": np.array(STATUSES, dtype=object)[rows["status"]],
            "price": rows["price"],
            "bed": rows["bed"],
            "bath": rows["bath"],
            "acre_lot": rows["acre_lot"],
            "street": rows["street"],
            "city": _labels(world.city_names, rows["city"]),
            "state": _labels(world.state_names, rows["state"]),
            "zip_code": rows["zip_code"],
            "house_size": rows["house_size"],
            "prev_sold_date": dates,
        },
        columns=list(COLUMNS),
    )
    return frame
