"""Realistic request bodies for the serving benchmarks (``bench/serving.py``, the locustfile).

Rows come from the data API simulator's own generator (``data_api``: the published Realtor
mixes of status, state and city, the published null rates, zip codes of each city's block),
batch 6 (``full_range``: every status, the whole price range) of the demo's seed, so the cities
and zip codes are the ones the demo's model was trained on, with the published share of nulls.
Each row becomes the JSON ``/predict`` takes: the model's features only, ``zip_code`` as a
five-digit string, ``prev_sold_date`` as an ISO date, nulls as ``null``. Rows the service
refuses by design (the simulator plants one absurd value of each kind: a 1e9 square-foot house,
a 100,000-acre lot) are left out, and so is a row with no feature at all (the API refuses it),
since a benchmark measures answers, not 422s.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from tasks.core.model import (
    FEATURES,  # the model's input columns: one list for the API, UI and load
)

#: The demo's simulator seed and the batch sampled (full_range).
DEMO_SEED = 42
FULL_RANGE_BATCH = 6
_LIMITS = {"bed": 1000.0, "bath": 1000.0, "acre_lot": 1e7, "house_size": 1e8}


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, date):  # a curated row's prev_sold_date: ISO text on the wire
        return value.isoformat()
    return value


def request_record(row: dict[str, Any]) -> dict[str, Any] | None:
    """A data row as a /predict record (JSON-ready), or None when serving would refuse it."""
    record = {name: _clean(row.get(name)) for name in FEATURES}
    zip_code = record["zip_code"]
    if zip_code is not None:
        record["zip_code"] = f"{int(zip_code):05d}"
    for name, limit in _LIMITS.items():
        value = record[name]
        if value is not None and not 0 <= value <= limit:
            return None
    if record["house_size"] == 0:
        return None
    if all(value is None for value in record.values()):  # no feature at all: a 422 by design
        return None
    return record


def realistic_pool(seed: int = DEMO_SEED, scale: float = 0.01) -> list[dict]:
    """Every realistic record of the batch at ``scale`` (JSON-ready dicts), in its order;
    ``scripts/live_traffic.py`` draws the demo's live traffic from it."""
    from data_api.scenarios import build_frame

    frame = build_frame(seed, scale, 1, "Tuesday", FULL_RANGE_BATCH)
    return [r for r in map(request_record, frame.to_dict("records")) if r is not None]


def realistic_records(n: int, *, seed: int = DEMO_SEED, scale: float = 0.01) -> list[dict]:
    """``n`` distinct realistic records (JSON-ready dicts), the same for the same arguments."""
    records = realistic_pool(seed, scale)
    if len(records) < n:
        raise ValueError(f"only {len(records)} records at scale {scale}; ask a larger scale")
    return records[:n]
