"""A fast path through a fitted price model, compiled from its fitted scikit-learn steps.

Contract (what the serving app relies on; keep stable):

- ``compile_model(fitted) -> FastModel``: ``fitted`` is what ``mlflow.sklearn.load_model``
  returns for a version (``TransformedTargetRegressor`` around ``Pipeline([..., HGB])``, or that
  ``Pipeline`` alone). Compilation reads the FITTED attributes of every step, once per version,
  and raises :class:`UnsupportedPipelineError` (naming the step, its path and the parameter) for
  any step type or parameter it cannot reproduce exactly. Nothing is hand-written per feature.
- Input: columns as ``Mapping[str, Sequence]`` keyed by :data:`tasks.core.model.FEATURES`, plain
  Python values: ``str | None`` for text, ``float | int | None`` for numbers,
  ``datetime.date | None`` for ``prev_sold_date``. :func:`records_to_columns` turns a list of
  records (mappings or objects with those attributes) into that shape. A missing column is a
  ``KeyError``; the columns must have equal lengths.
- ``FastModel.transform(columns)``: the float64 matrix, identical to
  ``preprocessor.transform(feature_frame(rows))`` (same values, same column order).
- ``FastModel.predict_log(matrix)``: the trees' raw output (log1p of the price for this model),
  bit-for-bit scikit-learn's; ``FastModel.to_price(log_price)``: dollars from it.
- ``FastModel.predict(columns)``: prices in dollars, the same as the registered model's own
  ``predict`` (tested to 1e-9 relative; in practice identical).
- ``FastModel.feature_groups``: original feature -> indices of the matrix columns it became
  (one-hot levels, missing indicators), for grouping SHAP values.
- ``FastModel.regressor``: the fitted ``HistGradientBoostingRegressor``.
- Errors at call time mirror the model's own: a value the model itself refuses (an infinite
  number, or ``-1`` for a log1p feature, which becomes ``-inf``) raises ``ValueError``.
- Thread-safe: after compilation nothing is mutated; every call allocates its own arrays.

What compiles (anything else is refused, by name): ``ColumnTransformer`` (dense output,
column lists by name, "drop"; "passthrough" as identity), ``Pipeline``, ``SimpleImputer`` (any
strategy: its ``statistics_``; NaN, number or string ``missing_values``; features empty at fit
dropped; ``add_indicator``), ``FunctionTransformer`` with one of :data:`SUPPORTED_FUNCTIONS`
(``dtype`` the only kw_arg, ``validate=False``), ``OneHotEncoder`` (``categories_``,
infrequent categories, ``handle_unknown`` ignore / error / infrequent_if_exist / warn; no
``drop``), ``TargetEncoder`` (continuous or binary: ``encodings_``, ``target_mean_``), and a
final ``HistGradientBoostingRegressor`` (identity link, no categorical features) inside an
optional ``TransformedTargetRegressor`` whose inverse function is supported. Input columns must
be :data:`tasks.core.model.FEATURES`: they are converted the way ``feature_frame`` types them.

Why: the model's own ``predict`` of one row costs about 25 ms, almost all of it the
``ColumnTransformer``-over-pandas overhead; this path does the same arithmetic on plain numpy
arrays and dict lookups (under 0.1 ms a row), and evaluates up to :data:`SMALL_BATCH_ROWS`
rows with a vectorised walk over all trees at once (about 0.1 ms for one row and a few hundred
trees, where scikit-learn's loop pays a Python call per tree); larger batches use scikit-learn's
own Cython loop. A probe at compile time checks the walk against scikit-learn's trees exactly.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, TargetEncoder

from tasks.core.model import DATE_FEATURES, FEATURES, TEXT_FEATURES

__all__ = [
    "FastModel",
    "UnsupportedPipelineError",
    "compile_model",
    "records_to_columns",
]

#: Functions a FunctionTransformer may hold: elementwise numpy functions whose result on a
#: plain array equals their result on the DataFrame scikit-learn would pass.
SUPPORTED_FUNCTIONS: dict[Any, str] = {
    np.log1p: "numpy.log1p",
    np.expm1: "numpy.expm1",
    np.log: "numpy.log",
    np.exp: "numpy.exp",
    np.sqrt: "numpy.sqrt",
    np.asarray: "numpy.asarray",
}

#: At most this many rows go through the vectorised tree walk; more use scikit-learn's loop.
SMALL_BATCH_ROWS = 32

#: Dates outside pandas' nanosecond range become NaT in ``feature_frame`` (errors="coerce").
_NS_MIN_DAY = np.datetime64("1677-09-22", "D")
_NS_MAX_DAY = np.datetime64("2262-04-11", "D")

_NAN_KEY = object()  # the dict key standing for any float NaN category

Step = Callable[[np.ndarray], np.ndarray]


class UnsupportedPipelineError(Exception):
    """The fitted model holds a step or parameter the fast path cannot reproduce exactly."""


def _refuse(path: str, what: str) -> UnsupportedPipelineError:
    return UnsupportedPipelineError(f"fast path: {path}: {what} is not supported")


# --------------------------------------------------------------------------- input


def records_to_columns(records: Iterable[Any]) -> dict[str, list[Any]]:
    """Columns keyed by :data:`FEATURES` from records (mappings or attribute objects).

    A feature absent from a record is ``None`` (a null), as it is for the model.
    """
    rows = list(records)
    if all(type(row) is dict for row in rows):  # the common case, without a check per value
        return {name: [row.get(name) for row in rows] for name in FEATURES}
    return {
        name: [
            row.get(name) if isinstance(row, Mapping) else getattr(row, name, None) for row in rows
        ]
        for name in FEATURES
    }


def _text_array(values: Sequence[Any]) -> np.ndarray:
    """Object array with ``None`` for nulls (NaN included), as ``feature_frame`` gives."""
    out = np.empty(len(values), dtype=object)
    out[:] = [v if v == v else None for v in values]  # only NaN is unequal to itself
    return out


def _number_array(values: Sequence[Any]) -> np.ndarray:
    """float64 array with NaN for nulls."""
    return np.array(values, dtype=np.float64).reshape(len(values))


def _date_value(value: Any) -> np.datetime64:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.datetime64("NaT", "ns")
    if isinstance(value, dt.datetime):
        day = np.datetime64(value.date(), "D")
        precise = np.datetime64(value.replace(tzinfo=None), "us")
    elif isinstance(value, dt.date):
        day = precise = np.datetime64(value, "D")
    else:
        raise TypeError(f"a date must be datetime.date or None, got {type(value).__name__}")
    if day < _NS_MIN_DAY or day > _NS_MAX_DAY:
        return np.datetime64("NaT", "ns")  # out of pandas' range: coerced to NaT
    return precise.astype("datetime64[ns]")


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_NS_MIN_ORDINAL = dt.date(1677, 9, 22).toordinal()
_NS_MAX_ORDINAL = dt.date(2262, 4, 11).toordinal()


def _date_array(values: Sequence[Any]) -> np.ndarray:
    """datetime64[ns] array with NaT for nulls and for dates pandas cannot represent.

    Many plain dates (the common case of a batch) go through their day ordinals in one numpy
    pass; a few values, or anything else (a datetime, a NaN), value by value.
    """
    if len(values) > 4 and all(v is None or type(v) is dt.date for v in values):
        ordinals = np.array(
            [_NS_MIN_ORDINAL - 1 if v is None else v.toordinal() for v in values], dtype=np.int64
        ).reshape(len(values))
        valid = (ordinals >= _NS_MIN_ORDINAL) & (ordinals <= _NS_MAX_ORDINAL)
        days = np.where(valid, ordinals - _EPOCH_ORDINAL, 0).astype("datetime64[D]")
        return np.where(valid, days.astype("datetime64[ns]"), np.datetime64("NaT", "ns"))
    return np.array([_date_value(v) for v in values], dtype="datetime64[ns]").reshape(len(values))


def _converter(name: str) -> Callable[[Sequence[Any]], np.ndarray]:
    if name in TEXT_FEATURES:
        return _text_array
    if name in DATE_FEATURES:
        return _date_array
    return _number_array


# --------------------------------------------------------------------------- steps


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _missing_mask(x: np.ndarray, missing_values: Any) -> np.ndarray:
    """``sklearn.utils._mask._get_dense_mask`` for the values SimpleImputer accepts."""
    if _is_nan(missing_values):
        if x.dtype.kind == "f":
            return np.isnan(x)
        if x.dtype.kind in "iu":
            return np.zeros(x.shape, dtype=bool)
        return x != x  # object: NaN is the only value unequal to itself (None is not NaN)
    return x == missing_values


@dataclass(frozen=True)
class _Imputer:
    """A fitted SimpleImputer: fill from ``statistics_``, drop empty features, add indicators."""

    statistics: np.ndarray
    missing_values: Any
    object_input: bool
    allow_nan: bool
    keep: np.ndarray | None  # indices of the features kept (None: all)
    indicator: np.ndarray | None  # indices of the features with an indicator column

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.object_input:
            x = x if x.dtype == object else x.astype(object)
        else:
            x = x if x.dtype == np.float64 else x.astype(np.float64)
            _check_finite(x, allow_nan=self.allow_nan)
        mask = _missing_mask(x, self.missing_values)
        filled = np.where(mask, self.statistics, x)
        if self.keep is not None:
            filled = filled[:, self.keep]
        if self.indicator is None:
            return filled
        return np.hstack((filled, mask[:, self.indicator]))


def _check_finite(x: np.ndarray, *, allow_nan: bool) -> None:
    """What scikit-learn's input validation refuses (it raises ValueError, so do we)."""
    if allow_nan:
        if np.isinf(x).any():
            raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
    elif not np.isfinite(x).all():
        raise ValueError("Input X contains NaN or infinity.")


def _compile_imputer(imputer: SimpleImputer, path: str) -> _Imputer:
    fit_dtype = imputer._fit_dtype
    if fit_dtype.kind not in "fO":
        raise _refuse(path, f"SimpleImputer fitted on dtype {fit_dtype}")
    if fit_dtype.kind == "f" and fit_dtype != np.float64:
        raise _refuse(path, f"SimpleImputer fitted on dtype {fit_dtype}")
    missing = imputer.missing_values
    if missing is not None and not isinstance(missing, float | int | str):
        raise _refuse(path, f"SimpleImputer(missing_values={missing!r})")
    statistics = imputer.statistics_
    keep = None
    if not imputer.keep_empty_features:  # features all missing at fit are dropped
        invalid = _missing_mask(statistics, np.nan)
        keep = np.flatnonzero(~invalid) if invalid.any() else None
    valid = statistics.astype(imputer._fill_dtype, copy=False)
    if imputer.add_indicator:
        indicator = imputer.indicator_
        if indicator.features != "missing-only" or indicator.sparse not in ("auto", False):
            raise _refuse(path, "SimpleImputer's MissingIndicator with these parameters")
        indicator_features = np.asarray(indicator.features_, dtype=np.intp)
    else:
        indicator_features = None
    return _Imputer(
        statistics=valid.reshape(1, -1),
        missing_values=missing,
        object_input=fit_dtype.kind == "O",
        allow_nan=_is_nan(missing),
        keep=keep,
        indicator=indicator_features,
    )


def _imputer_width(step: _Imputer, width: int) -> int:
    kept = width if step.keep is None else len(step.keep)
    return kept + (0 if step.indicator is None else len(step.indicator))


@dataclass(frozen=True)
class _Function:
    """A FunctionTransformer holding one of :data:`SUPPORTED_FUNCTIONS` and its kw_args."""

    func: Callable[..., np.ndarray]
    kw_args: Mapping[str, Any]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return np.asarray(self.func(x, **self.kw_args))


def _compile_function(transformer: FunctionTransformer, path: str) -> _Function:
    func = transformer.func
    if transformer.validate:
        raise _refuse(path, "FunctionTransformer(validate=True)")
    if func is None:
        return _Function(np.asarray, {})
    if func not in SUPPORTED_FUNCTIONS:
        raise _refuse(path, f"FunctionTransformer(func={getattr(func, '__name__', func)!r})")
    kw_args = dict(transformer.kw_args or {})
    if set(kw_args) - {"dtype"}:
        raise _refuse(path, f"FunctionTransformer kw_args {sorted(kw_args)}")
    return _Function(func, kw_args)


def _category_key(value: Any) -> Any:
    return _NAN_KEY if _is_nan(value) else value


def _lookup(table: Mapping[Any, Any], value: Any, default: Any) -> Any:
    """``table[value]``, any NaN matching a NaN category (dicts match NaN by identity only)."""
    found = table.get(value, _NAN_KEY)
    if found is _NAN_KEY:
        return table.get(_NAN_KEY, default) if value != value else default
    return found


def _category_table(categories: np.ndarray, targets: Sequence[Any]) -> dict[Any, Any]:
    return {_category_key(c): t for c, t in zip(categories.tolist(), targets, strict=True)}


@dataclass(frozen=True)
class _OneHot:
    """A fitted OneHotEncoder (dense): category -> output column, infrequent and unknown rules."""

    tables: tuple[dict[Any, int], ...]  # per input feature: category -> output column
    unknown: tuple[int | None, ...]  # per input feature: column for unknown values, or None
    raise_unknown: bool
    width: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        out = np.zeros((n, self.width), dtype=np.float64)
        for i, table in enumerate(self.tables):
            values = x[:, i].tolist()
            columns = [_lookup(table, v, -1) for v in values]
            if -1 in columns:
                unknown = [row for row, c in enumerate(columns) if c == -1]
                if self.raise_unknown:
                    shown = sorted({repr(values[row]) for row in unknown})
                    raise ValueError(
                        f"Found unknown categories [{', '.join(shown)}] in column {i} during "
                        "transform"
                    )
                for row in unknown:
                    columns[row] = self.unknown[i] if self.unknown[i] is not None else -1
            index = np.asarray(columns, dtype=np.intp)
            rows = np.flatnonzero(index >= 0)
            out[rows, index[rows]] = 1.0
        return out


def _compile_onehot(encoder: OneHotEncoder, path: str) -> _OneHot:
    if encoder.drop_idx_ is not None:
        raise _refuse(path, f"OneHotEncoder(drop={encoder.drop!r})")
    if encoder.handle_unknown not in ("ignore", "error", "infrequent_if_exist", "warn"):
        raise _refuse(path, f"OneHotEncoder(handle_unknown={encoder.handle_unknown!r})")
    tables: list[dict[Any, int]] = []
    unknown: list[int | None] = []
    offset = 0
    infrequent_enabled = bool(getattr(encoder, "_infrequent_enabled", False))
    for i, categories in enumerate(encoder.categories_):
        mapping = encoder._default_to_infrequent_mappings[i] if infrequent_enabled else None
        infrequent = encoder._infrequent_indices[i] if infrequent_enabled else None
        columns = np.arange(len(categories)) if mapping is None else np.asarray(mapping)
        tables.append(_category_table(categories, (offset + columns).tolist()))
        to_infrequent = encoder.handle_unknown in ("infrequent_if_exist", "warn")
        if infrequent is not None and to_infrequent:
            unknown.append(offset + int(columns[infrequent[0]]))
        else:
            unknown.append(None)
        offset += int(encoder._n_features_outs[i])
    return _OneHot(tuple(tables), tuple(unknown), encoder.handle_unknown == "error", offset)


@dataclass(frozen=True)
class _Target:
    """A fitted TargetEncoder (continuous or binary): category -> its encoding, else the mean."""

    tables: tuple[dict[Any, float], ...]
    default: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], len(self.tables)), dtype=np.float64)
        for i, table in enumerate(self.tables):
            out[:, i] = [_lookup(table, v, self.default) for v in x[:, i].tolist()]
        return out


def _compile_target(encoder: TargetEncoder, path: str) -> _Target:
    if encoder.target_type_ not in ("continuous", "binary"):
        raise _refuse(path, f"TargetEncoder with target_type_={encoder.target_type_!r}")
    if getattr(encoder, "_infrequent_enabled", False):
        raise _refuse(path, "TargetEncoder with infrequent categories")
    if len(encoder.encodings_) != len(encoder.categories_):
        raise _refuse(path, "TargetEncoder with more encodings than features")
    tables = tuple(
        _category_table(categories, np.asarray(encoding, dtype=np.float64).tolist())
        for categories, encoding in zip(encoder.categories_, encoder.encodings_, strict=True)
    )
    return _Target(tables, float(encoder.target_mean_))


@dataclass(frozen=True)
class _Chain:
    """A fitted Pipeline of transformers: its steps one after the other."""

    steps: tuple[Step, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step(x)
        return x


def _compile_step(step: Any, path: str, width: int) -> tuple[Step, int | None]:
    """The compiled step and its output width (None when only known at run time)."""
    kind = type(step)
    if kind is Pipeline:
        compiled: list[Step] = []
        current: int | None = width
        for name, inner in step.steps:
            if inner is None or inner == "passthrough":
                continue
            if current is None:
                raise _refuse(f"{path}/{name}", "a step after one of unknown width")
            one, current = _compile_step(inner, f"{path}/{name}", current)
            compiled.append(one)
        return _Chain(tuple(compiled)), current
    if kind is SimpleImputer:
        imputer = _compile_imputer(step, path)
        return imputer, _imputer_width(imputer, width)
    if kind is FunctionTransformer:
        return _compile_function(step, path), width
    if kind is OneHotEncoder:
        onehot = _compile_onehot(step, path)
        return onehot, onehot.width
    if kind is TargetEncoder:
        target = _compile_target(step, path)
        return target, len(target.tables)
    raise _refuse(path, f"step type {kind.__module__}.{kind.__qualname__}")


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class _Forest:
    """The fitted trees of a HistGradientBoostingRegressor, flattened for a vectorised walk.

    All trees' nodes in one table; leaves point to themselves, so walking ``depth`` levels
    from every root lands every (row, tree) pair on its leaf. Each level is a handful of
    ``take``s over rows x trees elements: about 0.1 ms for one row and 300 trees, where
    scikit-learn's loop pays a Python call per tree (over 1 ms). The leaf values are added to
    the baseline one tree after another (``cumsum``), in scikit-learn's own order, so the sums
    are bit-for-bit those of ``_raw_predict``.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    nan_right: np.ndarray  # a NaN goes right at this node
    children: np.ndarray  # flat: [left, right] of node i at 2i, 2i + 1
    internal: np.ndarray  # True for split nodes
    value: np.ndarray
    depth: int
    baseline: float

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Baseline plus every tree's leaf value, summed in tree order, for each row of x."""
        n, width = x.shape
        trees = len(self.roots)
        flat = x.reshape(-1)
        node = np.tile(self.roots, n)
        start = np.repeat(np.arange(n, dtype=np.int64) * width, trees)
        feature, threshold, children = self.feature, self.threshold, self.children
        has_nan = bool(np.isnan(flat).any())
        for level in range(self.depth):
            if level % 8 == 7 and not self.internal.take(node).any():
                break
            value = flat.take(start + feature.take(node))
            go_right = value > threshold.take(node)
            if has_nan:  # NaN > t is False: a NaN goes where the node sends missing values
                go_right |= np.isnan(value) & self.nan_right.take(node)
            node = children.take(node * 2 + go_right)
        leaves = np.empty((n, trees + 1), dtype=np.float64)
        leaves[:, 0] = self.baseline
        leaves[:, 1:] = self.value.take(node).reshape(n, trees)
        return np.cumsum(leaves, axis=1)[:, -1]


def _compile_forest(hgb: HistGradientBoostingRegressor, path: str) -> _Forest:
    if type(hgb) is not HistGradientBoostingRegressor:
        kind = type(hgb)
        raise _refuse(path, f"final estimator {kind.__module__}.{kind.__qualname__}")
    if hgb.is_categorical_ is not None or getattr(hgb, "_preprocessor", None) is not None:
        raise _refuse(path, "HistGradientBoostingRegressor with categorical features")
    if hgb.n_trees_per_iteration_ != 1:
        raise _refuse(path, "HistGradientBoostingRegressor with several trees per iteration")
    link = type(hgb._loss.link).__name__
    if link != "IdentityLink":
        raise _refuse(path, f"HistGradientBoostingRegressor(loss={hgb.loss!r}) ({link})")
    tables, roots, offset = [], [], 0
    for (predictor,) in hgb._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise _refuse(path, "a tree with categorical splits")
        roots.append(offset)
        tables.append((nodes, offset))
        offset += len(nodes)
    nodes = np.concatenate([t for t, _ in tables])
    index = np.arange(offset, dtype=np.int64)
    shift = np.concatenate([np.full(len(t), o, dtype=np.int64) for t, o in tables])
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, index, nodes["left"].astype(np.int64) + shift)
    right = np.where(leaf, index, nodes["right"].astype(np.int64) + shift)
    return _Forest(
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        nan_right=~nodes["missing_go_to_left"].astype(bool),
        children=np.stack([left, right], axis=1).reshape(-1),
        internal=~leaf,
        value=nodes["value"].astype(np.float64),
        depth=int(nodes["depth"].max()),
        baseline=float(np.asarray(hgb._baseline_prediction).ravel()[0]),
    )


def _forest_probe(
    hgb: HistGradientBoostingRegressor, forest: _Forest, width: int, path: str
) -> None:
    """Refuse the walk unless it gives scikit-learn's sums exactly on split-edge inputs.

    Inputs at, just above and just below the trees' thresholds, with and without NaNs (the
    walk has a path for each); a few milliseconds, once per version.
    """
    thresholds = forest.threshold[forest.internal]
    rng = np.random.default_rng(0)
    picks = rng.choice(thresholds, size=(24, width)) if thresholds.size else np.zeros((24, width))
    edges = np.concatenate([picks, np.nextafter(picks, np.inf), np.nextafter(picks, -np.inf)])
    holes = edges.copy()
    holes[rng.random(holes.shape) < 0.2] = np.nan
    for probe in (edges, holes):
        expected = hgb._raw_predict(probe, n_threads=1).ravel()
        if not np.array_equal(forest.raw(probe), expected):
            raise _refuse(path, "a tree layout the vectorised walk does not reproduce")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Branch:
    name: str
    columns: tuple[str, ...]
    step: Step
    out: slice


class FastModel:
    """The compiled model: see the module docstring for the contract."""

    def __init__(
        self,
        branches: Sequence[_Branch],
        width: int,
        regressor: HistGradientBoostingRegressor,
        forest: _Forest,
        inverse: Callable[[np.ndarray], np.ndarray] | None,
        feature_names: Sequence[str],
        n_threads: int = 1,
    ) -> None:
        self.n_threads = n_threads
        self._branches = tuple(branches)
        self.width = width
        self.regressor = regressor
        self._forest = forest
        self._inverse = inverse
        #: Output column names of the preprocessor (``status__status_sold``, ``state__state``, ...).
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        #: The input columns read, in the model's order.
        self.inputs: tuple[str, ...] = tuple(
            name for name in FEATURES if any(name in b.columns for b in self._branches)
        )
        self._converters = {name: _converter(name) for name in self.inputs}
        groups: dict[str, list[int]] = {}
        for branch in self._branches:
            key = branch.columns[0] if len(branch.columns) == 1 else branch.name
            groups.setdefault(key, []).extend(range(branch.out.start, branch.out.stop))
        order = [name for name in FEATURES if name in groups] + [
            name for name in groups if name not in FEATURES
        ]
        #: Original feature -> indices of the matrix columns it became (in FEATURES order).
        self.feature_groups: dict[str, np.ndarray] = {
            key: np.asarray(groups[key], dtype=np.intp) for key in order
        }

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """The preprocessed float64 matrix (rows x ``width``)."""
        arrays = {name: self._converters[name](columns[name]) for name in self.inputs}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        out = np.empty((n, self.width), dtype=np.float64)
        for branch in self._branches:
            if len(branch.columns) == 1:
                block = arrays[branch.columns[0]].reshape(n, 1)
            else:
                block = np.stack([arrays[c] for c in branch.columns], axis=1)
            out[:, branch.out] = branch.step(block)
        return out

    def predict_log(self, matrix: np.ndarray) -> np.ndarray:
        """The trees' raw output for a preprocessed matrix (log1p(price) for this model)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise ValueError(f"expected a matrix of {self.width} columns, got {matrix.shape}")
        if matrix.shape[0] <= SMALL_BATCH_ROWS:
            return self._forest.raw(matrix)
        return self.regressor._raw_predict(matrix, n_threads=self.n_threads).ravel()

    def to_price(self, log_price: np.ndarray) -> np.ndarray:
        """Raw output -> dollars (the TransformedTargetRegressor's inverse function)."""
        if self._inverse is None:
            return np.asarray(log_price, dtype=np.float64)
        return self._inverse(np.asarray(log_price, dtype=np.float64))

    def predict(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Prices in dollars, one per row."""
        return self.to_price(self.predict_log(self.transform(columns)))


def _compile_columns(ct: ColumnTransformer, path: str) -> tuple[list[_Branch], int]:
    if type(ct) is not ColumnTransformer:
        kind = type(ct)
        raise _refuse(path, f"preprocessor type {kind.__module__}.{kind.__qualname__}")
    if ct.sparse_output_:
        raise _refuse(path, "ColumnTransformer with sparse output")
    branches: list[_Branch] = []
    for name, transformer, columns in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        where = f"{path}/{name}"
        if isinstance(transformer, str):
            raise _refuse(where, f"ColumnTransformer entry {transformer!r}")
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise _refuse(where, f"column selection {columns!r} (a list of names is required)")
        unknown = [c for c in columns if c not in FEATURES]
        if unknown:
            raise _refuse(where, f"input columns {unknown} outside tasks.core.model.FEATURES")
        step, width = _compile_step(transformer, where, len(columns))
        out = ct.output_indices_[name]
        if width is not None and width != out.stop - out.start:
            raise _refuse(where, f"an output width of {width} where the fitted one is {out}")
        branches.append(_Branch(name, tuple(columns), step, out))
    width = max((b.out.stop for b in branches), default=0)
    return branches, width


def _output_names(ct: ColumnTransformer, branches: Sequence[_Branch]) -> list[str]:
    """The preprocessor's output names, or ``<branch>__<i>`` where a step cannot name them."""
    try:
        return [str(name) for name in ct.get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [""] * max((b.out.stop for b in branches), default=0)
        for branch in branches:
            for i, column in enumerate(range(branch.out.start, branch.out.stop)):
                names[column] = f"{branch.name}__{i}"
        return names


def _compile_inverse(ttr: TransformedTargetRegressor) -> Callable[[np.ndarray], np.ndarray]:
    transformer = ttr.transformer_
    if type(transformer) is not FunctionTransformer:
        raise _refuse("target", f"transformer {type(transformer).__qualname__}")
    func = transformer.inverse_func
    if func is None:
        return np.asarray
    if func not in SUPPORTED_FUNCTIONS:
        raise _refuse("target", f"inverse_func {getattr(func, '__name__', func)!r}")
    if transformer.inv_kw_args:
        raise _refuse("target", "inverse_func with inv_kw_args")
    return _Function(func, {})


def compile_model(fitted: Any, *, n_threads: int = 1) -> FastModel:
    """Compile a fitted price model (see the module docstring); refuses what it cannot copy.

    ``n_threads`` is the OpenMP thread count for batches above :data:`SMALL_BATCH_ROWS`
    (scikit-learn's tree loop). One by default: on a busy machine scikit-learn's default (all
    cores) made a one-row predict 10x slower, threads spinning at each of hundreds of barriers;
    a replica serves one request stream, and the deployment scales by replicas.

    The compiler reads some of scikit-learn's private fitted attributes (checked against
    scikit-learn 1.9); if a release renames one, compilation is refused with its name rather
    than guessed.
    """
    try:
        return _compile_model(fitted, n_threads)
    except AttributeError as exc:
        import sklearn

        raise UnsupportedPipelineError(
            f"fast path: a fitted attribute is missing with scikit-learn {sklearn.__version__}: "
            f"{exc}"
        ) from exc


def _compile_model(fitted: Any, n_threads: int) -> FastModel:
    inverse = None
    pipeline = fitted
    if type(fitted) is TransformedTargetRegressor:
        inverse = _compile_inverse(fitted)
        pipeline = fitted.regressor_
    if type(pipeline) is not Pipeline:
        kind = type(pipeline)
        raise _refuse("model", f"model type {kind.__module__}.{kind.__qualname__}")
    *transforms, (final_name, final) = [
        (n, s) for n, s in pipeline.steps if s not in (None, "passthrough")
    ]
    if len(transforms) != 1:
        raise _refuse("model", f"{len(transforms)} preprocessing steps (one ColumnTransformer is)")
    name, ct = transforms[0]
    branches, width = _compile_columns(ct, name)
    forest = _compile_forest(final, final_name)
    if final.n_features_in_ != width:
        raise _refuse(
            final_name, f"{final.n_features_in_} inputs where the preprocessor gives {width}"
        )
    _forest_probe(final, forest, width, final_name)
    return FastModel(
        branches, width, final, forest, inverse, _output_names(ct, branches), n_threads=n_threads
    )
