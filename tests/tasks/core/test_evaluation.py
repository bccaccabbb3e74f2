"""Holdout metrics and the per-state median baseline: pure functions, edge cases included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.core.evaluation import (
    EvaluationError,
    fit_state_medians,
    improvement,
    predict_state_medians,
    regression_metrics,
)

price = st.floats(min_value=1_000, max_value=50_000_000, allow_nan=False)
pairs = st.lists(st.tuples(price, price), min_size=1, max_size=50)
quick = settings(deadline=None, max_examples=60)


@quick
@given(pairs)
def test_metrics_are_finite_and_consistent(values: list[tuple[float, float]]) -> None:
    truth, pred = np.array(values).T
    metrics = regression_metrics(truth, pred)
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(pred - truth)))
    assert metrics["mae"] <= metrics["rmse"] * (1 + 1e-9)
    assert metrics["rows"] == len(values)
    bands = [k for k in metrics if k.startswith("mae_band_")]
    assert bands  # every row is in some band


@quick
@given(st.lists(price, min_size=1, max_size=30))
def test_perfect_predictions_have_zero_error(truth: list[float]) -> None:
    metrics = regression_metrics(truth, truth)
    assert metrics["mae"] == metrics["rmse"] == metrics["mape"] == 0
    assert metrics["log_mae"] == metrics["mdape"] == 0
    assert metrics.get("r2", 1.0) == 1.0


def test_empty_holdout_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="holdout is empty"):
        regression_metrics([], [])


def test_one_row_has_mae_but_no_r2() -> None:
    metrics = regression_metrics([300_000.0], [250_000.0], ["sold"])
    assert metrics["mae"] == metrics["rmse"] == 50_000
    assert "r2" not in metrics
    assert metrics["mae_status_sold"] == 50_000
    assert metrics["mae_band_200k_500k"] == 50_000
    assert "mae_band_gt_1m" not in metrics  # no rows in that band: left out, never NaN


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_or_infinite_predictions_are_an_error(bad: float) -> None:
    with pytest.raises(EvaluationError, match="predictions holds 1 NaN"):
        regression_metrics([1.0, 2.0], [1.0, bad])


def test_group_metrics_are_named_by_status_and_band() -> None:
    truth = [100_000, 300_000, 700_000, 2_000_000]
    pred = [110_000, 330_000, 770_000, 2_200_000]
    metrics = regression_metrics(truth, pred, ["for_sale", "sold", None, "sold"])
    assert metrics["mae_status_for_sale"] == 10_000
    assert metrics["mae_status_sold"] == pytest.approx((30_000 + 200_000) / 2)
    assert metrics["mae_status_missing"] == 70_000
    assert metrics["mae_band_lt_200k"] == 10_000
    assert metrics["mae_band_500k_1m"] == 70_000
    assert metrics["mae_band_gt_1m"] == 200_000


def test_baseline_predicts_the_state_median_and_the_overall_one_for_unseen_states() -> None:
    medians = fit_state_medians(
        pd.Series(["Texas", "Texas", "Texas", "Ohio", None]),
        pd.Series([100.0, 200.0, 900.0, 50.0, 70.0]),
    )
    assert medians["Texas"] == 200 and medians["Ohio"] == 50
    predicted = predict_state_medians(medians, pd.Series(["Texas", "Atlantis", None, "Ohio"]))
    assert predicted.tolist() == [200.0, medians["*"], medians["*"], 50.0]


@quick
@given(st.lists(st.one_of(st.none(), st.sampled_from(["A", "B", "C"])), min_size=1, max_size=30))
def test_baseline_always_predicts_a_finite_price(states: list[str | None]) -> None:
    prices = pd.Series(np.linspace(1_000, 9_000, len(states)))
    medians = fit_state_medians(pd.Series(states, dtype=object), prices)
    predicted = predict_state_medians(medians, pd.Series([*states, "Z", None], dtype=object))
    assert np.all(np.isfinite(predicted))


def test_baseline_needs_a_price() -> None:
    with pytest.raises(EvaluationError, match="at least one training price"):
        fit_state_medians(pd.Series([], dtype=object), pd.Series([], dtype=float))


def test_improvement_over_baseline() -> None:
    assert improvement(60.0, 100.0) == pytest.approx(0.4)
    with pytest.raises(EvaluationError):
        improvement(math.nan, 100.0)


def test_log_price_mae_and_median_percentage_error() -> None:
    truth = [100_000.0, 200_000.0, 400_000.0]
    pred = [110_000.0, 100_000.0, 400_000.0]
    metrics = regression_metrics(truth, pred)
    assert metrics["log_mae"] == pytest.approx((math.log(1.1) + math.log(2.0)) / 3)
    assert metrics["mdape"] == pytest.approx(0.1)  # errors 10%, 50%, 0%: the median is 10%
    assert metrics["mape"] == pytest.approx(0.2)


def test_log_price_mae_leaves_out_rows_it_cannot_take_the_log_of() -> None:
    metrics = regression_metrics([0.0, 100_000.0], [50_000.0, 200_000.0])
    assert metrics["log_mae"] == pytest.approx(math.log(2.0))
    assert metrics["mdape"] == pytest.approx(1.0)
