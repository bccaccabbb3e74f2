"""Out-of-distribution warnings: a record's values outside what the served version was trained on.

Each version carries the ranges of its training data (the run artifact ``feature_ranges.json``
written by :func:`tasks.training_log.feature_ranges`): the smallest and largest value of each
numeric feature, and the categories seen for ``status`` and ``state``. A value outside is still
priced (the trees extrapolate flat), but the answer says so, per row and feature.

``city`` and ``zip_code`` get no warning: they are high-cardinality, a new listing's town or zip
is often one the data never had, and the model's answer for it (the target encoder's overall
mean, blended by the other features) is its designed behaviour, not an extrapolation; a warning
on every such record would be noise that hides the real ones.

A check costs a few comparisons per row: plain Python for a handful of rows (the single-row hot
path), numpy over the batch for more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tasks.core.model import FEATURE_RANGES_ARTIFACT, FEATURES

ARTIFACT = FEATURE_RANGES_ARTIFACT
KINDS: tuple[str, ...] = ("below_range", "above_range", "unseen_category")
#: at most this many rows are checked value by value; larger batches are checked with numpy
SMALL_BATCH = 8
_ORDER = {name: i for i, name in enumerate(FEATURES)}


def _position(warning: dict[str, Any]) -> tuple[int, int]:
    """Warnings are listed by row, then in the model's feature order."""
    return warning["row"], _ORDER[warning["feature"]]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _warning(row: int, feature: str, kind: str, value: Any, bounds: Any) -> dict[str, Any]:
    if kind == "unseen_category":
        message = (
            f"{feature} {value!r} was not in the data the model was trained on: it is priced "
            "as an unknown category"
        )
        return {
            "row": row,
            "feature": feature,
            "kind": kind,
            "value": value,
            "range": None,
            "message": message,
        }
    low, high = bounds
    if kind == "above_range":
        message = f"{feature} {_number(value)} is above the largest the model was trained on "
        message += f"({_number(high)})"
    else:
        message = f"{feature} {_number(value)} is below the smallest the model was trained on "
        message += f"({_number(low)})"
    return {
        "row": row,
        "feature": feature,
        "kind": kind,
        "value": float(value),
        "range": [low, high],
        "message": message,
    }


@dataclass(frozen=True)
class FeatureRanges:
    """One version's training ranges; :meth:`check` lists what falls outside."""

    numeric: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[str]]
    rows: int | None = None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> FeatureRanges:
        """From ``feature_ranges.json`` (raises ValueError when it is not of that shape)."""
        try:
            numeric = {
                name: (float(low), float(high))
                for name, (low, high) in document["numeric"].items()
                if name in _ORDER
            }
            categories = {
                name: frozenset(str(v) for v in values)
                for name, values in document["categories"].items()
                if name in _ORDER
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{ARTIFACT} is not a ranges document: {exc!r}") from None
        return cls(numeric, categories, document.get("rows"))

    def as_document(self) -> dict[str, Any]:
        """What /model shows: the same shape as the artifact."""
        return {
            "rows": self.rows,
            "numeric": {name: list(bounds) for name, bounds in self.numeric.items()},
            "categories": {name: sorted(values) for name, values in self.categories.items()},
        }

    def check(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The warnings of canonical records (``Record.features()``), by row then feature."""
        if len(records) <= SMALL_BATCH:
            return self._check_rows(records)
        return self._check_columns(records)

    def _check_rows(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for row, record in enumerate(records):
            for name, bounds in self.numeric.items():
                value = record.get(name)
                if value is None:
                    continue
                if value > bounds[1]:
                    found.append(_warning(row, name, "above_range", value, bounds))
                elif value < bounds[0]:
                    found.append(_warning(row, name, "below_range", value, bounds))
            for name, seen in self.categories.items():
                value = record.get(name)
                if value is not None and value not in seen:
                    found.append(_warning(row, name, "unseen_category", value, None))
        if len(found) > 1:
            found.sort(key=_position)
        return found

    def _check_columns(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name, bounds in self.numeric.items():
            values = np.array([r.get(name) for r in records], dtype=np.float64)  # None: NaN
            for row in np.flatnonzero(values > bounds[1]).tolist():
                found.append(_warning(row, name, "above_range", values[row], bounds))
            for row in np.flatnonzero(values < bounds[0]).tolist():
                found.append(_warning(row, name, "below_range", values[row], bounds))
        for name, seen in self.categories.items():
            for row, record in enumerate(records):
                value = record.get(name)
                if value is not None and value not in seen:
                    found.append(_warning(row, name, "unseen_category", value, None))
        found.sort(key=_position)
        return found
