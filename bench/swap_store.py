"""The registry ``bench/swap_latency.py`` swaps in: full-scale model versions in a local MLflow store.

One model fitted on the simulator's batches 1-3 at full scale (as ``bench/model_quality.py
--fit`` fits it: the production search's defaults, at most ``TRAIN_MAX_ROWS`` training rows),
logged as ``versions`` separate runs the way ``tasks.train`` logs a model (skops with the trusted
types, the training ranges), each registered as its own version: every version has its own
artifacts to download, unpickle, compile and check. Kept in ``workdir`` (``store.json`` says it
is complete), so later runs reuse it.

    .venv/bin/python bench/swap_store.py --workdir /tmp/swap-bench   # about 3 minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODEL_NAME = "realtor-price"
BATCHES = (1, 2, 3)


def tracking_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def fit_full_scale(scale: float) -> tuple[object, object, int]:
    """The fitted model, its training frame and the rows it saw."""
    from threadpoolctl import threadpool_limits

    from bench.model_quality import curated_with_noiseless, split
    from tasks.core import model
    from tasks.core.settings import TaskSettings
    from tasks.train.search import SEARCH_SPACE

    settings = TaskSettings()
    frames = [
        curated_with_noiseless(42, scale, settings.group_number, settings.day, n, settings)
        for n in BATCHES
    ]
    train = split(frames, settings.holdout_share).train
    del frames
    if len(train) > settings.train_max_rows:
        train = train.sample(settings.train_max_rows, random_state=settings.random_seed)
    with threadpool_limits(limits=settings.train_threads or None):
        fitted = model.build_model(SEARCH_SPACE.defaults(), settings.random_seed).fit(
            model.feature_frame(train), model.target(train)
        )
    return fitted, model.feature_frame(train), len(train)


def log_versions(workdir: Path, fitted: object, x_train, versions: int) -> list[str]:
    """``versions`` runs, each logging the model like ``tasks.train``; their version numbers."""
    import mlflow

    from tasks.core import model
    from tasks.train.training_log import feature_ranges

    mlflow.set_tracking_uri(tracking_uri(workdir))
    mlflow.set_experiment("swap-bench")
    example = x_train.head(5)
    ranges = feature_ranges(x_train)
    numbers = []
    for i in range(versions):
        with mlflow.start_run(run_name=f"full-scale-{i + 1}"):
            mlflow.log_metric("copy", i + 1)
            info = mlflow.sklearn.log_model(
                fitted,
                name="model",
                input_example=example,
                skops_trusted_types=list(model.SKOPS_TRUSTED_TYPES),
                pip_requirements=model.pip_requirements(),
            )
            mlflow.log_dict(ranges, model.FEATURE_RANGES_ARTIFACT)
        numbers.append(str(mlflow.register_model(info.model_uri, MODEL_NAME).version))
    return numbers


def ensure_store(workdir: Path, *, scale: float = 1.0, versions: int = 4) -> dict:
    """The store's description (``store.json``), building it first if it is not complete."""
    done = workdir / "store.json"
    if done.exists():
        return json.loads(done.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fitted, x_train, rows = fit_full_scale(scale)
    fit_seconds = time.perf_counter() - started
    trees = int(fitted.regressor_[-1].n_iter_)  # type: ignore[attr-defined]
    numbers = log_versions(workdir, fitted, x_train, versions)
    described = {
        "tracking_uri": tracking_uri(workdir),
        "model_name": MODEL_NAME,
        "versions": numbers,
        "training_rows": rows,
        "trees": trees,
        "scale": scale,
        "fit_seconds": round(fit_seconds, 1),
    }
    done.write_text(json.dumps(described, indent=2))
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--versions", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(ensure_store(args.workdir, scale=args.scale, versions=args.versions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
