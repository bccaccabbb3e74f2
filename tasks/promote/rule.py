"""The promotion rule: does the challenger replace the champion? A pure function.

Both models are evaluated on the same holdout rows before this is called. The rule:

- no champion: promote (the first model);
- otherwise promote only when MAE improves by at least ``min_mae_improvement`` (relative)
  AND RMSE is not worse by more than ``max_rmse_regression`` (relative).

Every verdict comes with reasons a person can read. Metrics that are missing, NaN or not
positive raise :class:`PromotionRuleError`: a broken evaluation never promotes anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

REQUIRED = ("mae", "rmse")


class PromotionRuleError(ValueError):
    """The metrics given to the rule cannot be compared."""


def _checked(metrics: Mapping[str, float], who: str) -> tuple[float, float]:
    values = []
    for key in REQUIRED:
        if key not in metrics or metrics[key] is None:
            raise PromotionRuleError(f"{who} metrics lack {key!r}: cannot decide a promotion")
        value = float(metrics[key])
        if not math.isfinite(value) or value < 0:
            raise PromotionRuleError(
                f"{who} {key.upper()} is {value}: cannot decide a promotion on a broken "
                "evaluation (check the holdout rows and the model's predictions)"
            )
        values.append(value)
    return values[0], values[1]


def _relative_change(reference: float, value: float) -> float:
    """How much lower ``value`` is than ``reference`` (negative: higher); 0 vs 0 is no change."""
    if reference == 0:
        return 0.0 if value == 0 else -math.inf
    return (reference - value) / reference


def _money(value: float) -> str:
    return f"{value:,.0f}"


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    champion_version: str | None = None,
    min_mae_improvement: float = 0.03,
    max_rmse_regression: float = 0.01,
) -> tuple[bool, list[str]]:
    """(promote, reasons) for ``challenger`` against ``champion`` (None: there is none)."""
    if min_mae_improvement < 0 or max_rmse_regression < 0:
        raise PromotionRuleError("the promotion thresholds must not be negative")
    c_mae, c_rmse = _checked(challenger, "challenger")
    if champion is None:
        return True, [f"no champion: first model (MAE {_money(c_mae)}, RMSE {_money(c_rmse)})"]
    p_mae, p_rmse = _checked(champion, "champion")
    label = f"champion v{champion_version}" if champion_version else "champion"
    mae_gain = _relative_change(p_mae, c_mae)
    rmse_change = -_relative_change(p_rmse, c_rmse)
    mae_text = f"MAE {_money(c_mae)} vs {label} {_money(p_mae)}"
    rmse_text = (
        f"RMSE {abs(rmse_change):.1%} {'worse' if rmse_change > 0 else 'better'}"
        f" ({_money(c_rmse)} vs {_money(p_rmse)})"
    )
    mae_ok = mae_gain >= min_mae_improvement
    rmse_ok = rmse_change <= max_rmse_regression
    if mae_ok and rmse_ok:
        return True, [
            f"{mae_text}: {mae_gain:.1%} better (>= {min_mae_improvement:.0%}); {rmse_text}"
        ]
    reasons = []
    if not mae_ok:
        if mae_gain >= 0:
            reasons.append(
                f"MAE improved only {mae_gain:.1%} (< {min_mae_improvement:.0%}): keep {label}"
            )
        else:
            reasons.append(f"MAE {-mae_gain:.1%} worse: keep {label}")
    if not rmse_ok:
        reasons.append(
            f"RMSE {rmse_change:.1%} worse (> {max_rmse_regression:.0%} allowed): keep {label}"
        )
    reasons.append(f"{mae_text}; {rmse_text}")
    return False, reasons
