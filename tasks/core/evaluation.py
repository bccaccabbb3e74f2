"""Metrics of a price model on held-out rows, and the naive baseline it must beat.

Pure functions: arrays in, numbers out, no I/O. Errors are in dollars (the model predicts
dollars), except ``log_mae`` (mean absolute error of the natural log of the price: the scale on
which the data's own noise is measured, see bench/model_quality.py) and ``mdape`` (median
absolute percentage error, as a fraction: half the rows are off by less). Group metrics are named ``mae_status_<status>`` and ``mae_band_<band>`` (bands of
the TRUE price: under 200k, 200k-500k, 500k-1M, over 1M); a group without rows is left out
rather than reported as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: (name, lower bound inclusive, upper bound exclusive) of the price bands, in dollars.
PRICE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("lt_200k", 0.0, 200_000.0),
    ("200k_500k", 200_000.0, 500_000.0),
    ("500k_1m", 500_000.0, 1_000_000.0),
    ("gt_1m", 1_000_000.0, math.inf),
)

HEADLINE_METRICS: tuple[str, ...] = ("mae", "rmse", "r2", "mape", "log_mae", "mdape")


class EvaluationError(ValueError):
    """The rows cannot be evaluated (none at all, or NaN in targets or predictions)."""


def _as_float_array(values: Sequence[float] | np.ndarray | pd.Series, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise EvaluationError(f"{what} holds {bad} NaN or infinite values; cannot evaluate")
    return array


def regression_metrics(
    y_true: Sequence[float] | np.ndarray | pd.Series,
    y_pred: Sequence[float] | np.ndarray | pd.Series,
    status: Sequence[object] | np.ndarray | pd.Series | None = None,
) -> dict[str, float]:
    """MAE, RMSE, R2, MAPE, log-price MAE and MdAPE, plus MAE per status and per price band.

    Raises :class:`EvaluationError` on an empty holdout or on NaN/infinite values: a metric
    that cannot be computed must stop the pipeline, never look like a good (or bad) model.
    R2 needs two distinct true prices; with fewer it is omitted. MAPE and MdAPE ignore zero
    prices; the log-price MAE ignores rows where the price or the prediction is not positive.
    """
    truth = _as_float_array(y_true, "the true prices")
    pred = _as_float_array(y_pred, "the predictions")
    if truth.shape != pred.shape:
        raise EvaluationError(f"{truth.size} true prices but {pred.size} predictions")
    if truth.size == 0:
        raise EvaluationError(
            "the holdout is empty: no rows to evaluate on (more data, or a larger HOLDOUT_SHARE)"
        )
    error = pred - truth
    absolute = np.abs(error)
    metrics: dict[str, float] = {
        "mae": float(absolute.mean()),
        "rmse": float(math.sqrt(float(np.mean(error**2)))),
    }
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total > 0:
        metrics["r2"] = float(1.0 - float(np.sum(error**2)) / total)
    positive = truth > 0
    if positive.any():
        relative = absolute[positive] / truth[positive]
        metrics["mape"] = float(np.mean(relative))
        metrics["mdape"] = float(np.median(relative))
    both = positive & (pred > 0)
    if both.any():
        metrics["log_mae"] = float(np.mean(np.abs(np.log(pred[both]) - np.log(truth[both]))))
    if status is not None:
        labels = pd.Series(np.asarray(status, dtype=object)).fillna("missing").astype(str)
        if labels.size != truth.size:
            raise EvaluationError(f"{labels.size} status labels for {truth.size} rows")
        for name, group in pd.Series(absolute).groupby(labels.to_numpy()):
            metrics[f"mae_status_{name}"] = float(group.mean())
    for name, low, high in PRICE_BANDS:
        in_band = (truth >= low) & (truth < high)
        if in_band.any():
            metrics[f"mae_band_{name}"] = float(absolute[in_band].mean())
    metrics["rows"] = float(truth.size)
    return metrics


def fit_state_medians(states: pd.Series, prices: pd.Series) -> dict[str, float]:
    """The naive baseline: the median training price of each state, and ``"*"`` overall."""
    prices = pd.Series(np.asarray(prices, dtype=np.float64))
    if prices.empty or prices.isna().all():
        raise EvaluationError("the baseline needs at least one training price")
    labels = pd.Series(np.asarray(states, dtype=object))
    medians = prices.groupby(labels.to_numpy()).median().dropna()
    table = {str(k): float(v) for k, v in medians.items()}
    table["*"] = float(prices.median())
    return table


def predict_state_medians(medians: Mapping[str, float], states: pd.Series) -> np.ndarray:
    """Baseline predictions: the state's median, the overall median for unseen or null states."""
    overall = medians["*"]
    labels = pd.Series(np.asarray(states, dtype=object))
    return (
        labels.map(lambda s: medians.get(str(s), overall) if s is not None else overall)
        .astype(np.float64)
        .fillna(overall)
        .to_numpy()
    )


def improvement(model_mae: float, baseline_mae: float) -> float:
    """How much lower the model's MAE is than the baseline's (0.4 = 40% lower)."""
    if not (math.isfinite(model_mae) and math.isfinite(baseline_mae)) or baseline_mae <= 0:
        raise EvaluationError(f"cannot compare MAE {model_mae} with baseline MAE {baseline_mae}")
    return 1.0 - model_mae / baseline_mae
