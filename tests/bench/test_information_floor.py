"""The information floor's pieces against brute force: the simulator's own rows, scipy, sampling.

The floor (bench/information_floor.py) is the best prediction of the log price from the wire's
columns alone. Each piece is checked where it can be checked exactly or by simulation with the
real generator: the t(5) CDF, the price rules after rounding, the land/house posterior, the
posterior of the house size given bed and bath, the median of a truncated mixture, and whole
predictions (calibrated: half the served prices fall below the predicted median, in every group
a model could form; on fully described houses, the noiseless price itself).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import information_floor as info
from data_api import generator as gen
from data_api.geography import build_world
from data_api.scenarios import SCENARIOS

SEED = 42
VALIDATED = info.Regime(1_000.0, 50_000_000.0)


@pytest.fixture(scope="module")
def world():
    return build_world(SEED)


@pytest.fixture(scope="module")
def simulated(world):
    """300k rows of the default mix, as validation would keep them (price rules included)."""
    rows = gen.draw_rows(np.random.default_rng(7), world, 300_000, gen.RowSpec())
    price = rows["price"]

    def within(name: str, high: float) -> np.ndarray:
        values = rows[name]
        return np.isnan(values) | (values <= high)

    keep = (
        (price >= VALIDATED.lower)
        & (price <= VALIDATED.upper)
        & (rows["state"] >= 0)
        & within("bed", 50)
        & within("bath", 50)
        & within("acre_lot", 10_000)
        & within("house_size", 100_000)
    )
    rows = gen.take(rows, keep)
    return rows, gen.to_frame(rows, world)


def test_t5_cdf_is_students_t_with_five_degrees_of_freedom() -> None:
    t = np.concatenate([np.linspace(-40, 40, 2001), [-np.inf, np.inf, 1e300]])
    np.testing.assert_allclose(info.t5_cdf(t), stats.t.cdf(t, df=5), atol=1e-13)


@pytest.mark.parametrize("bound", [1_000.0, 300_000.0])
def test_price_rules_on_the_raw_price_match_the_generators_rounding(bound: float) -> None:
    regime = info.Regime(bound, 50_000_000.0)
    lo, _ = regime.raw_log_bounds()
    rng = np.random.default_rng(0)
    for raw in np.linspace(bound - 700, bound + 700, 57) + 0.37:  # no ties (half to even)
        served = gen._round_price(rng, np.full(20_000, raw))
        expected = float(np.sum(info.BRANCH_P * (math.log(raw) >= lo)))
        assert abs(np.mean(served >= bound) - expected) < 0.015, raw


def test_land_probability_is_calibrated_on_the_generators_rows(world, simulated) -> None:
    rows, _ = simulated
    all_null = np.isnan(rows["bed"]) & np.isnan(rows["bath"]) & np.isnan(rows["house_size"])
    log_rural = -0.35 * (world.state_log_level[rows["state"]] - info.LOG_300K)
    q = info.land_probability(rows["status"], rows["acre_lot"], log_rural, all_null)
    land = rows["land"]
    assert np.all(q[~all_null] == 0)
    assert np.all(land <= all_null)  # land is never described
    q, land = q[all_null], land[all_null]
    # overall and by bins of the posterior: the share that is land is the mean posterior
    assert abs(land.mean() - q.mean()) < 3 * math.sqrt(q.mean() * (1 - q.mean()) / q.size)
    # (a house that says nothing is never much likelier than land: q > 0.3 unless ready_to_build)
    for low, high in [(0.3, 0.7), (0.7, 0.9), (0.9, 0.99), (0.99, 1.0001)]:
        at = (q >= low) & (q < high)
        assert at.sum() > 1000, (low, high)
        spread = math.sqrt(np.sum(q[at] * (1 - q[at]))) / at.sum()
        assert abs(land[at].mean() - q[at].mean()) < 4 * spread + 0.005, (low, high)


def test_size_posterior_given_bed_and_bath_matches_the_generators_houses(simulated) -> None:
    rows, _ = simulated
    for bed, bath in [(3, 2), (4, 3), (2, 1), (5, 4)]:
        at = ((rows["status"] == 0) & (rows["bed"] == bed) & (rows["bath"] == bath)) & ~np.isnan(
            rows["house_size"]
        )
        d = np.log(rows["house_size"][at]) - gen.LOG_1760
        cdf = info.size_posterior_grid(False, float(bed), float(bath))
        for p in (0.1, 0.5, 0.9):
            expected = np.interp(p, cdf, info.D_GRID)
            observed = np.mean(d <= expected)
            assert abs(observed - p) < 4 * math.sqrt(p * (1 - p) / d.size) + 0.003, (bed, bath, p)


def test_bed_given_bath_and_size_matches_enumeration() -> None:
    d = np.full(40_000, 0.1)
    bath = np.full(40_000, 3.0)
    u = (np.arange(40_000) + 0.5) / 40_000
    bed = info.sample_bed_given_bath(d, bath, u)
    beds = np.arange(1, info.MAX_BED + 1, dtype=float)
    p = info._rounded_normal_probability(beds, info.bed_mean(np.full_like(beds, 0.1)), 0.5)
    p = p * info._rounded_normal_probability(
        np.full_like(beds, 3.0), info.bath_mean(beds, 0.1), 0.45
    )
    p = p / p.sum()
    shares = np.array([np.mean(bed == b) for b in beds])
    np.testing.assert_allclose(shares, p, atol=1e-4)


def test_median_of_a_truncated_mixture_matches_sampling() -> None:
    rng = np.random.default_rng(3)
    centre = np.array([[11.0, 12.5, 13.2], [12.0, 12.0, 12.0], [10.0, 13.0, 13.1]])
    scale = np.array([[0.45, 0.25, 0.25], [0.25, 0.25, 0.25], [0.45, 0.25, 0.45]])
    weight = np.array([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3], [0.7, 0.2, 0.1]])
    regimes = [VALIDATED, info.Regime(300_000.0, 50_000_000.0)]
    prior = np.array([[1.0, 0.0], [0.5, 0.5], [0.3, 0.7]])
    median = info.mixture_median(centre, scale, weight, prior, regimes)
    n = 400_000
    for i in range(3):
        r = rng.choice(2, size=n, p=prior[i])
        j = rng.choice(3, size=n, p=weight[i])
        raw = centre[i, j] + scale[i, j] * rng.standard_t(5, n)
        served = gen._round_price(rng, np.exp(raw))
        lower = np.array([regimes[0].lower, regimes[1].lower])[r]
        kept = raw[(served >= lower) & (served <= VALIDATED.upper)]
        assert abs(np.mean(kept <= median[i]) - 0.5) < 0.004, i
    # one untruncated component: its centre
    one = info.mixture_median(
        np.array([[12.3]]),
        np.array([[0.25]]),
        np.ones((1, 1)),
        np.ones((1, 1)),
        [info.NO_SELECTION],
    )
    assert abs(one[0] - 12.3) < 1e-9


@pytest.mark.parametrize(("price", "scale"), [(10_000.0, 0.45), (300_000.0, 0.25)])
def test_the_served_prices_rounding_hardly_moves_the_best_prediction(price, scale) -> None:
    # the floor predicts the median of the raw log price; the served price is rounded: the
    # best prediction of the rounded one is nearby, and no better by more than 5e-5
    rng = np.random.default_rng(5)
    centre = math.log(price)
    median = info.mixture_median(
        np.array([[centre]]), np.array([[scale]]), np.ones((1, 1)), np.ones((1, 1)), [VALIDATED]
    )[0]
    raw = centre + scale * rng.standard_t(5, 1_000_000)
    served = gen._round_price(rng, np.exp(raw))
    y = np.log(served[(served >= VALIDATED.lower) & (served <= VALIDATED.upper)])
    fit, check = y[::2], y[1::2]
    grid = median + np.linspace(-0.01, 0.01, 41)
    best = grid[int(np.argmin([np.mean(np.abs(fit - g)) for g in grid]))]
    gain = np.mean(np.abs(check - median)) - np.mean(np.abs(check - best))
    assert gain < 5e-5


def test_fully_described_houses_get_their_noiseless_price(world, simulated) -> None:
    rows, frame = simulated
    seen = ~(
        np.isnan(rows["bed"])
        | np.isnan(rows["bath"])
        | np.isnan(rows["house_size"])
        | np.isnan(rows["acre_lot"])
    )
    at = np.flatnonzero(seen)[:3000]
    wire = info.wire_rows(frame.iloc[at], world)
    median = info.information_medians(wire, world, [info.NO_SELECTION], draws=32)
    gap = median - rows["noiseless_log_price"][at]
    # only the rounding of acre_lot (to 0.01) and house_size (to 1 sqft) is unknown
    assert np.median(np.abs(gap)) < 0.002
    assert np.max(np.abs(gap)) < 0.08


def test_predictions_are_calibrated_in_every_group_a_model_can_form(world, simulated) -> None:
    rows, frame = simulated
    all_null = np.isnan(rows["bed"]) & np.isnan(rows["bath"]) & np.isnan(rows["house_size"])
    some_null = ~all_null & (np.isnan(rows["house_size"]) | np.isnan(rows["bed"]))
    rng = np.random.default_rng(1)
    at = np.concatenate(
        [
            rng.choice(np.flatnonzero(all_null), 8000, replace=False),
            rng.choice(np.flatnonzero(some_null), 3000, replace=False),
            rng.choice(np.flatnonzero(rows["status"] == 2), 1000, replace=False),
        ]
    )
    wire = info.wire_rows(frame.iloc[at], world)
    median = info.information_medians(wire, world, [VALIDATED], draws=64)
    below = np.log(rows["price"][at]) <= median
    log_rural = -0.35 * (world.state_log_level[wire.state] - info.LOG_300K)
    q = info.land_probability(wire.status, wire.acre, log_rural, all_null[at])
    groups = {
        "bed, bath, size null": all_null[at],
        "... and land or house unclear": all_null[at] & (q > 0.2) & (q < 0.8),
        "... and acre_lot null": all_null[at] & np.isnan(wire.acre),
        "size or bed null": some_null[at],
        "ready_to_build": wire.status == 2,
    }
    for name, group in groups.items():
        n = int(group.sum())
        assert n > 200, name
        assert abs(below[group].mean() - 0.5) < 4 * 0.5 / math.sqrt(n), name


def test_a_mix_of_batches_with_a_price_floor_is_calibrated(world) -> None:
    from data_api.scenarios import build_rows

    parts, batches = [], []
    for number in (5, 6):
        rows = build_rows(SEED, 0.03, 1, "Tuesday", SCENARIOS[number - 1])
        keep = (rows["price"] >= VALIDATED.lower) & (rows["price"] <= VALIDATED.upper)
        for name, high in (("bed", 50), ("bath", 50), ("acre_lot", 1e4), ("house_size", 1e5)):
            keep &= np.isnan(rows[name]) | (rows[name] <= high)
        rows = gen.take(rows, keep & (rows["state"] >= 0))
        parts.append(rows)
        batches.append(np.full(rows["price"].size, number))
    rows = gen.concat(parts)
    batch = np.concatenate(batches)
    frame = gen.to_frame(rows, world)
    wire = info.wire_rows(frame, world)
    counts = {5: int(np.sum(batch == 5)), 6: int(np.sum(batch == 6))}
    regimes, prior = info.regime_prior(wire, counts, world, VALIDATED, simulated_rows=100_000)
    assert len(regimes) == 2
    median = info.information_medians(wire, world, regimes, prior, draws=32)
    below = np.log(rows["price"]) <= median
    all_null = np.isnan(wire.bed) & np.isnan(wire.bath) & np.isnan(wire.size)
    for name, group in {"all": np.ones(below.size, bool), "bed, bath, size null": all_null}.items():
        n = int(group.sum())
        assert abs(below[group].mean() - 0.5) < 4 * 0.5 / math.sqrt(n), name


def test_rows_are_read_from_the_canonical_columns(world) -> None:
    frame = pd.DataFrame(
        {
            "status": ["for_sale", "sold"],
            "state": ["Vermont", "Vermont"],
            "city": [world.city_names[world.state_city_start[world.state_index("Vermont")]], None],
            "zip_code": [
                "05001",
                f"{int(world.city_zip_base[world.state_city_start[world.state_index('Vermont')] + 1]):05d}",
            ],
            "bed": [3.0, None],
            "bath": [2.0, None],
            "acre_lot": [0.25, None],
            "house_size": [1500.0, None],
        }
    )
    wire = info.wire_rows(frame, world)
    start = world.state_city_start[world.state_index("Vermont")]
    assert list(wire.city) == [start, start + 1]  # by name, else by the zip code's block
    assert list(wire.status) == [0, 1]
