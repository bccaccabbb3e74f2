"""The hyperparameter search of the price model: its space, written once, and the search.

:data:`SEARCH_SPACE` is the only place the searched hyperparameters, their bounds and their
scales are written: the Optuna suggestions, the ``search_space`` MLflow parameter and the
starting points all come from it. Defaults (the first trial when there is no champion) are
:data:`tasks.core.model.DEFAULT_PARAMS`.

The search (:func:`search_hyperparameters`) works on an inner validation split of the training
rows (never the holdout) and is cheap by construction:

- the preprocessor does not depend on the searched values, so it is fitted once and every trial
  fits only the gradient-boosted trees on the already transformed matrix;
- each trial grows its trees in steps of :data:`STEP_ITERATIONS` (``warm_start``) and reports
  the validation MAE (dollars) after each step: it stops when :data:`PATIENCE_STEPS` steps in a
  row no longer help, and Optuna's median pruner stops it when it is worse than the median of
  the earlier trials at the same step;
- it starts from what is known to work: the champion's hyperparameters (when there is one) and
  the defaults are the first trials, then TPE (seeded);
- its size follows the data: ``row_budget / rows`` trials (between ``MIN_TRIALS`` and
  ``max_trials``), with ``budget_seconds`` only as a ceiling.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.core import model

if TYPE_CHECKING:
    import optuna
    import pandas as pd

#: fewer trials than this is not a search
MIN_TRIALS = 3
#: trees added per step of a trial (the unit of pruning). Small steps stop a trial close to
#: where it stops improving: on 20,000 rows the defaults are best at 50-75 trees, and a trial
#: in steps of 25 took 1.2 s where steps of 100 took 2.2 s (measured while tuning the step; not a benchmark)
STEP_ITERATIONS = 25
#: steps without a better validation MAE after which a trial stops (its best counts)
PATIENCE_STEPS = 2
#: steps every trial runs before the pruner may stop it (slow learners need a few)
WARMUP_STEPS = 3


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: its bounds and scale."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> float | int:
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def clip(self, value: Any) -> float | int:
        bounded = min(max(float(value), self.low), self.high)
        return round(bounded) if self.integer else bounded

    def describe(self) -> str:
        def fmt(v: float) -> str:
            return f"{v:g}"

        return f"{self.name} {fmt(self.low)}-{fmt(self.high)}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def defaults(self) -> dict[str, Any]:
        return {name: model.DEFAULT_PARAMS[name] for name in self.names}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def point(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """``values`` as a point of the space (clipped to the bounds), None if one is missing."""
        try:
            return {d.name: d.clip(values[d.name]) for d in self.dimensions}
        except (KeyError, TypeError, ValueError):
            return None

    def describe(self) -> str:
        return ", ".join(d.describe() for d in self.dimensions)


SEARCH_SPACE = SearchSpace(
    (
        Dimension("learning_rate", 0.03, 0.3, log=True),
        Dimension("max_leaf_nodes", 15, 127, log=True, integer=True),
        Dimension("min_samples_leaf", 10, 200, log=True, integer=True),
        Dimension("l2_regularization", 1e-3, 10.0, log=True),
        Dimension("max_features", 0.5, 1.0),
    )
)


class SearchError(RuntimeError):
    """The search cannot run (too few rows) or finished no trial."""


@dataclass
class SearchResult:
    params: dict[str, Any]
    best_validation_mae: float
    trials: int
    pruned: int
    planned_trials: int
    seconds: float
    started_from: list[str]
    fit_rows: int
    validation_rows: int


def planned_trials(rows: int, row_budget: int, max_trials: int) -> int:
    """How many trials ``rows`` fit rows deserve: ``row_budget / rows``, within bounds."""
    return max(min(MIN_TRIALS, max_trials), min(max_trials, math.ceil(row_budget / max(rows, 1))))


def _at_most(index: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``index``, or a seeded sample of ``rows`` of it (in order) when it is longer."""
    if len(index) <= rows:
        return index
    return np.sort(rng.choice(index, rows, replace=False))


def search_hyperparameters(
    features: pd.DataFrame,
    prices: np.ndarray,
    validation: np.ndarray,
    *,
    seed: int,
    budget_seconds: float,
    max_trials: int,
    max_rows: int,
    row_budget: int,
    min_rows: int,
    start_from: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> SearchResult:
    """Search :data:`SEARCH_SPACE`, scored by MAE in dollars on the ``validation`` rows.

    At most ``max_rows`` rows (a seeded sample) on each side: the fit and the validation.

    ``start_from``: (label, hyperparameters) tried first, in order (e.g. the champion's);
    the defaults are always among the first trials.
    """
    import optuna
    from sklearn.ensemble import HistGradientBoostingRegressor

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    fit_index = _at_most(np.flatnonzero(~validation), max_rows, rng)
    val_index = _at_most(np.flatnonzero(validation), max_rows, rng)
    if len(val_index) == 0 or len(fit_index) < min_rows:
        raise SearchError(
            f"too few rows for the search: {len(fit_index)} to fit, {len(val_index)} to validate"
        )
    started = time.perf_counter()
    preprocessor = model.build_preprocessor(seed)
    x_fit = preprocessor.fit_transform(features.iloc[fit_index], np.log1p(prices[fit_index]))
    x_val = preprocessor.transform(features.iloc[val_index])
    y_fit, y_val = np.log1p(prices[fit_index]), prices[val_index]
    fixed = {k: v for k, v in model.DEFAULT_PARAMS.items() if k not in SEARCH_SPACE.names}
    max_iter = int(fixed.pop("max_iter"))

    def objective(trial: optuna.Trial) -> float:
        regressor = HistGradientBoostingRegressor(
            early_stopping=False,
            warm_start=True,
            random_state=seed,
            **fixed,
            **SEARCH_SPACE.suggest(trial),
        )
        best, since_best = math.inf, 0
        for step, iterations in enumerate(range(STEP_ITERATIONS, max_iter + 1, STEP_ITERATIONS)):
            regressor.set_params(max_iter=iterations).fit(x_fit, y_fit)
            mae = float(np.mean(np.abs(np.expm1(regressor.predict(x_val)) - y_val)))
            trial.report(mae, step)
            if mae < best:
                best, since_best = mae, 0
                trial.set_user_attr("iterations", iterations)
            else:
                since_best += 1
                if since_best >= PATIENCE_STEPS:  # the trees have learnt what they can
                    break
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=WARMUP_STEPS),
    )
    labels: list[str] = []
    for label, values in [*start_from, ("defaults", SEARCH_SPACE.defaults())]:
        point = SEARCH_SPACE.point(values)
        if point is not None and label not in labels:
            study.enqueue_trial(point, skip_if_exists=True)
            labels.append(label)
    trials = planned_trials(len(fit_index), row_budget, max_trials)
    remaining = budget_seconds - (time.perf_counter() - started)
    study.optimize(objective, n_trials=trials, timeout=max(remaining, 1.0), catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise SearchError("the hyperparameter search finished no trial")
    return SearchResult(
        params=dict(study.best_params),
        best_validation_mae=float(study.best_value),
        trials=len(study.trials),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        planned_trials=trials,
        seconds=time.perf_counter() - started,
        started_from=labels,
        fit_rows=len(fit_index),
        validation_rows=len(val_index),
    )
