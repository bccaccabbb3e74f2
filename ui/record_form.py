"""The Predict page's inputs: choices, ranges and defaults from the data, and the record.

Choices come from the pipeline's own definitions (statuses from ``tasks.schema``, the states
and territories the validation accepts from ``tasks.expectations``), ranges are the
validation's plausible ranges, and defaults are the medians of the Realtor data
(../shared/REALTOR_DATA_FACTS.md: 3 beds, 2 baths, 1,760 sq ft, a 0.26-acre lot, a previous
sale in late 2021).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from tasks.expectations import STATE_DOMAIN, ZIP_CODE_PATTERN
from tasks.schema import STATUSES

STATUS_LABELS: dict[str, str] = {
    "for_sale": "For sale",
    "sold": "Sold",
    "ready_to_build": "Ready to build",
}
STATES: tuple[str, ...] = tuple(sorted(STATE_DOMAIN))

#: (min, max, default, step) of each number, inside the validation's plausible ranges
BED = (1, 20, 3, 1)
BATH = (1, 20, 2, 1)
HOUSE_SIZE = (100, 20_000, 1_760, 50)
ACRE_LOT = (0.0, 1_000.0, 0.26, 0.01)
PREV_SOLD_DEFAULT = dt.date(2021, 12, 3)
PREV_SOLD_MIN = dt.date(1901, 1, 1)

UNITS: dict[str, str] = {"house_size": "sq ft", "acre_lot": "acres"}


@dataclass(frozen=True)
class HouseInputs:
    """What a person typed in; :meth:`record` turns it into serving's record."""

    status: str = "for_sale"
    state: str = "California"
    city: str = "Los Angeles"
    zip_code: str = "90001"
    bed: int | None = BED[2]
    bath: int | None = BATH[2]
    house_size: float | None = HOUSE_SIZE[2]
    acre_lot: float | None = ACRE_LOT[2]
    prev_sold_date: dt.date | None = PREV_SOLD_DEFAULT

    def problems(self) -> dict[str, str]:
        """{field: what is wrong} for what serving would refuse anyway; empty when fine."""
        found: dict[str, str] = {}
        if self.status not in STATUSES:
            found["status"] = f"one of {', '.join(STATUSES)}"
        zip_code = self.zip_code.strip()
        if zip_code and not re.match(ZIP_CODE_PATTERN, zip_code):
            found["zip_code"] = "five digits, e.g. 02108 (or leave it empty)"
        return found

    def record(self) -> dict[str, Any]:
        """The record for ``POST /explain``: empty text becomes null, dates ISO strings."""
        city = self.city.strip() or None
        zip_code = self.zip_code.strip() or None
        return {
            "status": self.status,
            "bed": None if self.bed is None else float(self.bed),
            "bath": None if self.bath is None else float(self.bath),
            "acre_lot": None if self.acre_lot is None else float(self.acre_lot),
            "city": city,
            "state": self.state,
            "zip_code": zip_code,
            "house_size": None if self.house_size is None else float(self.house_size),
            "prev_sold_date": None
            if self.prev_sold_date is None
            else self.prev_sold_date.isoformat(),
        }


def feature_value_text(feature: str, value: Any) -> str:
    """A feature's value as a person reads it: ``2,400 sq ft``, ``For sale``, ``unknown``."""
    if value is None or value == "":
        return "unknown"
    if feature == "status":
        return STATUS_LABELS.get(str(value), str(value))
    if feature in ("bed", "bath") and isinstance(value, int | float):
        return f"{value:g}"
    if feature == "house_size" and isinstance(value, int | float):
        return f"{value:,.0f} sq ft"
    if feature == "acre_lot" and isinstance(value, int | float):
        return f"{value:,.2f} acres"
    return str(value)


FEATURE_LABELS: dict[str, str] = {
    "status": "Status",
    "bed": "Beds",
    "bath": "Baths",
    "acre_lot": "Lot",
    "city": "City",
    "state": "State",
    "zip_code": "Zip code",
    "house_size": "Size",
    "prev_sold_date": "Last sold",
}


def feature_label(feature: str, value: Any) -> str:
    """``Size = 2,400 sq ft``: the feature's name for people, and its value."""
    return f"{FEATURE_LABELS.get(feature, feature)} = {feature_value_text(feature, value)}"
