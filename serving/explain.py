"""SHAP explanations of single predictions, per original feature, from a compiled model.

Contract (what the serving app relies on; keep stable):

- ``Explainer.build(fast_model)``: once per model version, at load time (about 0.2 s for a
  few hundred trees): a ``shap.TreeExplainer`` on the fitted ``HistGradientBoostingRegressor``
  (``fast_model.regressor``), path-dependent (exact Tree SHAP, no background data needed), and
  warmed with one explanation so the first request pays nothing extra.
- ``Explainer.explain(columns) -> list[Explanation]``: one per row of ``columns`` (the same
  input as :meth:`serving.fast_model.FastModel.predict`). Each has ``base_value`` (the trees'
  expected output), ``contributions`` (original feature -> its SHAP value: the sum over the
  matrix columns the feature became, e.g. every one-hot level of ``state`` and the missing
  indicator of ``bed``), ``log_price`` and ``price`` (dollars, the same number ``/predict``
  gives).
- The space they add up in is **log1p(price)** (``SPACE``): ``base_value + sum(contributions)
  == log_price == log1p(price)`` to within 1e-6 (checked on every call; a larger gap raises
  :class:`ExplanationError`, since it would mean the explanation is not of this prediction).
  A contribution of +0.10 multiplies the price by about e^0.10 = 1.105 (+10.5%).
- Thread-safe for concurrent calls (nothing is mutated after ``build``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.fast_model import FastModel

__all__ = ["ADDITIVITY_TOLERANCE", "SPACE", "Explainer", "Explanation", "ExplanationError"]

#: The space in which base_value + sum(contributions) == log_price.
SPACE = "log1p(price)"

#: Largest accepted |base_value + sum(contributions) - log_price|.
ADDITIVITY_TOLERANCE = 1e-6


class ExplanationError(RuntimeError):
    """The SHAP values do not add up to the model's own prediction."""


@dataclass(frozen=True)
class Explanation:
    """Why one row got its price; adds up in log1p(price) space (see the module docstring)."""

    base_value: float
    contributions: dict[str, float]
    log_price: float
    price: float
    space: str = SPACE

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
            "log_price": self.log_price,
            "price": self.price,
            "space": self.space,
        }


class Explainer:
    """Tree SHAP over a :class:`FastModel`'s trees, grouped by original feature."""

    def __init__(self, fast_model: FastModel, tree_explainer: Any) -> None:
        self.fast_model = fast_model
        self._tree_explainer = tree_explainer
        self.base_value = float(np.asarray(tree_explainer.expected_value).ravel()[0])
        self._groups = tuple(fast_model.feature_groups.items())

    @classmethod
    def build(cls, fast_model: FastModel, *, warm: bool = True) -> Explainer:
        """The explainer of one model version (build it when the version is loaded)."""
        import shap  # heavy import, only where explanations are built

        explainer = cls(fast_model, shap.TreeExplainer(fast_model.regressor))
        if warm:
            explainer.explain_matrix(np.zeros((1, fast_model.width)))
        return explainer

    def explain(self, columns: Mapping[str, Sequence[Any]]) -> list[Explanation]:
        """One explanation per row of ``columns``."""
        return self.explain_matrix(self.fast_model.transform(columns))

    def explain_matrix(self, matrix: np.ndarray) -> list[Explanation]:
        """One explanation per row of an already preprocessed matrix."""
        values = np.asarray(
            self._tree_explainer.shap_values(matrix, check_additivity=False), dtype=np.float64
        ).reshape(matrix.shape[0], matrix.shape[1])
        log_prices = self.fast_model.predict_log(matrix)
        prices = self.fast_model.to_price(log_prices)
        gap = np.abs(self.base_value + values.sum(axis=1) - log_prices)
        if gap.size and float(gap.max()) > ADDITIVITY_TOLERANCE:
            raise ExplanationError(
                f"SHAP values miss the prediction by {float(gap.max()):.3g} in {SPACE} space"
            )
        grouped = {name: values[:, index].sum(axis=1) for name, index in self._groups}
        return [
            Explanation(
                base_value=self.base_value,
                contributions={name: float(sums[row]) for name, sums in grouped.items()},
                log_price=float(log_prices[row]),
                price=float(prices[row]),
            )
            for row in range(matrix.shape[0])
        ]
