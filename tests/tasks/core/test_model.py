"""The scikit-learn pipeline: predicts dollars on any canonical rows, saves with skops."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.core import evaluation, model
from tasks.core.holdout import split_holdout
from tests.tasks.factories import make_rows

SEED = 7
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # shap's colormaps


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """HistGradientBoosting on an oversubscribed machine is many times slower with threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = make_rows(6_000, seed=SEED).to_pandas(date_as_object=False)
    return split_holdout(frame, 0.2)


@pytest.fixture(scope="module")
def fitted(one_thread, data: tuple[pd.DataFrame, pd.DataFrame]):
    train, _ = data
    params = {"max_iter": 100}
    return model.build_model(params, SEED).fit(model.feature_frame(train), model.target(train))


def test_beats_the_per_state_median_baseline_by_a_wide_margin(fitted, data) -> None:
    train, hold = data
    metrics = evaluation.regression_metrics(
        model.target(hold), fitted.predict(model.feature_frame(hold)), hold["status"]
    )
    medians = evaluation.fit_state_medians(train["state"], model.target(train))
    baseline = evaluation.regression_metrics(
        model.target(hold), evaluation.predict_state_medians(medians, hold["state"])
    )
    assert metrics["mae"] < 0.8 * baseline["mae"], (metrics["mae"], baseline["mae"])


def test_predicts_dollars_for_unseen_states_nulls_and_a_single_row(fitted) -> None:
    rows = make_rows(4, seed=99).to_pandas()
    rows.loc[0, "state"] = "Atlantis"  # never seen in training
    rows.loc[1, ["status", "city", "zip_code", "state"]] = None
    rows.loc[2, ["bed", "bath", "acre_lot", "house_size", "prev_sold_date"]] = None
    predicted = fitted.predict(model.feature_frame(rows))
    assert np.all(np.isfinite(predicted)) and np.all(predicted > 0)
    one = fitted.predict(model.feature_frame(rows.iloc[[3]]))
    assert one.shape == (1,) and one[0] > 1_000  # dollars, not log dollars


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_trains_when_a_column_is_entirely_null() -> None:
    frame = make_rows(400, seed=3).to_pandas()
    frame["house_size"] = np.nan
    frame["prev_sold_date"] = None
    fitted = model.build_model({"max_iter": 20}, SEED).fit(
        model.feature_frame(frame), model.target(frame)
    )
    predicted = fitted.predict(model.feature_frame(frame.head(5)))
    assert np.all(np.isfinite(predicted))


def test_missing_input_column_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="house_size"):
        model.feature_frame(make_rows(3, seed=1).to_pandas().drop(columns=["house_size"]))


row = st.fixed_dictionaries(
    {
        "status": st.one_of(
            st.none(), st.sampled_from(["for_sale", "sold", "ready_to_build", "x"])
        ),
        "bed": st.one_of(st.none(), st.floats(0, 60)),
        "bath": st.one_of(st.none(), st.floats(0, 60)),
        "acre_lot": st.one_of(st.none(), st.floats(0, 100_000)),
        "city": st.one_of(st.none(), st.text(max_size=12)),
        "state": st.one_of(st.none(), st.text(max_size=12), st.just("Texas")),
        "zip_code": st.one_of(st.none(), st.from_regex(r"[0-9]{5}", fullmatch=True)),
        "house_size": st.one_of(st.none(), st.floats(1, 1e7)),
        "prev_sold_date": st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2030, 1, 1))),
    }
)


@settings(deadline=None, max_examples=30)
@given(st.lists(row, min_size=1, max_size=5))
def test_any_canonical_rows_get_a_finite_positive_price(fitted, rows: list[dict]) -> None:
    predicted = fitted.predict(model.feature_frame(pd.DataFrame(rows)))
    assert np.all(np.isfinite(predicted)) and np.all(predicted > 0)


def test_shap_importance_covers_every_original_feature(fitted, data) -> None:
    train, _ = data
    importance, rows = model.shap_importance(fitted, model.feature_frame(train.head(200)))
    assert rows == 200
    assert set(importance) == set(model.FEATURES)
    assert all(v >= 0 for v in importance.values())
    assert next(iter(importance)) == "house_size"  # the factory prices by size first


def test_skops_trusts_exactly_the_listed_types(fitted, tmp_path: Path) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    path = tmp_path / "model"
    trusted = list(model.SKOPS_TRUSTED_TYPES)
    pins = model.pip_requirements()  # inferring them would load the model in a subprocess
    mlflow.sklearn.save_model(fitted, str(path), skops_trusted_types=trusted, pip_requirements=pins)
    loaded = mlflow.pyfunc.load_model(str(path))
    rows = model.feature_frame(make_rows(5, seed=4).to_pandas())
    assert np.allclose(loaded.predict(rows), fitted.predict(rows))
    for needed in trusted:  # every listed type is needed: none is there "just in case"
        with pytest.raises(MlflowException, match="untrusted types"):
            mlflow.sklearn.save_model(
                fitted,
                str(tmp_path / needed),
                skops_trusted_types=[t for t in trusted if t != needed],
                pip_requirements=pins,
            )
