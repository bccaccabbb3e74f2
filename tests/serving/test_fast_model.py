"""The compiled fast path gives the registered model's own prices (serving/fast_model.py).

The reference is the model as MLflow serves it: logged with ``mlflow.sklearn.log_model`` exactly
as ``tasks.train`` logs it (skops trusted types, signature, input example), registered, loaded
back with ``mlflow.pyfunc.load_model`` and asked ``predict(feature_frame(rows))``. The fast path
compiles what ``mlflow.sklearn.load_model`` returns for the same version, as the service does,
and gets plain-Python records.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)
from threadpoolctl import threadpool_limits

from serving.fast_model import (
    SMALL_BATCH_ROWS,
    FastModel,
    UnsupportedPipelineError,
    compile_model,
    records_to_columns,
)
from tasks.core import model
from tests.serving.fast_model_support import (
    adversarial_frame,
    fit_model,
    max_relative_difference,
    records,
    training_frame,
    without_refused,
)

RELATIVE_TOLERANCE = 1e-9
MODEL_NAME = "realtor-price-fast-path-test"


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """Fits and predictions on one OpenMP thread: the same numbers, and on a busy machine no
    spinning threads (which made a 0.2 s fit take 10 s)."""
    with threadpool_limits(limits=1):
        yield


@dataclass(frozen=True)
class Registered:
    """One registered version: the pyfunc (reference), the sklearn object, the compiled path."""

    pyfunc: Any
    native: TransformedTargetRegressor
    fast: FastModel


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    from tasks.train.training_log import _signature  # the signature train logs

    workdir = tmp_path_factory.mktemp("fast-model-mlflow")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        fitted = fit_model()
        example = model.feature_frame(training_frame()).head(5)
        experiment = mlflow.create_experiment(
            "fast-model", artifact_location=(workdir / "artifacts").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.sklearn.log_model(
                fitted,
                name="model",
                signature=_signature(example, fitted.predict(example)),
                input_example=example,
                skops_trusted_types=list(model.SKOPS_TRUSTED_TYPES),
                pip_requirements=model.pip_requirements(),
            )
        version = mlflow.register_model(info.model_uri, MODEL_NAME).version
        uri_of_version = f"models:/{MODEL_NAME}/{version}"
        native = mlflow.sklearn.load_model(uri_of_version)
        yield Registered(
            pyfunc=mlflow.pyfunc.load_model(uri_of_version),
            native=native,
            fast=compile_model(native),
        )
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def _reference(registered: Registered, frame: pd.DataFrame) -> np.ndarray:
    """The registered model's own prices, as MLflow serves them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log1p of negatives, as in serving
        return np.asarray(registered.pyfunc.predict(model.feature_frame(frame)), dtype=np.float64)


def test_fast_path_prices_equal_the_registered_models_own_predict(registered: Registered) -> None:
    frame = without_refused(adversarial_frame(4000, seed=11))
    expected = _reference(registered, frame)
    got = registered.fast.predict(records_to_columns(records(frame)))
    difference = max_relative_difference(got, expected)
    print(f"{len(frame)} adversarial rows: max relative difference {difference:.3g}")
    assert difference <= RELATIVE_TOLERANCE
    # every kind of edge value was there: nulls in every column, unseen and infrequent values
    for name in model.FEATURES:
        assert frame[name].isna().any(), name
    assert {"Atlantis", "Guam", None} <= set(frame["state"])
    assert {"foreclosure", "pending", None} <= set(frame["status"])


def test_single_rows_take_the_same_path_to_the_same_prices(registered: Registered) -> None:
    """Rows one by one (the vectorised tree walk) and in one batch (scikit-learn's loop)."""
    frame = without_refused(adversarial_frame(300, seed=12))
    rows = records(frame)
    expected = _reference(registered, frame)
    one_by_one = np.concatenate([registered.fast.predict(records_to_columns([r])) for r in rows])
    batched = registered.fast.predict(records_to_columns(rows))
    assert len(rows) > SMALL_BATCH_ROWS
    assert max_relative_difference(one_by_one, expected) <= RELATIVE_TOLERANCE
    assert max_relative_difference(batched, expected) <= RELATIVE_TOLERANCE


def test_transform_is_the_preprocessors_own_matrix(registered: Registered) -> None:
    frame = without_refused(adversarial_frame(2000, seed=13))
    preprocessor = registered.native.regressor_.named_steps["features"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = preprocessor.transform(model.feature_frame(frame))
    got = registered.fast.transform(records_to_columns(records(frame)))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_feature_groups_partition_the_matrix_by_original_feature(registered: Registered) -> None:
    fast = registered.fast
    assert list(fast.feature_groups) == list(model.FEATURES)
    columns = np.sort(np.concatenate(list(fast.feature_groups.values())))
    np.testing.assert_array_equal(columns, np.arange(fast.width))
    for feature, index in fast.feature_groups.items():
        assert {model.original_feature_of(fast.feature_names[i]) for i in index} == {feature}
    assert fast.regressor is registered.native.regressor_.named_steps["regressor"]


def test_values_the_model_refuses_are_refused_alike(registered: Registered) -> None:
    """log1p(-1) = -inf: scikit-learn's imputer refuses it with ValueError, and so do we."""
    frame = adversarial_frame(3, seed=14)
    frame["acre_lot"] = frame["acre_lot"].astype(object)
    frame.loc[1, "acre_lot"] = -1.0
    with pytest.raises(ValueError, match="infinity"):
        _reference(registered, frame)
    with pytest.raises(ValueError, match="infinity"):
        registered.fast.predict(records_to_columns(records(frame)))


def test_concurrent_calls_give_the_same_prices(registered: Registered) -> None:
    frame = without_refused(adversarial_frame(64, seed=15))
    rows = records(frame)
    expected = registered.fast.predict(records_to_columns(rows))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda i: registered.fast.predict(records_to_columns([rows[i]]))[0], range(64))
        )
    np.testing.assert_array_equal(np.array(results), expected)


_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["Texas", "California", "Guam", "sold", "for_sale", "pending", "Houston"]),
    st.text(max_size=6),
)
_NUMBER = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != -1.0),
    st.sampled_from([0.0, 1.0, 3.0, 1e-300, 1e300]),
)
_DATE = st.one_of(st.none(), st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
_RECORD = st.fixed_dictionaries(
    {
        name: (
            _TEXT
            if name in model.TEXT_FEATURES
            else _DATE
            if name in model.DATE_FEATURES
            else _NUMBER
        )
        for name in model.FEATURES
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_RECORD, min_size=1, max_size=24))
def test_any_records_get_the_models_prices(registered: Registered, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows, columns=list(model.FEATURES))
    expected = _reference(registered, frame)
    got = registered.fast.predict(records_to_columns(rows))
    assert max_relative_difference(got, expected) <= RELATIVE_TOLERANCE


def test_records_to_columns_fills_absent_features_with_null() -> None:
    columns = records_to_columns([{"state": "Texas", "bed": 3.0}, {}])
    assert list(columns) == list(model.FEATURES)
    assert columns["state"] == ["Texas", None]
    assert columns["bed"] == [3.0, None]
    assert columns["prev_sold_date"] == [None, None]


def test_columns_must_be_complete_and_of_one_length(registered: Registered) -> None:
    columns = records_to_columns([{"state": "Texas"}])
    del columns["city"]
    with pytest.raises(KeyError, match="city"):
        registered.fast.predict(columns)
    columns = records_to_columns([{"state": "Texas"}, {"state": "Ohio"}])
    columns["bed"] = [3.0]
    with pytest.raises(ValueError, match="lengths"):
        registered.fast.predict(columns)


# ------------------------------------------------------------------- the compiler, step by step


def _small_frame(n: int = 400, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    frame = training_frame(seed).head(n)
    return model.feature_frame(frame), np.log1p(model.target(frame))


def _pipeline(branches: list[tuple[str, Any, list[str]]]) -> Pipeline:
    regressor = HistGradientBoostingRegressor(max_iter=10, random_state=0)
    features = ColumnTransformer(branches, sparse_threshold=0.0)
    return Pipeline([("features", features), ("regressor", regressor)])


@pytest.mark.parametrize(
    "branches",
    [
        pytest.param(
            [
                ("bed", SimpleImputer(strategy="mean"), ["bed"]),  # no indicator
                (
                    "bath",
                    SimpleImputer(strategy="constant", fill_value=-7.0, add_indicator=True),
                    ["bath"],
                ),
            ],
            id="imputer-strategies",
        ),
        pytest.param(
            [
                (
                    "state",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="most_frequent")),
                            (
                                "onehot",
                                OneHotEncoder(
                                    handle_unknown="infrequent_if_exist",
                                    max_categories=5,
                                    sparse_output=False,
                                ),
                            ),
                        ]
                    ),
                    ["state", "status"],
                ),
                ("city", OneHotEncoder(handle_unknown="ignore", min_frequency=0.05), ["city"]),
            ],
            id="onehot-infrequent-if-exist-two-columns-sparse",
        ),
        pytest.param(
            [
                ("zip", TargetEncoder(target_type="continuous", smooth=5.0), ["zip_code", "city"]),
                ("size", FunctionTransformer(np.sqrt), ["house_size"]),
                ("bed", "passthrough", ["bed", "bath"]),
            ],
            id="target-two-columns-sqrt-passthrough",
        ),
    ],
)
def test_other_fitted_steps_compile_to_the_same_matrix_and_prices(branches: list) -> None:
    x, y = _small_frame()
    fitted = _pipeline(branches).fit(x, y)
    fast = compile_model(fitted)
    test = without_refused(adversarial_frame(500, seed=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_matrix = fitted.named_steps["features"].transform(model.feature_frame(test))
        expected = fitted.predict(model.feature_frame(test))
    columns = records_to_columns(records(test))
    np.testing.assert_array_equal(fast.transform(columns), np.asarray(expected_matrix))
    assert max_relative_difference(fast.predict(columns), expected) <= RELATIVE_TOLERANCE


def test_a_column_empty_at_fit_is_dropped_as_the_imputer_does() -> None:
    x, y = _small_frame()
    x = x.assign(bed=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Skipping features without any observed"
        pipeline = _pipeline([("bed", SimpleImputer(add_indicator=True), ["bed", "bath"])])
        fitted = pipeline.fit(x, y)
    fast = compile_model(fitted)
    test = x.head(50)
    columns = records_to_columns(records(test))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Skipping features without any observed"
        expected = fitted.named_steps["features"].transform(test)
    np.testing.assert_array_equal(fast.transform(columns), expected)


def test_onehot_handle_unknown_error_raises_like_scikit_learn() -> None:
    x, y = _small_frame()
    onehot = OneHotEncoder(handle_unknown="error", sparse_output=False)
    fitted = _pipeline([("status", onehot, ["status"])]).fit(x.fillna({"status": "none"}), y)
    fast = compile_model(fitted)
    with pytest.raises(ValueError, match="unknown categories"):
        fast.predict(records_to_columns([{"status": "foreclosure"}]))


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        pytest.param(
            lambda: ("state", OrdinalEncoder(), ["state"]),
            r"features/state: step type sklearn\.preprocessing\._encoders\.OrdinalEncoder",
            id="ordinal-encoder",
        ),
        pytest.param(
            lambda: ("bed", FunctionTransformer(lambda v: v * 2), ["bed"]),
            r"features/bed: FunctionTransformer\(func='<lambda>'\)",
            id="custom-function",
        ),
        pytest.param(
            lambda: ("bed", StandardScaler(), ["bed"]),
            r"features/bed: step type .*StandardScaler",
            id="scaler",
        ),
        pytest.param(
            lambda: ("state", OneHotEncoder(drop="first", sparse_output=False), ["state"]),
            r"features/state: OneHotEncoder\(drop='first'\)",
            id="onehot-drop",
        ),
    ],
)
def test_unsupported_steps_are_refused_by_name(replace: Any, message: str) -> None:
    x, y = _small_frame()
    x = x.fillna({"state": "none"})
    fitted = _pipeline([("house_size", SimpleImputer(), ["house_size"]), replace()]).fit(x, y)
    with pytest.raises(UnsupportedPipelineError, match=message):
        compile_model(fitted)


def test_an_unsupported_final_estimator_or_target_transform_is_refused() -> None:
    x, y = _small_frame()
    ridge = Pipeline(
        [("features", ColumnTransformer([("bed", SimpleImputer(), ["bed"])])), ("model", Ridge())]
    ).fit(x, y)
    with pytest.raises(UnsupportedPipelineError, match=r"model: final estimator .*Ridge"):
        compile_model(ridge)
    scaled = TransformedTargetRegressor(
        regressor=_pipeline([("bed", SimpleImputer(), ["bed"])]), transformer=StandardScaler()
    ).fit(x, y)
    with pytest.raises(UnsupportedPipelineError, match="target: transformer StandardScaler"):
        compile_model(scaled)
    poisson = _pipeline([("bed", SimpleImputer(), ["bed"])])
    poisson.set_params(regressor__loss="poisson").fit(x, np.exp(y / 5))
    with pytest.raises(UnsupportedPipelineError, match="loss='poisson'"):
        compile_model(poisson)


def test_dates_outside_pandas_range_are_null_like_feature_frame(registered: Registered) -> None:
    """feature_frame coerces dates pandas cannot hold (ns precision) to NaT: so do we."""
    dates = [dt.date(1677, 9, 21), dt.date(1677, 9, 22), dt.date(2262, 4, 11), dt.date(2262, 4, 12)]
    frame = pd.DataFrame({name: [None] * 4 for name in model.FEATURES})
    frame["prev_sold_date"] = pd.Series(dates, dtype=object)
    expected = model.feature_frame(frame)["prev_sold_date"].isna().tolist()
    assert expected == [True, False, False, True]
    fitted, fast = registered.native, registered.fast
    got = fast.transform(records_to_columns(records(frame)))
    reference = fitted.regressor_.named_steps["features"].transform(model.feature_frame(frame))
    np.testing.assert_array_equal(got, reference)
    assert not any(math.isnan(v) for v in got.ravel())


def test_a_missing_private_attribute_is_refused_not_guessed() -> None:
    """The compiler reads scikit-learn internals; if a release renames one, it says so."""
    fitted = copy.deepcopy(fit_model())
    imputer = fitted.regressor_.named_steps["features"].named_transformers_["bed"]
    del imputer._fit_dtype
    with pytest.raises(UnsupportedPipelineError, match=r"fitted attribute is missing.*_fit_dtype"):
        compile_model(fitted)
