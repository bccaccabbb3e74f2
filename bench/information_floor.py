"""The information floor: the best log-price MAE any model of the wire's columns can reach.

The noise floor (:mod:`data_api.noise_free`) compares the served price with the noiseless
price, which is computed from each row's TRUE features: whether it is land or a house, its lot
and house size before rounding, bed, bath and acre_lot even where the wire sends a null. A
model sees only the wire's columns. This module is the Bayes-optimal predictor of the log
price given exactly those columns (status, state, city, zip code, bed, bath, acre_lot,
house_size; prev_sold_date, brokered_by and street carry nothing about the price), built from
the simulator's own price model and its true parameters (:mod:`data_api.generator`,
:mod:`data_api.geography`). For each row:

1. **What is known exactly.** The state's level and the city's effect (the city from its name,
   else from the zip code's block; if both are null, a draw from the state's cities by their
   popularity), the status effect.
2. **Land or house.** A row with bed, bath or house_size known is a house. A row with all three
   null is land with the posterior probability :func:`land_probability`: the status's land
   share against the 3 % of houses (plus 0.97 x 5e-6 by chance) whose three are null, times
   the chance of the row's acre_lot under each kind: null (5 % of land, 17 % of houses) or the
   probability that the kind's lot-size distribution (log-normal, the state's rural factor)
   rounds to the value sent (an interval of 0.01 acre: exact normal CDFs).
3. **The unknown features, by Monte Carlo** (``draws`` per row; a midpoint Latin hypercube:
   each coordinate of each row takes every stratum ``(k + 0.5) / draws`` once, in a random
   order; a row that may be land gives half its draws to each kind, weighted by the posterior):

   - house size: if known, uniform within its rounding interval (+-0.5 sqft; the prior and
     the bed/bath likelihood change by well under 0.1 % across it); if null, the exact
     posterior of ``dlog(size)`` given the bed and bath sent (the Student-t(8) prior times the
     probability of each rounded normal, bed summed out when only bath is sent), on a grid of
     6,001 points, sampled by its inverse CDF;
   - bed if null: given the size, the generator's rounded normal; if bath is known, from
     ``P(bed | size) P(bath | bed, size)`` over bed = 1..60;
   - bath if null: the generator's rounded normal given bed and size;
   - acre_lot: if known, the kind's log-normal truncated to the rounding interval; if null,
     the kind's log-normal.

4. **The noise, exactly.** Each draw gives the noiseless log price ``c`` and the noise scale
   (0.25 house, 0.45 land, times a Student-t with 5 dof): the row's predictive distribution
   is a mixture of scaled t(5) (closed-form CDF), not a sample of it.
5. **Selection on the price.** A row reaches the holdout only if its served price passed the
   price rules: validation keeps 1,000..50,000,000 dollars (the range of
   ``tasks.core.expectations.RANGES``), and the ``high_price`` batch keeps only prices of
   300,000 and up. Both act on the price after rounding (to $100, 45 %; to $1,000, 35 %;
   to $1,000 minus $100, 20 %): each bound becomes three bounds on the raw price, exactly.
   The predictive distribution is the mixture truncated to what passed, and the draws are
   re-weighted by the probability that they pass. A model does not know which batch a row came
   from, so when the rows mix batches with different rules the batch is one more unknown:
   :func:`regime_prior` gives its prior per (status, state) from the batches' row counts,
   their status and state mixes and how many of each batch's rows its rule keeps.

The MAE-optimal prediction is the median of that distribution (found by bisection on the
mixture's CDF). Its mean absolute error against the served log price is the information floor.

Approximations (each measured, see bench/README.md): the served price's rounding is left out
of the predictive distribution (not out of the price rules): the median of the rounded price
is not quite the rounded median, which costs a row priced $10,000 or more under 5e-5 in
expected absolute error; the posterior of a known house size within its 1-sqft rounding
interval is taken as flat. (The generator's price cap of $5e8 needs nothing: validation drops
everything above $5e7.) The Monte Carlo error of the floor, with the default 256 draws, is
about 1e-5 in MAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from data_api import generator as gen
from data_api.geography import World
from data_api.scenarios import SCENARIOS, Scenario, _state_weights

LOG_300K = math.log(300_000.0)

#: the price rounding of the generator: (probability, step, amount subtracted)
ROUNDING_BRANCHES: tuple[tuple[float, float, float], ...] = (
    (0.20, 1000.0, 100.0),  # to the thousand, then 100 less (a fifth end in 900)
    (0.35, 1000.0, 0.0),  # to the thousand
    (0.45, 100.0, 0.0),  # to the hundred
)
BRANCH_P = np.array([p for p, _, _ in ROUNDING_BRANCHES])
MIN_PRICE = 500.0  # the generator's least price (after rounding)

#: house: all of bed, bath and house_size null (3 %, or each of its own chance)
HOUSE_ALL_NULL = 0.03 + 0.97 * 0.005 * 0.02 * 0.05
HOUSE_ACRE_NULL = 0.17
LAND_ACRE_NULL = 0.05
HOUSE_ACRE = (math.log(0.22), 0.9)  # log-median before the rural factor, log sd
LAND_ACRE = (math.log(3.0), 1.6)
SIZE_T_DOF = 8
SIZE_SCALE = 0.42
READY_TO_BUILD_SIZE = 0.12
MAX_BED = 60
D_GRID = np.linspace(-5.5, 5.5, 6001)
_SQRT5 = math.sqrt(5.0)


# ---------------------------------------------------------------------------------------------
# pure pieces


def t5_cdf(t: np.ndarray) -> np.ndarray:
    """CDF of Student's t with 5 degrees of freedom (closed form for odd dof)."""
    u = np.clip(np.asarray(t, dtype=np.float64), -1e100, 1e100) / _SQRT5  # +-inf: 0 and 1
    a = 1.0 / (1.0 + u * u)
    return 0.5 + (np.arctan(u) + u * a * (1.0 + (2.0 / 3.0) * a)) / math.pi


@dataclass(frozen=True)
class Regime:
    """A rule a row's served price passed to be in the holdout: lower <= price <= upper."""

    lower: float
    upper: float

    def raw_log_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per rounding branch, the bounds on the log of the raw (unrounded) price."""
        lo, hi = [], []
        for _, step, minus in ROUNDING_BRANCHES:
            # round(raw / step) * step - minus >= lower  <=>  raw >= (ceil((lower+minus)/step) - .5) step
            low = (math.ceil((self.lower + minus) / step) - 0.5) * step
            # the generator serves at least MIN_PRICE: a lower bound up to it passes anything
            lo.append(math.log(low) if self.lower > MIN_PRICE else -math.inf)
            if math.isfinite(self.upper):
                hi.append(math.log((math.floor((self.upper + minus) / step) + 0.5) * step))
            else:
                hi.append(math.inf)
        return np.array(lo), np.array(hi)


NO_SELECTION = Regime(0.0, math.inf)


def _log_interval_probability(z_lo: np.ndarray, z_hi: np.ndarray) -> np.ndarray:
    """log(Phi(z_hi) - Phi(z_lo)), accurate in both tails (the upper one by symmetry)."""
    flip = z_lo > 0
    a = np.where(flip, -z_hi, z_lo)
    b = np.where(flip, -z_lo, z_hi)
    log_b = special.log_ndtr(b)
    log_a = special.log_ndtr(a)
    with np.errstate(divide="ignore"):
        return log_b + np.log1p(-np.exp(log_a - log_b))


def _truncated_normal(z_lo: np.ndarray, z_hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The ``u`` quantile of a standard normal truncated to [z_lo, z_hi] (both tails safe)."""
    flip = z_lo > 0
    a = np.where(flip, -z_hi, z_lo)
    b = np.where(flip, -z_lo, z_hi)
    pa, pb = special.ndtr(a), special.ndtr(b)
    z = special.ndtri(pa + np.where(flip, 1.0 - u, u) * (pb - pa))
    z = np.clip(z, a, b)
    return np.where(flip, -z, z)


def acre_interval_z(
    acre: np.ndarray, log_rural: np.ndarray, land: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The interval of the standard-normal lot draw that rounds to ``acre`` (2 decimals)."""
    centre, scale = LAND_ACRE if land else HOUSE_ACRE
    with np.errstate(divide="ignore"):
        lo = (np.log(np.maximum(acre - 0.005, 0.0)) - centre - log_rural) / scale
    hi = (np.log(acre + 0.005) - centre - log_rural) / scale
    return lo, hi


def land_probability(
    status: np.ndarray, acre: np.ndarray, log_rural: np.ndarray, all_null: np.ndarray
) -> np.ndarray:
    """P(land | status, acre_lot as sent, bed/bath/house_size all null), before selection.

    ``status`` is the generator's index (0 for_sale, 1 sold, 2 ready_to_build), ``acre`` NaN
    where null. Rows with any of bed, bath, house_size known (``all_null`` False) are houses: 0.
    """
    share = gen.LAND_SHARE[status]
    acre_known = ~np.isnan(acre)
    safe = np.where(acre_known, acre, 1.0)
    log_land = np.log(1.0 - LAND_ACRE_NULL) + _log_interval_probability(
        *acre_interval_z(safe, log_rural, land=True)
    )
    log_house = np.log(1.0 - HOUSE_ACRE_NULL) + _log_interval_probability(
        *acre_interval_z(safe, log_rural, land=False)
    )
    log_land = np.where(acre_known, log_land, np.log(LAND_ACRE_NULL))
    log_house = np.where(acre_known, log_house, np.log(HOUSE_ACRE_NULL)) + np.log(HOUSE_ALL_NULL)
    with np.errstate(divide="ignore"):
        log_odds = np.log(share) - np.log1p(-share) + log_land - log_house
    q = special.expit(log_odds)
    return np.where(all_null & (share > 0), q, 0.0)


def _rounded_normal_probability(value: np.ndarray, mean: np.ndarray, scale: float) -> np.ndarray:
    """P(max(1, round(mean + scale N)) == value) for integer values >= 1."""
    upper = special.ndtr((value + 0.5 - mean) / scale)
    lower = np.where(value <= 1, 0.0, special.ndtr((value - 0.5 - mean) / scale))
    return np.maximum(upper - lower, 0.0)


def bed_mean(d: np.ndarray) -> np.ndarray:
    return 3.1 + 1.6 * d


def bath_mean(bed: np.ndarray, d: np.ndarray) -> np.ndarray:
    return 2.35 + 0.3 * (bed - 3.0) + 1.4 * d


def size_posterior_grid(ready_to_build: bool, bed: float, bath: float) -> np.ndarray:
    """The CDF of dlog(size) on :data:`D_GRID` given bed and bath as sent (NaN = null)."""
    shift = READY_TO_BUILD_SIZE if ready_to_build else 0.0
    d = D_GRID
    density = _t_pdf((d - shift) / SIZE_SCALE, SIZE_T_DOF)
    if not math.isnan(bed) and not math.isnan(bath):
        density = density * _rounded_normal_probability(np.full_like(d, bed), bed_mean(d), 0.5)
        density = density * _rounded_normal_probability(
            np.full_like(d, bath), bath_mean(np.full_like(d, bed), d), 0.45
        )
    elif not math.isnan(bed):
        density = density * _rounded_normal_probability(np.full_like(d, bed), bed_mean(d), 0.5)
    elif not math.isnan(bath):
        beds = np.arange(1, MAX_BED + 1, dtype=np.float64)[:, None]
        joint = _rounded_normal_probability(beds, bed_mean(d)[None, :], 0.5)
        joint = joint * _rounded_normal_probability(
            np.full_like(joint, bath), bath_mean(beds, d[None, :]), 0.45
        )
        density = density * joint.sum(axis=0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    if cdf[-1] <= 0:  # nothing on the grid explains it: fall back on the prior
        return size_posterior_grid(ready_to_build, math.nan, math.nan)
    return cdf / cdf[-1]


def _t_pdf(t: np.ndarray, dof: int) -> np.ndarray:
    norm = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2))
    return norm * (1.0 + t * t / dof) ** (-(dof + 1) / 2)


def sample_bed_given_bath(d: np.ndarray, bath: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw bed from P(bed | size) P(bath | bed, size) by inverse CDF (all arrays one shape)."""
    beds = np.arange(1, MAX_BED + 1, dtype=np.float64)
    shape = d.shape
    d, bath, u = d.reshape(-1, 1), bath.reshape(-1, 1), u.reshape(-1)
    weight = _rounded_normal_probability(beds[None, :], bed_mean(d), 0.5)
    weight = weight * _rounded_normal_probability(bath, bath_mean(beds[None, :], d), 0.45)
    cum = np.cumsum(weight, axis=1)
    total = cum[:, -1]
    ok = total > 0
    pick = np.sum(cum < (u * np.where(ok, total, 1.0))[:, None], axis=1)
    bed = np.where(
        ok, beds[np.minimum(pick, MAX_BED - 1)], np.maximum(1.0, np.round(bed_mean(d[:, 0])))
    )
    return bed.reshape(shape)


def mixture_median(
    centre: np.ndarray,
    scale: np.ndarray,
    weight: np.ndarray,
    regime_weight: np.ndarray,
    regimes: Sequence[Regime],
    iterations: int = 34,
) -> np.ndarray:
    """Per row, the median of sum_j weight_j * (centre_j + scale_j * t5), truncated by regime.

    Arrays ``centre``, ``scale``, ``weight``: (rows, draws). ``regime_weight``: (rows, R), the
    prior probability that the row passed each regime's price rule. The truncated mixture:
    P(Y <= x | passed) = sum_r a_r sum_j w_j P(Y_j <= x, passes r) / sum_r a_r sum_j w_j P(passes r).
    Found by bisection (``iterations`` halvings of a bracket at most ~30 wide: < 2e-9).
    """
    rows = centre.shape[0]
    inv = 1.0 / scale
    clips = []  # (row-and-draw weight a_r w_j pi_b, F at the low bound, F at the high bound)
    total = np.zeros(rows)
    for r, regime in enumerate(regimes):
        a = regime_weight[:, r]
        if not np.any(a > 0):
            continue
        lo, hi = regime.raw_log_bounds()
        for b in range(len(ROUNDING_BRANCHES)):
            f_lo = t5_cdf((lo[b] - centre) * inv)
            f_hi = t5_cdf((hi[b] - centre) * inv)
            w = weight * (a * BRANCH_P[b])[:, None]
            total += np.sum(w * (f_hi - f_lo), axis=1)
            clips.append((w, f_lo, f_hi))
    if np.any(~(total > 0)):
        raise ValueError("a row has no probability of passing its price rules")
    low = np.min(centre - 15.0 * scale, axis=1)
    high = np.max(centre + 15.0 * scale, axis=1)
    half = 0.5 * total
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        f = t5_cdf((mid[:, None] - centre) * inv)
        below = np.zeros(rows)
        for w, f_lo, f_hi in clips:
            below += np.sum(w * (np.clip(f, f_lo, f_hi) - f_lo), axis=1)
        up = below >= half
        high = np.where(up, mid, high)
        low = np.where(up, low, mid)
    return 0.5 * (low + high)


# ---------------------------------------------------------------------------------------------
# rows


@dataclass(frozen=True)
class WireRows:
    """The columns the price depends on, as the generator's indices and numbers (NaN = null)."""

    status: np.ndarray  # int: 0 for_sale, 1 sold, 2 ready_to_build
    state: np.ndarray  # int index into the world's states
    city: np.ndarray  # int index into the world's cities, -1 if neither name nor zip tells
    bed: np.ndarray
    bath: np.ndarray
    acre: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return int(self.status.size)

    def take(self, index: slice | np.ndarray) -> WireRows:
        return WireRows(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def wire_rows(frame: pd.DataFrame, world: World) -> WireRows:
    """The rows' status, state and city as indices (city by name, else by zip code's block)."""
    status = pd.Categorical(frame["status"], categories=gen.STATUSES).codes.astype(np.int64)
    if np.any(status < 0):
        raise ValueError("rows without a known status (validation drops them)")
    state = pd.Categorical(frame["state"], categories=list(world.state_names)).codes.astype(
        np.int64
    )
    if np.any(state < 0):
        raise ValueError("rows without a known state (validation drops them)")
    by_name = {
        (int(s), str(name)): i
        for i, (s, name) in enumerate(zip(world.city_state, world.city_names, strict=True))
    }
    names = frame["city"].astype(object).to_numpy()
    city = np.array(
        [
            by_name.get((int(s), n), -1) if isinstance(n, str) else -1
            for s, n in zip(state, names, strict=True)
        ],
        dtype=np.int64,
    )
    unknown = city < 0
    if np.any(unknown):
        zips = pd.to_numeric(frame["zip_code"], errors="coerce").to_numpy(dtype=np.float64)
        order = np.argsort(world.city_zip_base)
        base = world.city_zip_base[order]
        at = np.clip(np.searchsorted(base, zips, side="right") - 1, 0, base.size - 1)
        cand = order[at]
        inside = (
            np.isfinite(zips)
            & (zips >= world.city_zip_base[cand])
            & (zips < world.city_zip_base[cand] + world.city_zip_count[cand])
            & (world.city_state[cand] == state)
        )
        city = np.where(unknown & inside, cand, city)

    def number(name: str) -> np.ndarray:
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)

    return WireRows(
        status=status,
        state=state,
        city=city,
        bed=number("bed"),
        bath=number("bath"),
        acre=number("acre_lot"),
        size=number("house_size"),
    )


def _lhs(rng: np.random.Generator, rows: int, draws: int, halves: np.ndarray) -> np.ndarray:
    """Midpoint Latin hypercube coordinates (rows, draws): each row a random order of the
    strata (k + 0.5) / draws; rows in ``halves`` get it separately for each half of the draws."""
    full = rng.permuted(np.tile(np.arange(draws, dtype=np.float64), (rows, 1)), axis=1)
    full = (full + 0.5) / draws
    if np.any(halves):
        h = draws // 2
        k = int(np.sum(halves))
        half = rng.permuted(np.tile(np.arange(h, dtype=np.float64), (2 * k, 1)), axis=1)
        half = (half + 0.5) / h
        full[halves] = np.concatenate([half[:k], half[k:]], axis=1)
    return full


@dataclass(frozen=True)
class Draws:
    """The predictive mixture of a block of rows: per draw, noiseless log price and weight."""

    centre: np.ndarray  # (rows, draws)
    scale: np.ndarray  # (rows, draws): the noise scale of the draw's kind
    weight: np.ndarray  # (rows, draws): sums to 1 per row (before selection)
    land: np.ndarray  # (rows, draws) bool


def posterior_draws(rows: WireRows, world: World, draws: int, rng: np.random.Generator) -> Draws:
    """Draws of each row's noiseless log price from its posterior given the wire's columns."""
    if draws % 2:
        raise ValueError("draws must be even (a possible land row gives half to each kind)")
    n, m = len(rows), draws
    s = rows.status
    log_rural = -0.35 * (world.state_log_level[rows.state] - LOG_300K)
    all_null = np.isnan(rows.bed) & np.isnan(rows.bath) & np.isnan(rows.size)
    q = land_probability(s, rows.acre, log_rural, all_null)
    ambiguous = q > 0
    first_half = np.arange(m) < m // 2
    land = ambiguous[:, None] & first_half[None, :]
    weight = np.where(
        ambiguous[:, None],
        np.where(first_half[None, :], q[:, None], (1.0 - q)[:, None]) / (m // 2),
        1.0 / m,
    )

    # house: dlog(size)
    u = _lhs(rng, n, m, ambiguous)
    d = np.empty((n, m))
    known = ~np.isnan(rows.size)
    d[known] = np.log(rows.size[known, None] + u[known] - 0.5) - gen.LOG_1760
    missing = np.flatnonzero(~known)
    if missing.size:
        rtb = (s[missing] == 2).astype(np.int64)
        bed_code = np.nan_to_num(rows.bed[missing], nan=-1.0).astype(np.int64) + 1
        bath_code = np.nan_to_num(rows.bath[missing], nan=-1.0).astype(np.int64) + 1
        code = (rtb * 4096 + bed_code) * 4096 + bath_code
        for value in np.unique(code):
            at = missing[code == value]
            i = at[0]
            cdf = size_posterior_grid(bool(s[i] == 2), float(rows.bed[i]), float(rows.bath[i]))
            d[at] = np.interp(u[at], cdf, D_GRID)

    # house: bed and bath
    u = _lhs(rng, n, m, ambiguous)
    bed = np.broadcast_to(rows.bed[:, None], (n, m)).copy()
    need = np.isnan(rows.bed)
    via_bath = need & ~np.isnan(rows.bath)
    if np.any(via_bath):
        bath_obs = np.broadcast_to(rows.bath[via_bath, None], (int(via_bath.sum()), m))
        bed[via_bath] = sample_bed_given_bath(d[via_bath], bath_obs, u[via_bath])
    free = need & ~via_bath
    bed[free] = np.maximum(1.0, np.round(bed_mean(d[free]) + 0.5 * special.ndtri(u[free])))
    u = _lhs(rng, n, m, ambiguous)
    bath = np.broadcast_to(rows.bath[:, None], (n, m)).copy()
    need = np.isnan(rows.bath)
    bath[need] = np.maximum(
        1.0, np.round(bath_mean(bed[need], d[need]) + 0.45 * special.ndtri(u[need]))
    )

    # the lot, for either kind
    u = _lhs(rng, n, m, ambiguous)
    centre_a = np.where(land, LAND_ACRE[0], HOUSE_ACRE[0]) + log_rural[:, None]
    scale_a = np.where(land, LAND_ACRE[1], HOUSE_ACRE[1])
    z = special.ndtri(u)
    acre_known = ~np.isnan(rows.acre)
    if np.any(acre_known):
        a = rows.acre[acre_known, None]
        with np.errstate(divide="ignore"):
            lo = (np.log(np.maximum(a - 0.005, 0.0)) - centre_a[acre_known]) / scale_a[acre_known]
        hi = (np.log(a + 0.005) - centre_a[acre_known]) / scale_a[acre_known]
        z[acre_known] = _truncated_normal(lo, hi, u[acre_known])
    log_acre = centre_a + scale_a * z

    # where we are
    level = np.empty((n, m))
    city_known = rows.city >= 0
    level[city_known] = (
        world.state_log_level[rows.state[city_known]] + world.city_effect[rows.city[city_known]]
    )[:, None]
    if np.any(~city_known):
        at = np.flatnonzero(~city_known)
        u = _lhs(rng, at.size, m, np.zeros(at.size, dtype=bool))
        for row, uu in zip(at, u, strict=True):
            st = rows.state[row]
            start, count = world.state_city_start[st], world.state_city_count[st]
            cum = np.cumsum(world.city_weight_in_state[start : start + count])
            pick = np.minimum(np.searchsorted(cum / cum[-1], uu), count - 1)
            level[row] = world.state_log_level[st] + world.city_effect[start + pick]
    level += gen.PRICE_OFFSET + gen.STATUS_EFFECT[s][:, None]

    house = 0.85 * d + 0.06 * (bath - 2.5) - 0.03 * (bed - 3.0) + 0.07 * (log_acre - HOUSE_ACRE[0])
    land_price = -1.6 + 0.45 * (log_acre - LAND_ACRE[0])
    centre = level + np.where(land, land_price, house)
    scale = np.where(land, gen.LAND_NOISE, gen.HOUSE_NOISE)
    return Draws(centre=centre, scale=scale, weight=weight, land=land)


def information_medians(
    rows: WireRows,
    world: World,
    regimes: Sequence[Regime] = (NO_SELECTION,),
    regime_weight: np.ndarray | None = None,
    draws: int = 256,
    seed: int = 0,
    chunk_elements: int = 1_000_000,
) -> np.ndarray:
    """The median of each row's served log price given its wire columns (the MAE-optimal
    prediction), under the price rules ``regimes`` with per-row prior ``regime_weight``."""
    n = len(rows)
    if regime_weight is None:
        regime_weight = np.ones((n, len(regimes))) / len(regimes)
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    step = max(1, chunk_elements // draws)
    for start in range(0, n, step):
        block = slice(start, min(n, start + step))
        mix = posterior_draws(rows.take(block), world, draws, rng)
        out[block] = mixture_median(
            mix.centre, mix.scale, mix.weight, regime_weight[block], regimes
        )
    return out


# ---------------------------------------------------------------------------------------------
# which price rule a row passed, when the rows mix batches


def batch_regime(scenario: Scenario, validated: Regime) -> Regime:
    """The price rule the rows of ``scenario``'s batch passed: validation's, and its floor."""
    lower = max(validated.lower, scenario.price_floor or 0.0)
    return Regime(lower, validated.upper)


def acceptance(
    scenario: Scenario, regime: Regime, world: World, rows: int = 400_000, seed: int = 0
) -> float:
    """The share of the batch's generated rows whose served price passes ``regime`` (by
    simulating the generator; the null and zero prices every batch loses alike are counted
    as failing, so that shares of different batches compare)."""
    spec = gen.RowSpec(
        status_mix=scenario.status_mix,
        state_weights=_state_weights(world, scenario),
        allow_state_null=scenario.single_state is None,
    )
    price = gen.draw_rows(np.random.default_rng(seed), world, rows, spec)["price"]
    return float(np.mean((price >= regime.lower) & (price <= regime.upper)))


def regime_prior(
    rows: WireRows,
    batch_rows: dict[int, int],
    world: World,
    validated: Regime,
    simulated_rows: int = 400_000,
) -> tuple[list[Regime], np.ndarray]:
    """The price rules of the batches behind the rows, and each row's prior over them.

    ``batch_rows``: rows of each batch (1-based number) in the set being scored. A row's batch
    is unknown to a model; given its status and state, batch b has prior weight
    ``rows_b * P_b(status) * P_b(state) / acceptance_b``: the batch generated
    ``rows_b / acceptance_b`` rows before its price rule, with its own status and state mixes
    (the other columns are drawn alike in every batch). The price itself enters later, as the
    probability of passing each rule (:func:`mixture_median`).
    """
    regimes: list[Regime] = []
    weight: list[np.ndarray] = []
    for number, count in sorted(batch_rows.items()):
        if count <= 0:
            continue
        scenario = SCENARIOS[number - 1]
        regime = batch_regime(scenario, validated)
        mix = np.asarray(scenario.status_mix, dtype=np.float64)
        mix = mix / mix.sum()
        states = _state_weights(world, scenario)
        states = world.state_weight if states is None else states
        generated = count / acceptance(scenario, regime, world, simulated_rows)
        w = generated * mix[rows.status] * states[rows.state]
        if regime in regimes:
            weight[regimes.index(regime)] += w
        else:
            regimes.append(regime)
            weight.append(w)
    prior = np.stack(weight, axis=1)
    total = prior.sum(axis=1, keepdims=True)
    if np.any(~(total > 0)):
        raise ValueError("a row's status and state fit none of the batches")
    return regimes, prior / total
