"""SHAP explanations per original feature add up to the served price (serving/explain.py).

Space: log1p(price). base_value + sum(contributions) == log_price == log1p(price), to 1e-6.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from serving.explain import SPACE, Explainer, Explanation
from serving.fast_model import FastModel, compile_model, records_to_columns
from tasks.core import model
from tests.serving.fast_model_support import (
    adversarial_frame,
    fit_model,
    max_relative_difference,
    records,
    without_refused,
)

ADDITIVITY = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """Fits and predictions on one OpenMP thread: the same numbers, and on a busy machine no
    spinning threads (which made a 0.2 s fit take 10 s)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fast() -> FastModel:
    return compile_model(fit_model())


@pytest.fixture(scope="module")
def explainer(fast: FastModel) -> Explainer:
    return Explainer.build(fast)


def _check(explanation: Explanation) -> None:
    assert list(explanation.contributions) == list(model.FEATURES)
    total = explanation.base_value + sum(explanation.contributions.values())
    assert abs(total - explanation.log_price) <= ADDITIVITY
    assert abs(np.log1p(explanation.price) - explanation.log_price) <= ADDITIVITY
    assert explanation.space == SPACE == "log1p(price)"


def test_single_rows_add_up_to_their_price(fast: FastModel, explainer: Explainer) -> None:
    rows = records(without_refused(adversarial_frame(40, seed=21)))
    for row in rows:
        (explanation,) = explainer.explain(records_to_columns([row]))
        _check(explanation)
        assert explanation.price == fast.predict(records_to_columns([row]))[0]


def test_a_batch_adds_up_and_prices_match_the_model(fast: FastModel, explainer: Explainer) -> None:
    frame = without_refused(adversarial_frame(500, seed=22))
    explanations = explainer.explain(records_to_columns(records(frame)))
    assert len(explanations) == len(frame)
    for explanation in explanations:
        _check(explanation)
    fitted = fit_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = fitted.predict(model.feature_frame(frame))
    prices = np.array([e.price for e in explanations])
    assert max_relative_difference(prices, expected) <= 1e-9


def test_contributions_are_the_sums_of_each_features_columns(
    fast: FastModel, explainer: Explainer
) -> None:
    """Grouping by original feature: the one-hot levels and missing indicators it became."""
    import shap

    rows = records(without_refused(adversarial_frame(20, seed=23)))
    matrix = fast.transform(records_to_columns(rows))
    values = shap.TreeExplainer(fast.regressor).shap_values(matrix, check_additivity=False)
    names = [model.original_feature_of(n) for n in fast.feature_names]
    for i, explanation in enumerate(explainer.explain(records_to_columns(rows))):
        for feature in model.FEATURES:
            columns = [j for j, name in enumerate(names) if name == feature]
            assert explanation.contributions[feature] == pytest.approx(
                float(values[i, columns].sum()), abs=1e-12
            )


def test_an_unseen_state_changes_only_what_it_touches(explainer: Explainer) -> None:
    """A state never seen in training is explained too (all its one-hot columns are zero)."""
    row = {"status": "for_sale", "state": "Atlantis", "city": "Nowhere", "bed": 3.0}
    (explanation,) = explainer.explain(records_to_columns([row]))
    _check(explanation)
    assert explanation.base_value == explainer.base_value


def test_concurrent_explanations_are_consistent(explainer: Explainer) -> None:
    rows = records(without_refused(adversarial_frame(16, seed=24)))
    expected = [explainer.explain(records_to_columns([r]))[0] for r in rows]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda r: explainer.explain(records_to_columns([r]))[0], rows))
    assert got == expected


def test_as_dict_names_the_space(explainer: Explainer) -> None:
    (explanation,) = explainer.explain(records_to_columns([{"state": "Texas"}]))
    data = explanation.as_dict()
    assert set(data) == {"base_value", "contributions", "log_price", "price", "space"}
    assert data["space"] == "log1p(price)"
