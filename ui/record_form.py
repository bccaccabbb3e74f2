"""The Predict page's inputs: choices, ranges and defaults from the data, and the record.

Choices come from the pipeline's own definitions (statuses from ``tasks.core.schema``, the states
and territories the validation accepts from ``tasks.core.expectations``), ranges are the
validation's plausible ranges (``tasks.core.expectations.RANGES``), and defaults are the medians of
the Realtor data (../shared/REALTOR_DATA_FACTS.md: 3 beds, 2 baths, 1,760 sq ft, a 0.26-acre
lot, a previous sale in late 2021).

The widgets do not clamp: a value outside its range is kept as typed, and :meth:`problems`
names the field and its allowed range, so a person sees what was refused. A price is shown only
for the exact record it was computed for (:func:`price_is_current`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from tasks.core.expectations import RANGES, STATE_DOMAIN, ZIP_CODE_PATTERN
from tasks.core.wire import STATUSES

STATUS_LABELS: dict[str, str] = {
    "for_sale": "For sale",
    "sold": "Sold",
    "ready_to_build": "Ready to build",
}
STATES: tuple[str, ...] = tuple(sorted(STATE_DOMAIN))

#: (min, max, default, step) of each number: the validation's plausible ranges
BED = (int(RANGES["bed"][0]), int(RANGES["bed"][1]), 3, 1)
BATH = (int(RANGES["bath"][0]), int(RANGES["bath"][1]), 2, 1)
HOUSE_SIZE = (RANGES["house_size"][0], RANGES["house_size"][1], 1_760.0, 50.0)
ACRE_LOT = (RANGES["acre_lot"][0], RANGES["acre_lot"][1], 0.26, 0.01)
NUMBERS: dict[str, tuple[float, float, float, float]] = {
    "bed": BED,
    "bath": BATH,
    "house_size": HOUSE_SIZE,
    "acre_lot": ACRE_LOT,
}
PREV_SOLD_DEFAULT = dt.date(2021, 12, 3)
PREV_SOLD_MIN = dt.date(1901, 1, 1)
#: the longest zip code the form takes in: long enough that a wrong one is seen, not cut
ZIP_MAX_CHARS = 12

UNITS: dict[str, str] = {"house_size": "sq ft", "acre_lot": "acres"}

#: the form's own labels (what a person sees next to each widget)
INPUT_LABELS: dict[str, str] = {
    "status": "Status",
    "state": "State",
    "city": "City",
    "zip_code": "Zip code",
    "bed": "Bedrooms",
    "bath": "Bathrooms",
    "house_size": "Living area (sq ft)",
    "acre_lot": "Lot (acres)",
    "prev_sold_date": "Last sold on",
}
#: each optional field in a sentence: "the model filled these in: city, zip code"
EMPTY_NAMES: dict[str, str] = {
    "city": "city",
    "zip_code": "zip code",
    "bed": "bedrooms",
    "bath": "bathrooms",
    "house_size": "living area",
    "acre_lot": "lot size",
    "prev_sold_date": "last sold date",
}


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
        """{field: what is wrong, naming the field and its rule}; empty when fine.

        Each is refused before serving is asked: serving would refuse some (a status outside
        the data's vocabulary), and the rest are outside what the pipeline accepts as a house.
        """
        found: dict[str, str] = {}
        if self.status not in STATUSES:
            found["status"] = f"Status must be one of {', '.join(STATUSES)}"
        if self.state not in STATE_DOMAIN:
            found["state"] = f"State {self.state!r} is not a US state or territory"
        zip_code = self.zip_code.strip()
        if zip_code and not re.match(ZIP_CODE_PATTERN, zip_code):
            found["zip_code"] = (
                f"Zip code {zip_code[:ZIP_MAX_CHARS]!r} is refused: it must be exactly five "
                "digits, e.g. 02108 (or leave it empty)"
            )
        for field, (low, high, _, _) in NUMBERS.items():
            value = getattr(self, field)
            if value is not None and not low <= value <= high:
                found[field] = (
                    f"{INPUT_LABELS[field]} {number_text(value)} is out of range: "
                    f"allowed {number_text(low)} to {number_text(high)}"
                )
        if self.prev_sold_date is not None and not (
            PREV_SOLD_MIN <= self.prev_sold_date <= dt.date.today()
        ):
            found["prev_sold_date"] = (
                f"Last sold on {self.prev_sold_date.isoformat()} is out of range: allowed "
                f"{PREV_SOLD_MIN.isoformat()} to today"
            )
        return found

    def empty_fields(self) -> list[str]:
        """The optional fields left empty, which the model fills in, as a person names them."""
        values = {
            "city": self.city.strip() or None,
            "zip_code": self.zip_code.strip() or None,
            "bed": self.bed,
            "bath": self.bath,
            "house_size": self.house_size,
            "acre_lot": self.acre_lot,
            "prev_sold_date": self.prev_sold_date,
        }
        return [EMPTY_NAMES[field] for field, value in values.items() if value is None]

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


def number_text(value: float) -> str:
    """``1,000,000,000``, ``-1``, ``0.26``: a number as typed, with thousands separated."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def price_is_current(priced_record: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """Whether a price computed for ``priced_record`` may be shown for the inputs ``record``."""
    return priced_record is not None and priced_record == record


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


def warning_sentence(warning: Any) -> str:
    """An out-of-distribution warning from serving in words a person reads.

    ``warning`` has ``feature``, ``kind`` (``below_range``, ``above_range``,
    ``unseen_category``), ``value``, ``range`` and serving's own ``message`` (used for any other
    kind).
    """
    feature = str(warning.feature)
    label = FEATURE_LABELS.get(feature, feature)
    value = feature_value_text(feature, warning.value)
    bounds = warning.range
    if warning.kind == "above_range" and bounds is not None:
        largest = feature_value_text(feature, bounds[1])
        return (
            f"{label} {value} is above the largest the model was trained on ({largest}): "
            "this price is a guess beyond its data."
        )
    if warning.kind == "below_range" and bounds is not None:
        smallest = feature_value_text(feature, bounds[0])
        return (
            f"{label} {value} is below the smallest the model was trained on ({smallest}): "
            "this price is a guess beyond its data."
        )
    if warning.kind == "unseen_category":
        return (
            f"{label} {value} was not in the model's training data: the model priced it as "
            f"an unknown {label.lower()}."
        )
    return f"{label}: {warning.message}"
