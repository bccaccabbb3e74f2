"""Benchmark: how far the price model is from the best any model could do on this data.

The simulator knows each row's noiseless log price (:mod:`data_api.noise_free`). This script
rebuilds the pipeline's own rows in-process, exactly as fetch and validate would (the API's
body, parsed by :func:`tasks.api_client.parse_body`, validated by
:func:`tasks.validate.validate_table`), keeps the noiseless value of each row beside it, splits
them with the project's holdout (:mod:`tasks.holdout`, the rows train and promote hold out),
and reports, per status and overall:

- the model's mean absolute error in log price, next to the noise floor (the error of the
  noiseless price itself against the served price), and their ratio;
- the model's MAE in dollars next to the per-state median baseline's, and their ratio.

The model is either the registered one (default ``models:/<MODEL_NAME>@production`` on
``MLFLOW_TRACKING_URI``; its batches come from its ``training_batch_ids`` tag and the ledger at
``LEDGER_URL``, or ``--batches``), or one fitted here on the training rows (``--fit``, with the
production search's defaults, or ``--params`` JSON), which is the quick loop for feature work::

    .venv/bin/python bench/model_quality.py --fit --batches 1,2,3            # full scale, ~1 min
    .venv/bin/python bench/model_quality.py --batches 1,2,3                  # the production model
    .venv/bin/python bench/model_quality.py --fit --scale 0.1 --by state     # where it misses

``--by`` breaks the table down by state, price band (of the served price) or ``land`` (rows
without bed, bath and house size: land, or a house whose three are null, which the wire cannot
tell apart from land except by its lot size; the floor knows which it is, no model can).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_api.batches import encode_body  # noqa: E402
from data_api.noise_free import NOISELESS_COLUMN, batch_with_noiseless_price  # noqa: E402
from tasks import evaluation, holdout, model  # noqa: E402
from tasks.settings import TaskSettings  # noqa: E402


@dataclass
class Split:
    train: pd.DataFrame  # canonical rows (as read from the curated zone)
    holdout: pd.DataFrame  # canonical rows plus NOISELESS_COLUMN


def curated_with_noiseless(
    seed: int, scale: float, group_number: int, day: str, batch_number: int, settings: TaskSettings
) -> pd.DataFrame:
    """The batch's curated rows (as fetch + validate store them) plus the noiseless log price."""
    from tasks.api_client import parse_body
    from tasks.schema import CANONICAL_SCHEMA, COLUMNS
    from tasks.validate import thresholds_of, validate_table

    served = batch_with_noiseless_price(seed, scale, group_number, day, batch_number)
    noiseless = served.pop(NOISELESS_COLUMN).to_numpy()
    body = encode_body(group_number, day, batch_number, served)
    del served
    _, coerced = parse_body(io.BytesIO(body))
    verdict, _, keep = validate_table(coerced.table, coerced.problems, thresholds_of(settings))
    if verdict.status != "curated":
        raise SystemExit(f"batch {batch_number} would be quarantined: {verdict.reasons}")
    import pyarrow as pa

    table = coerced.table.filter(pa.array(keep)).select(list(COLUMNS)).cast(CANONICAL_SCHEMA)
    frame = table.to_pandas(date_as_object=False)
    frame[NOISELESS_COLUMN] = noiseless[keep]
    return frame


def split(frames: list[pd.DataFrame], share: float) -> Split:
    """The rows train uses: priced rows, split by the deterministic holdout."""
    train_parts, hold_parts = [], []
    for frame in frames:
        priced = pd.to_numeric(frame["price"], errors="coerce")
        frame = frame.loc[priced.notna() & (priced > 0)]
        in_holdout = holdout.holdout_scores(frame) < share
        hold_parts.append(frame.loc[in_holdout])
        train_parts.append(frame.loc[~in_holdout].drop(columns=[NOISELESS_COLUMN]))
    return Split(
        train=pd.concat(train_parts, ignore_index=True),
        holdout=pd.concat(hold_parts, ignore_index=True),
    )


def quality_table(
    rows: pd.DataFrame, predictions: np.ndarray, baseline: np.ndarray, by: str | None = None
) -> pd.DataFrame:
    """Per group (status, and ``by`` if given) and overall: log MAE vs floor, $ MAE vs baseline."""
    price = model.target(rows)
    log_price = np.log(price)
    frame = pd.DataFrame(
        {
            "status": rows["status"].fillna("missing").astype(str).to_numpy(),
            "model_log": np.abs(np.log(predictions) - log_price),
            "floor_log": np.abs(rows[NOISELESS_COLUMN].to_numpy() - log_price),
            "model_usd": np.abs(predictions - price),
            "floor_usd": np.abs(np.exp(rows[NOISELESS_COLUMN].to_numpy()) - price),
            "baseline_usd": np.abs(baseline - price),
        }
    )
    if by == "state":
        frame["group"] = rows["state"].fillna("missing").astype(str).to_numpy()
    elif by == "band":
        bands = np.full(len(price), "", dtype=object)
        for name, low, high in evaluation.PRICE_BANDS:
            bands[(price >= low) & (price < high)] = name
        frame["group"] = bands
    elif by == "land":
        frame["group"] = np.where(rows["house_size"].isna() & rows["bed"].isna(), "land?", "house")

    def summarise(group: pd.DataFrame) -> dict[str, float]:
        return {
            "rows": len(group),
            "log_mae": group["model_log"].mean(),
            "floor": group["floor_log"].mean(),
            "log_ratio": group["model_log"].mean() / group["floor_log"].mean(),
            "mae_usd": group["model_usd"].mean(),
            "floor_usd": group["floor_usd"].mean(),
            "baseline_usd": group["baseline_usd"].mean(),
            "usd_ratio": group["model_usd"].mean() / group["baseline_usd"].mean(),
        }

    key = "group" if by else "status"
    table = {str(name): summarise(group) for name, group in frame.groupby(key)}
    if by:
        table = dict(sorted(table.items(), key=lambda kv: -kv[1]["rows"])[:15])
    table["overall"] = summarise(frame)
    return pd.DataFrame(table).T


FORMATS = {
    "rows": "{:,.0f}",
    "log_mae": "{:.3f}",
    "floor": "{:.3f}",
    "log_ratio": "{:.2f}x",
    "mae_usd": "{:,.0f}",
    "floor_usd": "{:,.0f}",
    "baseline_usd": "{:,.0f}",
    "usd_ratio": "{:.2f}x",
}


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (group, then the columns of :data:`FORMATS`)."""
    header = ["group", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(table.columns)]
    for name, row in table.iterrows():
        cells = [FORMATS[c].format(row[c]) for c in table.columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _production_model(settings: TaskSettings) -> tuple[object, list[tuple[str, int]], str]:
    """The production model, the (day, batch number) of its training batches, its label."""
    import mlflow

    from tasks import registry
    from tasks.ledger import Ledger

    client = registry.client(settings.mlflow_tracking_uri)
    found = registry.champion(client, settings.model_name)
    if found is None:
        raise SystemExit(f"no production version of {settings.model_name}")
    version = registry.get_version(client, found.model_name, found.version)
    ids = json.loads(version.tags.get("training_batch_ids", "[]"))
    ledger = Ledger.open(settings.ledger_url)
    batches = [(b.day, b.batch_number) for b in (ledger.get_batch(i) for i in ids)]
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    fitted = mlflow.sklearn.load_model(registry.model_uri(found.model_name, found.version))
    return fitted, batches, f"{found.model_name} v{found.version} (production)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42, help="the simulator's seed")
    parser.add_argument("--group-number", type=int, default=None)
    parser.add_argument("--day", default=None)
    parser.add_argument("--batches", default=None, help="batch numbers, e.g. 1,2,3")
    parser.add_argument("--fit", action="store_true", help="fit a model here (no registry)")
    parser.add_argument("--params", default=None, help="JSON hyperparameters for --fit")
    parser.add_argument("--by", choices=("state", "band", "land"), default=None)
    args = parser.parse_args()
    settings = TaskSettings()
    group = args.group_number or settings.group_number
    day = args.day or settings.day
    label = ""
    fitted = None
    if args.batches:
        numbers = [int(n) for n in args.batches.split(",")]
    if not args.fit:
        fitted, batches, label = _production_model(settings)
        if not args.batches:
            numbers = [number for _, number in batches]
            day = batches[0][0] if batches else day
    elif not args.batches:
        numbers = [1, 2, 3]

    started = time.perf_counter()
    frames = [
        curated_with_noiseless(args.seed, args.scale, group, day, n, settings) for n in numbers
    ]
    data = split(frames, settings.holdout_share)
    del frames
    print(
        f"batches {numbers} at scale {args.scale}: {len(data.train):,} training rows, "
        f"{len(data.holdout):,} holdout rows ({time.perf_counter() - started:.0f} s to rebuild)"
    )
    if args.fit:
        from tasks.search import SEARCH_SPACE

        params = {**SEARCH_SPACE.defaults(), **json.loads(args.params or "{}")}
        train = data.train
        if len(train) > settings.train_max_rows:
            train = train.sample(settings.train_max_rows, random_state=settings.random_seed)
        from threadpoolctl import threadpool_limits

        fit_started = time.perf_counter()
        with threadpool_limits(limits=settings.train_threads or None):
            fitted = model.build_model(params, settings.random_seed).fit(
                model.feature_frame(train), model.target(train)
            )
        label = f"fitted here on {len(train):,} rows in {time.perf_counter() - fit_started:.1f} s"
    predictions = fitted.predict(model.feature_frame(data.holdout))  # type: ignore[union-attr]
    medians = evaluation.fit_state_medians(data.train["state"], model.target(data.train))
    baseline = evaluation.predict_state_medians(medians, data.holdout["state"])
    table = quality_table(data.holdout, predictions, baseline, args.by)
    print(f"model: {label}")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
