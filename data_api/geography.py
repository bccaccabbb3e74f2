"""The simulator's synthetic geography: states (real names), cities (synthetic) and zip codes.

The state table holds, for the 50 states plus District of Columbia, Puerto Rico, the Virgin
Islands and Guam:

* ``weight``: share of listings. The twelve largest use the published cleaned counts
  (REALTOR_DATA_FACTS.md section 5, MUL: CA 190,055 ... NC 42,877); the others are estimates of
  the same order (population-like), Hawaii from NOA's 4,927.
* ``median``: the state's price level in dollars. Published medians where given (SUD's raw
  top-10, MUL's Washington, NOA's Ohio and Hawaii); estimates for the rest.
* ``zip_lo``/``zip_hi``: the state's real ZIP range (first three digits), so zip codes look
  right and Puerto Rico / Virgin Islands / New England lose their leading zeros as floats.

Cities are synthetic ("Cedar Falls", "Oakville", ...): a pool of about 400 built from the seed,
each with its own random price effect, a Zipf-like popularity within its state and a contiguous
block of zip codes. The pool depends only on the seed, so every batch shares the same cities.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# name, weight (listings), median price level ($), zip range
STATES: tuple[tuple[str, int, int, int, int], ...] = (
    ("California", 190_055, 669_000, 90000, 96199),
    ("Florida", 182_543, 319_900, 32000, 34999),
    ("Texas", 158_107, 315_000, 75000, 79999),
    ("New York", 67_081, 420_000, 10000, 14999),
    ("Illinois", 64_057, 249_900, 60000, 62999),
    ("Pennsylvania", 57_756, 245_000, 15000, 19699),
    ("Arizona", 56_124, 380_000, 85000, 86599),
    ("Georgia", 54_658, 299_900, 30000, 31999),
    ("Virginia", 54_331, 355_000, 22000, 24699),
    ("Washington", 52_243, 550_000, 98000, 99499),
    ("Ohio", 45_874, 179_900, 43000, 45999),
    ("North Carolina", 42_877, 249_900, 27000, 28999),
    ("Michigan", 40_000, 210_000, 48000, 49999),
    ("New Jersey", 40_000, 430_000, 7000, 8999),
    ("Tennessee", 40_000, 330_000, 37000, 38599),
    ("South Carolina", 40_000, 290_000, 29000, 29999),
    ("Massachusetts", 35_000, 550_000, 1000, 2799),
    ("Maryland", 35_000, 360_000, 20600, 21999),
    ("Colorado", 35_000, 550_000, 80000, 81699),
    ("Missouri", 35_000, 220_000, 63000, 65899),
    ("Indiana", 35_000, 210_000, 46000, 47999),
    ("Alabama", 30_000, 230_000, 35000, 36999),
    ("Minnesota", 25_000, 310_000, 55000, 56799),
    ("Wisconsin", 25_000, 260_000, 53000, 54999),
    ("Oregon", 25_000, 480_000, 97000, 97999),
    ("Louisiana", 25_000, 220_000, 70000, 71499),
    ("Kentucky", 25_000, 200_000, 40000, 42799),
    ("Oklahoma", 25_000, 200_000, 73000, 74999),
    ("Connecticut", 25_000, 350_000, 6000, 6999),
    ("Nevada", 20_000, 420_000, 88900, 89899),
    ("Arkansas", 18_000, 200_000, 71600, 72999),
    ("Utah", 15_000, 520_000, 84000, 84799),
    ("Mississippi", 15_000, 190_000, 38600, 39799),
    ("Kansas", 15_000, 210_000, 66000, 67999),
    ("Iowa", 15_000, 200_000, 50000, 52899),
    ("New Mexico", 15_000, 300_000, 87000, 88499),
    ("Puerto Rico", 15_000, 180_000, 600, 799),
    ("Idaho", 12_000, 450_000, 83200, 83899),
    ("West Virginia", 12_000, 160_000, 24700, 26899),
    ("Maine", 12_000, 330_000, 3900, 4999),
    ("Nebraska", 10_000, 250_000, 68000, 69399),
    ("New Hampshire", 10_000, 420_000, 3000, 3899),
    ("Rhode Island", 8_000, 400_000, 2800, 2999),
    ("Montana", 8_000, 480_000, 59000, 59999),
    ("Delaware", 8_000, 330_000, 19700, 19999),
    ("Vermont", 8_000, 340_000, 5000, 5999),
    ("District of Columbia", 6_000, 600_000, 20000, 20599),
    ("Hawaii", 4_927, 800_000, 96700, 96899),
    ("South Dakota", 4_000, 290_000, 57000, 57799),
    ("North Dakota", 3_000, 260_000, 58000, 58899),
    ("Alaska", 3_000, 340_000, 99500, 99999),
    ("Wyoming", 3_000, 350_000, 82000, 83199),
    ("Virgin Islands", 1_000, 550_000, 800, 899),
    ("Guam", 300, 350_000, 96900, 96999),
)

STATE_NAMES: tuple[str, ...] = tuple(s[0] for s in STATES)

_PREFIXES = (
    "Oak", "Maple", "Cedar", "Pine", "Willow", "Spring", "River", "Lake", "Fair", "Green",
    "Clear", "Rock", "Stone", "Red", "White", "Silver", "Golden", "North", "South", "East",
    "West", "Mill", "Bay", "Harbor", "Bridge", "Glen", "Ash", "Elm", "Brook", "Sun",
    "Pleasant", "Mount", "Hill", "Forest", "Meadow", "Fox", "Deer", "Eagle", "Hawk", "Long",
)  # fmt: skip
_SUFFIXES = (
    "ville", "field", "ton", "wood", "dale", "port", "burg", "view", "side", " Springs",
    " Falls", " Heights", " Park", " Grove", " City", " Beach", " Valley", " Creek", " Point",
    " Ridge",
)  # fmt: skip

TOTAL_CITIES = 400
CITY_EFFECT_SD = 0.30


@dataclass(frozen=True)
class World:
    """Static tables shared by every batch of one seed (arrays indexed by state or city)."""

    state_names: np.ndarray  # (S,) str
    state_weight: np.ndarray  # (S,) float, sums to 1
    state_log_level: np.ndarray  # (S,) log of the state's median price level
    city_names: np.ndarray  # (C,) str
    city_state: np.ndarray  # (C,) int, index into the state arrays
    city_effect: np.ndarray  # (C,) float, log-price random effect
    city_zip_base: np.ndarray  # (C,) int, first zip code of the city's block
    city_zip_count: np.ndarray  # (C,) int, number of zip codes in the block
    state_city_start: np.ndarray  # (S,) int, cities of state s are [start, start + count)
    state_city_count: np.ndarray  # (S,)
    city_weight_in_state: np.ndarray  # (C,) float, popularity; sums to 1 within each state

    def state_index(self, name: str) -> int:
        matches = np.flatnonzero(self.state_names == name)
        if matches.size == 0:
            raise KeyError(f"unknown state {name!r}")
        return int(matches[0])


@lru_cache(maxsize=4)
def build_world(seed: int) -> World:
    """The geography of one seed (deterministic, small: built in milliseconds, then cached)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6E0]))
    weights = np.array([s[1] for s in STATES], dtype=float)
    n_cities = np.maximum(2, np.round(TOTAL_CITIES * weights**0.6 / np.sum(weights**0.6)))
    n_cities = n_cities.astype(int)
    combos = np.array([p + s for p in _PREFIXES for s in _SUFFIXES])

    names: list[np.ndarray] = []
    city_state: list[np.ndarray] = []
    zip_base: list[np.ndarray] = []
    zip_count: list[np.ndarray] = []
    popularity: list[np.ndarray] = []
    for s, (_, _, _, lo, hi) in enumerate(STATES):
        k = int(n_cities[s])
        names.append(rng.choice(combos, size=k, replace=False))
        city_state.append(np.full(k, s))
        pop = 1.0 / np.arange(1, k + 1) ** 0.9
        pop = pop / pop.sum()
        popularity.append(pop)
        # contiguous, non-overlapping zip blocks sized by popularity, spread over the range
        width = hi - lo + 1
        desired = np.maximum(1, np.round(pop * min(width, 40 * k) * 0.8)).astype(int)
        gaps = rng.integers(0, max(1, (width - desired.sum()) // k) + 1, size=k)
        starts = lo + np.cumsum(gaps) + np.concatenate([[0], np.cumsum(desired)[:-1]])
        zip_base.append(starts)
        zip_count.append(desired)

    counts = n_cities
    starts_idx = np.concatenate([[0], np.cumsum(counts)[:-1]])
    levels = np.log(np.array([s[2] for s in STATES], dtype=float))
    all_names = np.concatenate(names)
    city_state_all = np.concatenate(city_state)
    weight_in_state = np.concatenate(popularity)
    # city effects centred within each state (popularity-weighted), so that the state's
    # median stays at its published level
    effect = rng.normal(0.0, CITY_EFFECT_SD, size=all_names.size)
    state_mean = np.bincount(
        city_state_all, weights=effect * weight_in_state, minlength=len(STATES)
    )
    effect = effect - state_mean[city_state_all]
    return World(
        state_names=np.array(STATE_NAMES),
        state_weight=weights / weights.sum(),
        state_log_level=levels,
        city_names=all_names,
        city_state=city_state_all,
        city_effect=effect,
        city_zip_base=np.concatenate(zip_base),
        city_zip_count=np.concatenate(zip_count),
        state_city_start=starts_idx,
        state_city_count=counts,
        city_weight_in_state=weight_in_state,
    )
