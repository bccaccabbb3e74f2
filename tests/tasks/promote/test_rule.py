"""The promotion rule: a pure function with readable reasons, and no promotion on bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.promote.rule import PromotionRuleError, decide

positive = st.floats(min_value=1.0, max_value=1e7, allow_nan=False, allow_infinity=False)


def test_no_champion_promotes_the_first_model() -> None:
    promote, reasons = decide({"mae": 61_200, "rmse": 90_000}, None)
    assert promote
    assert reasons[0].startswith("no champion: first model")


def test_clear_improvement_promotes_with_both_numbers_in_the_reason() -> None:
    promote, reasons = decide(
        {"mae": 61_200, "rmse": 99_000}, {"mae": 70_100, "rmse": 100_200}, champion_version="2"
    )
    assert promote
    assert reasons == [
        "MAE 61,200 vs champion v2 70,100: 12.7% better (>= 3%); RMSE 1.2% better "
        "(99,000 vs 100,200)"
    ]


def test_small_improvement_keeps_the_champion() -> None:
    promote, reasons = decide(
        {"mae": 69_300, "rmse": 100_000}, {"mae": 70_100, "rmse": 100_000}, champion_version="2"
    )
    assert not promote
    assert reasons[0] == "MAE improved only 1.1% (< 3%): keep champion v2"


def test_mae_better_but_rmse_much_worse_keeps_the_champion() -> None:
    promote, reasons = decide(
        {"mae": 60_000, "rmse": 110_000}, {"mae": 70_000, "rmse": 100_000}, champion_version="7"
    )
    assert not promote
    assert any(r.startswith("RMSE 10.0% worse (> 1% allowed)") for r in reasons)


def test_thresholds_come_from_the_arguments() -> None:
    challenger, champion = {"mae": 98, "rmse": 100}, {"mae": 100, "rmse": 100}
    assert not decide(challenger, champion)[0]
    assert decide(challenger, champion, min_mae_improvement=0.01)[0]


@given(mae=positive, rmse=positive)
def test_a_challenger_equal_to_the_champion_is_never_promoted(mae: float, rmse: float) -> None:
    metrics = {"mae": mae, "rmse": rmse}
    promote, reasons = decide(metrics, dict(metrics), champion_version="3")
    assert not promote
    assert "keep champion v3" in reasons[0]


@given(c_mae=positive, c_rmse=positive, p_mae=positive, p_rmse=positive)
def test_the_verdict_follows_the_documented_rule(
    c_mae: float, c_rmse: float, p_mae: float, p_rmse: float
) -> None:
    promote, reasons = decide({"mae": c_mae, "rmse": c_rmse}, {"mae": p_mae, "rmse": p_rmse})
    expected = (p_mae - c_mae) / p_mae >= 0.03 and (c_rmse - p_rmse) / p_rmse <= 0.01
    assert promote == expected
    assert reasons and all(isinstance(r, str) and r for r in reasons)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, None])
@pytest.mark.parametrize("side", ["challenger", "champion"])
def test_broken_metrics_are_an_error_not_a_promotion(bad: float | None, side: str) -> None:
    good = {"mae": 50_000.0, "rmse": 80_000.0}
    broken = {"mae": bad, "rmse": 80_000.0}
    challenger, champion = (broken, good) if side == "challenger" else (good, broken)
    with pytest.raises(PromotionRuleError, match=side):
        decide(challenger, champion)


def test_nan_challenger_is_an_error_even_without_champion() -> None:
    with pytest.raises(PromotionRuleError, match="RMSE is nan"):
        decide({"mae": 1.0, "rmse": math.nan}, None)


def test_missing_metric_is_an_error() -> None:
    with pytest.raises(PromotionRuleError, match="lack 'rmse'"):
        decide({"mae": 1.0}, {"mae": 2.0, "rmse": 2.0})


def test_perfect_champion_is_kept_unless_challenger_also_perfect() -> None:
    assert not decide({"mae": 1.0, "rmse": 1.0}, {"mae": 0.0, "rmse": 0.0})[0]
    assert not decide({"mae": 0.0, "rmse": 0.0}, {"mae": 0.0, "rmse": 0.0})[0]
