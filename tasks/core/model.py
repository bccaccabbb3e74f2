"""The price model: a scikit-learn pipeline from canonical rows to a price in dollars.

Only scikit-learn and numpy building blocks (no custom classes), so the saved model loads
anywhere with scikit-learn and MLflow, and skops can trust exactly the types listed in
:data:`SKOPS_TRUSTED_TYPES`:

- numbers (bed, bath, acre_lot, house_size): log1p for the two skewed ones (acre_lot,
  house_size), median imputation with missing indicators;
- status (a handful of values): constant "missing" for nulls, one-hot, unknown values
  ignored;
- state, city and zip code (dozens to thousands of values): constant "missing" for nulls,
  then a cross-fitted ``TargetEncoder``, one column each: the place's mean log price (unknown
  values get the overall mean, so a state never seen in training still gets a prediction).
  State was one-hot until issue 11: its 54 columns were 54 of the model's 69, and the trees'
  histograms cost time per column (the full-scale fit took 2.5x as long for a holdout MAE
  0.2-0.6% lower, bench/CHANGELOG.md);
- prev_sold_date: the year (as a number, with a missing indicator). For ``sold`` rows it is
  the sale date itself; it carries time, not price, so it is kept, but nothing derived from
  the price is (no price per square foot, no price band);
- a ``HistGradientBoostingRegressor`` on log1p(price), wrapped in a
  ``TransformedTargetRegressor`` so predictions are dollars.

Identifiers (brokered_by, street) are not features: the holdout is split by property, and a
model that memorises streets would not generalise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tasks.core.schema import TARGET

if TYPE_CHECKING:  # scikit-learn takes a second or two to import: only where a model is built
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.pipeline import Pipeline

NUMERIC_FEATURES: tuple[str, ...] = ("bed", "bath")
LOG_FEATURES: tuple[str, ...] = ("acre_lot", "house_size")
ONE_HOT_FEATURES: tuple[str, ...] = ("status",)
TARGET_ENCODED_FEATURES: tuple[str, ...] = ("state", "city", "zip_code")
DATE_FEATURES: tuple[str, ...] = ("prev_sold_date",)

#: The columns the model reads, in the order of its signature.
FEATURES: tuple[str, ...] = (
    "status",
    "bed",
    "bath",
    "acre_lot",
    "city",
    "state",
    "zip_code",
    "house_size",
    "prev_sold_date",
)
TEXT_FEATURES = ONE_HOT_FEATURES + TARGET_ENCODED_FEATURES
#: the run artifact that holds the training data's range per feature (written by train's
#: tasks.training_log.feature_ranges, read by serving/ranges.py for its warnings)
FEATURE_RANGES_ARTIFACT = "feature_ranges.json"

#: numpy turns NaT into the smallest int64 when a date becomes a number.
NAT_AS_FLOAT = float(np.iinfo(np.int64).min)

#: The types the saved model holds beyond skops' defaults, and which we trust (we build them).
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.asarray",
    "numpy.dtype",
    "sklearn.model_selection._split.KFold",
)

#: The regressor's hyperparameters when nothing else is given: the search's first trial (its
#: space is :data:`tasks.search.SEARCH_SPACE`) and the fixed ones (loss, max_iter).
DEFAULT_PARAMS: dict[str, Any] = {
    "loss": "squared_error",
    "learning_rate": 0.1,
    "max_leaf_nodes": 63,
    "min_samples_leaf": 40,
    "l2_regularization": 0.1,
    "max_features": 1.0,
    "max_iter": 300,
}


def _year_from_date() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    # datetime64 -> datetime64[Y] -> years since 1970 as float; NaT -> NAT_AS_FLOAT -> imputed
    return Pipeline(
        [
            (
                "year",
                FunctionTransformer(
                    np.asarray, kw_args={"dtype": "datetime64[Y]"}, feature_names_out="one-to-one"
                ),
            ),
            (
                "number",
                FunctionTransformer(
                    np.asarray, kw_args={"dtype": "float64"}, feature_names_out="one-to-one"
                ),
            ),
            (
                "impute",
                SimpleImputer(missing_values=NAT_AS_FLOAT, strategy="median", add_indicator=True),
            ),
        ]
    )


def build_preprocessor(seed: int) -> ColumnTransformer:
    """One transformer per original column, named after it (SHAP groups by that name)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, TargetEncoder

    steps: list[tuple[str, Any, list[str]]] = []
    for name in NUMERIC_FEATURES:
        steps.append((name, SimpleImputer(strategy="median", add_indicator=True), [name]))
    for name in LOG_FEATURES:
        log = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
        impute = SimpleImputer(strategy="median", add_indicator=True)
        steps.append((name, Pipeline([("log1p", log), ("impute", impute)]), [name]))
    for name in ONE_HOT_FEATURES:
        steps.append(
            (
                name,
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="ignore", min_frequency=20, sparse_output=False
                            ),
                        ),
                    ]
                ),
                [name],
            )
        )
    for name in TARGET_ENCODED_FEATURES:
        steps.append(
            (
                name,
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        (
                            "target",
                            TargetEncoder(
                                target_type="continuous",
                                cv=KFold(n_splits=5, shuffle=True, random_state=seed),
                            ),
                        ),
                    ]
                ),
                [name],
            )
        )
    for name in DATE_FEATURES:
        steps.append((name, _year_from_date(), [name]))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def build_model(
    params: Mapping[str, Any] | None = None, seed: int = 42
) -> TransformedTargetRegressor:
    """The untrained pipeline with ``params`` for the gradient-boosted regressor."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    chosen = {**DEFAULT_PARAMS, **(params or {})}
    regressor = HistGradientBoostingRegressor(
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=15,
        random_state=seed,
        **chosen,
    )
    pipeline = Pipeline([("features", build_preprocessor(seed)), ("regressor", regressor)])
    return TransformedTargetRegressor(
        regressor=pipeline, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns from canonical rows, in the types the model expects.

    Text columns become object with None for nulls, numbers float64, the date datetime64[ns]
    (what MLflow's signature enforcement produces at serving time too). A missing column is
    an error, not a silent null column.
    """
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise KeyError(f"the rows lack the model's input columns {missing}")
    out = pd.DataFrame(index=frame.index)
    for name in FEATURES:
        column = frame[name]
        if name in TEXT_FEATURES:
            out[name] = column.astype(object).where(column.notna(), None)
        elif name in DATE_FEATURES:
            out[name] = pd.to_datetime(column, errors="coerce").astype("datetime64[ns]")
        else:
            out[name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
    return out


def target(frame: pd.DataFrame) -> np.ndarray:
    """The prices of canonical rows, as float64 dollars."""
    return pd.to_numeric(frame[TARGET], errors="coerce").to_numpy(dtype=np.float64)


def original_feature_of(output_name: str) -> str:
    """The original column behind one output column of the preprocessor (``status__status_sold``)."""
    return output_name.split("__", 1)[0]


def shap_importance(
    model: TransformedTargetRegressor, rows: pd.DataFrame
) -> tuple[dict[str, float], int]:
    """Mean |SHAP| per ORIGINAL feature over ``rows`` (in log1p(price) units), and the row count.

    SHAP values come from ``shap.TreeExplainer`` on the fitted gradient-boosted trees over the
    transformed features; the columns an original feature became (one-hot levels, missing
    indicators) are summed per row before taking the absolute value.
    """
    import shap

    pipeline = model.regressor_
    preprocessor = pipeline.named_steps["features"]
    transformed = preprocessor.transform(rows)
    explainer = shap.TreeExplainer(pipeline.named_steps["regressor"])
    values = np.asarray(explainer.shap_values(transformed, check_additivity=False))
    names = [original_feature_of(n) for n in preprocessor.get_feature_names_out()]
    importance: dict[str, float] = {}
    for feature in FEATURES:
        columns = [i for i, name in enumerate(names) if name == feature]
        if columns:
            importance[feature] = float(np.abs(values[:, columns].sum(axis=1)).mean())
    ranked = dict(sorted(importance.items(), key=lambda item: item[1], reverse=True))
    return ranked, int(transformed.shape[0])


def pip_requirements() -> list[str]:
    """What loading the model needs, pinned to the versions that trained it.

    Given explicitly so MLflow does not infer them (which loads the model in a subprocess).
    """
    from importlib.metadata import version

    packages = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy", "pyarrow")
    return [f"{name}=={version(name)}" for name in packages]
