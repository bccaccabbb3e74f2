"""The hyperparameter search: one space, the champion first, pruning, a budget sized by rows."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.core import model
from tasks.train.search import (
    MIN_TRIALS,
    SEARCH_SPACE,
    SearchError,
    planned_trials,
    search_hyperparameters,
)
from tasks.train.training_data import inner_validation_mask
from tests.tasks.factories import make_rows


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def rows():
    frame = make_rows(2_000, seed=3).to_pandas(date_as_object=False)
    scores = np.random.default_rng(3).random(len(frame))
    return model.feature_frame(frame), model.target(frame), inner_validation_mask(scores, 0.2)


def test_the_space_is_written_once_and_its_defaults_are_the_models() -> None:
    assert set(SEARCH_SPACE.names) <= set(model.DEFAULT_PARAMS)
    assert SEARCH_SPACE.defaults() == {n: model.DEFAULT_PARAMS[n] for n in SEARCH_SPACE.names}
    described = SEARCH_SPACE.describe()
    for dimension in SEARCH_SPACE.dimensions:
        assert dimension.name in described
        assert dimension.low <= SEARCH_SPACE.defaults()[dimension.name] <= dimension.high


def test_a_point_is_clipped_to_the_space_and_typed_as_the_model_needs() -> None:
    logged = {"learning_rate": "0.5", "max_leaf_nodes": "31.0", "min_samples_leaf": "5",
              "l2_regularization": "0.1", "max_features": "0.9", "unrelated": "x"}  # fmt: skip
    point = SEARCH_SPACE.point(logged)
    assert point == {"learning_rate": 0.3, "max_leaf_nodes": 31, "min_samples_leaf": 10,
                     "l2_regularization": 0.1, "max_features": 0.9}  # fmt: skip
    assert isinstance(point["max_leaf_nodes"], int)
    assert SEARCH_SPACE.point({"learning_rate": 0.1}) is None  # incomplete: not a start


def test_the_budget_follows_the_rows() -> None:
    assert planned_trials(150_000, 1_500_000, 20) == 10
    assert planned_trials(30_000, 1_500_000, 20) == 20
    assert planned_trials(10_000_000, 1_500_000, 20) == MIN_TRIALS
    assert planned_trials(1_000, 1_500_000, 1) == 1


def test_the_search_starts_from_the_champion_then_the_defaults(rows, monkeypatch) -> None:
    monkeypatch.setitem(model.DEFAULT_PARAMS, "max_iter", 60)  # small trees: a quick test
    monkeypatch.setattr("tasks.train.search.STEP_ITERATIONS", 20)
    features, prices, validation = rows
    champion = {**SEARCH_SPACE.defaults(), "learning_rate": 0.2, "max_leaf_nodes": 31}
    found = search_hyperparameters(
        features, prices, validation, seed=1, budget_seconds=600, max_trials=3,
        max_rows=10_000, row_budget=10**9, min_rows=100,
        start_from=[("champion", champion)],
    )  # fmt: skip
    assert found.started_from == ["champion", "defaults"]
    assert found.trials == found.planned_trials == 3
    assert found.best_validation_mae > 0
    assert set(found.params) == set(SEARCH_SPACE.names)


def test_too_few_rows_is_a_clear_error(rows) -> None:
    features, prices, validation = rows
    with pytest.raises(SearchError, match="too few rows"):
        search_hyperparameters(
            features, prices, validation, seed=1, budget_seconds=5, max_trials=2,
            max_rows=50, row_budget=1, min_rows=100,
        )  # fmt: skip


def test_both_sides_of_the_search_are_capped_by_a_seeded_sample(rows, monkeypatch) -> None:
    monkeypatch.setitem(model.DEFAULT_PARAMS, "max_iter", 40)
    features, prices, validation = rows
    kwargs = dict(seed=1, budget_seconds=600, max_trials=1, row_budget=1, min_rows=100)
    capped = search_hyperparameters(features, prices, validation, max_rows=300, **kwargs)
    assert (capped.fit_rows, capped.validation_rows) == (300, 300)
    whole = search_hyperparameters(features, prices, validation, max_rows=10_000, **kwargs)
    assert (whole.fit_rows, whole.validation_rows) == ((~validation).sum(), validation.sum())
    again = search_hyperparameters(features, prices, validation, max_rows=300, **kwargs)
    assert again.best_validation_mae == capped.best_validation_mae  # the same sample
