"""The six batches and the drift story they tell (the course's sequence).

| # | name | base rows | what changes |
|---|---|---|---|
| 1 | for_sale_initial | 74,000 | for_sale listings only, national mix |
| 2 | for_sale_sunbelt | 95,000 | for_sale only; the state mix tilts to the Sun Belt (FL, TX, AZ, GA, NC, SC, TN, NV x2) |
| 3 | sold | 230,000 | sold rows only (prev_sold_date = the 2021-10..2022-05 sale) |
| 4 | single_state | 4,000 | one small state (Vermont), all statuses |
| 5 | high_price | 321,000 | only prices of 300,000 and up (no null price) |
| 6 | full_range | 361,000 | everything, including one planted row of each absurd value |

Rows per batch = ``max(1, round(base_rows * scale))``. A batch depends only on
(seed, scale, group_number, day, batch_number): the same inputs give the same rows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_api import generator as gen
from data_api.geography import World, build_world

SINGLE_STATE = "Vermont"
PRICE_FLOOR = 300_000.0
SUNBELT = (
    "Florida",
    "Texas",
    "Arizona",
    "Georgia",
    "North Carolina",
    "South Carolina",
    "Tennessee",
    "Nevada",
)


@dataclass(frozen=True)
class Scenario:
    """One batch of the sequence."""

    batch_number: int
    name: str
    description: str
    base_rows: int
    status_mix: tuple[float, float, float] = gen.DEFAULT_STATUS_MIX
    single_state: str | None = None
    state_tilt: dict[str, float] = field(default_factory=dict)
    price_floor: float | None = None
    plant_absurd: bool = False

    def rows(self, scale: float) -> int:
        return max(1, round(self.base_rows * scale))

    def describe(self, scale: float) -> dict[str, object]:
        return {
            "batch_number": self.batch_number,
            "name": self.name,
            "description": self.description,
            "base_rows": self.base_rows,
            "rows": self.rows(scale),
        }


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(1, "for_sale_initial", "for_sale listings only, national state mix", 74_000,
             status_mix=(1.0, 0.0, 0.0)),
    Scenario(2, "for_sale_sunbelt",
             "for_sale listings only; the state mix tilts to the Sun Belt (x2 for "
             + ", ".join(SUNBELT) + ")", 95_000,
             status_mix=(1.0, 0.0, 0.0), state_tilt=dict.fromkeys(SUNBELT, 2.0)),
    Scenario(3, "sold", "sold rows only; prev_sold_date is the sale (2021-10..2022-05)",
             230_000, status_mix=(0.0, 1.0, 0.0)),
    Scenario(4, "single_state", f"one small state only ({SINGLE_STATE}), all statuses", 4_000,
             single_state=SINGLE_STATE),
    Scenario(5, "high_price", "only prices of 300,000 and up (rows with a null price left out)",
             321_000, price_floor=PRICE_FLOOR),
    Scenario(6, "full_range",
             "the full range, all statuses; includes at least one row of each absurd value "
             "(price 0 and 2,147,483,600, house_size 1,040,400,400, bed 473, bath 830, "
             "acre_lot 100,000)", 361_000, plant_absurd=True),
)  # fmt: skip


def batch_rng(seed: int, group_number: int, day: str, batch_number: int) -> np.random.Generator:
    """The RNG of one batch: a stable function of its identity (crc32 for the day string)."""
    day_key = zlib.crc32(day.encode("utf-8"))
    return np.random.default_rng(
        np.random.SeedSequence([seed, group_number, day_key, batch_number, 0xDA7A])
    )


def _state_weights(world: World, scenario: Scenario) -> np.ndarray | None:
    if scenario.single_state is not None:
        weights = np.zeros(world.state_weight.size)
        weights[world.state_index(scenario.single_state)] = 1.0
        return weights
    if scenario.state_tilt:
        weights = world.state_weight.copy()
        for name, factor in scenario.state_tilt.items():
            weights[world.state_index(name)] *= factor
        return weights / weights.sum()
    return None


def _plant_absurd(rng: np.random.Generator, world: World, rows: dict[str, np.ndarray]) -> None:
    """Overwrite up to six random rows with one absurd value each (the full-range story)."""
    n = rows["price"].size
    k = min(6, n)
    where = rng.choice(n, size=k, replace=False)
    plants = [
        ("price", 0.0),
        ("price", gen.MAX_PRICE),
        ("house_size", gen.ABSURD_HOUSE_SIZE),
        ("bed", gen.ABSURD_BED),
        ("bath", gen.ABSURD_BATH),
        ("acre_lot", gen.ABSURD_ACRE_LOT),
    ][:k]
    for i, (column, value) in zip(where, plants, strict=True):
        rows[column][i] = value
        if column == "price" and value == gen.MAX_PRICE:
            # like the real row: 2 bed / 2 bath / 885 sqft in California
            rows["bed"][i], rows["bath"][i], rows["house_size"][i] = 2.0, 2.0, 885.0
            rows["state"][i] = world.state_index("California")
            rows["city"][i] = world.state_city_start[rows["state"][i]]
            rows["zip_code"][i] = float(world.city_zip_base[rows["city"][i]])


def build_rows(
    seed: int, scale: float, group_number: int, day: str, scenario: Scenario
) -> dict[str, np.ndarray]:
    """The batch's rows as numeric columns (see :func:`data_api.generator.draw_rows`)."""
    world = build_world(seed)
    rng = batch_rng(seed, group_number, day, scenario.batch_number)
    spec = gen.RowSpec(
        status_mix=scenario.status_mix,
        state_weights=_state_weights(world, scenario),
        allow_state_null=scenario.single_state is None,
    )
    n = scenario.rows(scale)
    if scenario.price_floor is None:
        rows = gen.draw_rows(rng, world, n, spec)
    else:
        # draw in chunks, keep the rows above the floor, until there are enough
        parts: list[dict[str, np.ndarray]] = []
        kept = 0
        while kept < n:
            chunk = gen.draw_rows(rng, world, max(1_000, int((n - kept) * 2.2)), spec)
            keep = chunk["price"] >= scenario.price_floor  # NaN compares False: nulls left out
            parts.append(gen.take(chunk, keep))
            kept += int(keep.sum())
        rows = gen.take(gen.concat(parts), slice(0, n))
    if scenario.plant_absurd:
        _plant_absurd(rng, world, rows)
    return rows


def build_frame(
    seed: int, scale: float, group_number: int, day: str, batch_number: int
) -> pd.DataFrame:
    """The batch ``batch_number`` (1-based) as the wire-format DataFrame."""
    scenario = SCENARIOS[batch_number - 1]
    rows = build_rows(seed, scale, group_number, day, scenario)
    return gen.to_frame(rows, build_world(seed))
