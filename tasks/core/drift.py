"""Drift between two samples of listings, measured with Evidently 0.7: one code for two steps.

drift_check compares a curated batch with the production model's training data (the target,
as log10(price), and the input features); monitor compares live requests with the same
reference on the input features only (live traffic has no price). Both call
:func:`run_evidently` on frames shaped by :func:`drift_frame`, so a column's score means the
same thing in a drift decision, a monitor window and the UI.

Methods: a normed Wasserstein distance on the numeric columns, Jensen-Shannon distance on
status and state. A column is drifted when its score reaches its threshold (Evidently's
default, 0.1 for both methods, unless ``column_thresholds`` says otherwise). A column with no
values on one side cannot be measured: its score is NaN, and it is named, never guessed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: the numeric input features compared (a normed Wasserstein distance)
NUMERIC = ("bed", "bath", "acre_lot", "house_size")
#: the categorical input features compared (Jensen-Shannon distance)
CATEGORICAL = ("status", "state")
#: the input features: what live traffic carries
FEATURES = (*NUMERIC, *CATEGORICAL)
#: the target as compared: log10(price) (prices are heavy-tailed; see tasks.drift_check.step)
TARGET_COLUMN = "log_price"
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float  # a distance: drifted when score >= threshold; NaN when not measurable
    threshold: float

    @property
    def measured(self) -> bool:
        return not math.isnan(self.score)

    @property
    def drifted(self) -> bool:
        return self.measured and self.score >= self.threshold


def drift_frame(frame: pd.DataFrame, *, with_target: bool = True) -> pd.DataFrame:
    """The compared columns: log10(price) as the target (``with_target``), the measures,
    status and state. Live traffic has no price: monitor passes ``with_target=False``."""
    out = pd.DataFrame(index=range(len(frame)))
    if with_target:
        out[TARGET_COLUMN] = np.log10(frame["price"].astype(float).to_numpy())
    for column in NUMERIC:
        out[column] = frame[column].astype(float).to_numpy()
    for column in CATEGORICAL:
        out[column] = frame[column].astype(object).to_numpy()
    return out


def run_evidently(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    share: float,
    column_thresholds: Mapping[str, float] | None = None,
) -> tuple[list[ColumnDrift], Any]:
    """Per-column drift (Evidently 0.7) and the snapshot; columns empty on a side are NaN.

    The columns are those of :func:`drift_frame` present in ``current`` (the target only if
    it was kept), in that order.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in (TARGET_COLUMN, *NUMERIC) if c in current.columns]
    measurable = [
        c
        for c in (*numeric, *CATEGORICAL)
        if current[c].notna().any() and reference[c].notna().any()
    ]
    definition = DataDefinition(
        numerical_columns=[c for c in numeric if c in measurable],
        categorical_columns=[c for c in CATEGORICAL if c in measurable],
    )
    report = Report(
        [
            DataDriftPreset(
                columns=measurable,
                num_method=NUM_METHOD,
                cat_method=CAT_METHOD,
                per_column_threshold=dict(column_thresholds or {}) or None,
                drift_share=share,
            )
        ]
    )
    snapshot = report.run(
        Dataset.from_pandas(current[measurable], data_definition=definition),
        Dataset.from_pandas(reference[measurable], data_definition=definition),
    )
    found: dict[str, ColumnDrift] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not config.get("type", "").endswith(":ValueDrift"):
            continue
        column = config["column"]
        value = metric["value"]
        if not isinstance(value, int | float):
            raise RuntimeError(f"Evidently gave no drift score for {column!r}: {value!r}")
        found[column] = ColumnDrift(column, config["method"], float(value), config["threshold"])
    missing = set(measurable) - set(found)
    if missing:
        raise RuntimeError(f"Evidently's report has no drift for {sorted(missing)}")
    columns = []
    for column in (*numeric, *CATEGORICAL):
        method = NUM_METHOD if column in numeric else CAT_METHOD
        columns.append(found.get(column) or ColumnDrift(column, method, math.nan, math.nan))
    return columns, snapshot
