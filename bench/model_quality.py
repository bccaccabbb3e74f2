"""Benchmark: how far the price model is from the best any model could do on this data.

The simulator knows each row's noiseless log price (:mod:`data_api.noise_free`). This script
rebuilds the pipeline's own rows in-process, exactly as fetch and validate would (the API's
body, parsed by :func:`tasks.core.api_client.parse_body`, validated by
:func:`tasks.validate.validate_table`), keeps the noiseless value of each row beside it, splits
them with the project's holdout (:mod:`tasks.core.holdout`, the rows train and promote hold out),
and reports, per status and overall:

- the model's mean absolute error in log price, next to the noise floor (the error of the
  noiseless price itself against the served price), and their ratio;
- the model's mean absolute error in log price next to the information floor (the error of the
  best possible prediction from the wire's columns alone: :mod:`bench.information_floor`),
  and their ratio;
- the model's MAE in dollars next to the per-state median baseline's, and their ratio.

The model is either the registered one (default ``models:/<MODEL_NAME>@production`` on
``MLFLOW_TRACKING_URI``; its batches come from its ``training_batch_ids`` tag and the ledger at
``LEDGER_URL``, or ``--batches``), or one fitted here on the training rows (``--fit``, with the
production search's defaults, or ``--params`` JSON), which is the quick loop for feature work::

    .venv/bin/python bench/model_quality.py --fit --batches 1,2,3            # full scale, ~1 min
    .venv/bin/python bench/model_quality.py --batches 1,2,3                  # the production model
    .venv/bin/python bench/model_quality.py --fit --scale 0.1 --by state,kind  # where it misses

``--by`` adds tables (comma-separated) by state, price band (of the served price), ``land``
(rows without bed, bath and house size: land, or a house whose three are null, which the wire
cannot tell apart from land except by its lot size; the noise floor knows which it is, no
model can) or ``kind`` (the simulator's own flag: land, houses whose bed, bath and size are
all null, the other houses). The information floor is a floor for groups a model can form from
the wire's columns (status, state, ``land``); in groups defined by what the wire does not say
(price band, ``kind``) a model can be below it. After the tables come the checks of the
information floor (see bench/README.md); ``--no-info`` skips it (20-40 s at full scale).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import information_floor as info  # noqa: E402
from data_api.batches import encode_body  # noqa: E402
from data_api.geography import build_world  # noqa: E402
from data_api.noise_free import LAND_COLUMN, NOISELESS_COLUMN, batch_with_truth  # noqa: E402
from tasks.core import evaluation, holdout, model  # noqa: E402
from tasks.core.settings import TaskSettings  # noqa: E402


@dataclass
class Split:
    train: pd.DataFrame  # canonical rows (as read from the curated zone)
    holdout: pd.DataFrame  # canonical rows plus the TRUTH_COLUMNS


#: what the benchmark knows of each row beyond the canonical columns (never a feature)
BATCH_COLUMN = "batch_number"
TRUTH_COLUMNS = (NOISELESS_COLUMN, LAND_COLUMN, BATCH_COLUMN)


def curated_with_noiseless(
    seed: int, scale: float, group_number: int, day: str, batch_number: int, settings: TaskSettings
) -> pd.DataFrame:
    """The batch's curated rows (as fetch + validate store them) plus the TRUTH_COLUMNS."""
    from tasks.core.api_client import parse_body
    from tasks.core.schema import CANONICAL_SCHEMA, COLUMNS
    from tasks.validate.step import thresholds_of, validate_table

    served = batch_with_truth(seed, scale, group_number, day, batch_number)
    noiseless = served.pop(NOISELESS_COLUMN).to_numpy()
    land = served.pop(LAND_COLUMN).to_numpy()
    body = encode_body(group_number, day, batch_number, served)
    del served
    _, coerced = parse_body(body)
    verdict, _, keep = validate_table(coerced.table, coerced.problems, thresholds_of(settings))
    if verdict.status != "curated":
        raise SystemExit(f"batch {batch_number} would be quarantined: {verdict.reasons}")
    import pyarrow as pa

    table = coerced.table.filter(pa.array(keep)).select(list(COLUMNS)).cast(CANONICAL_SCHEMA)
    frame = table.to_pandas(date_as_object=False)
    frame[NOISELESS_COLUMN] = noiseless[keep]
    frame[LAND_COLUMN] = land[keep]
    frame[BATCH_COLUMN] = batch_number
    return frame


def split(frames: list[pd.DataFrame], share: float) -> Split:
    """The rows train uses: priced rows, split by the deterministic holdout."""
    train_parts, hold_parts = [], []
    for frame in frames:
        priced = pd.to_numeric(frame["price"], errors="coerce")
        frame = frame.loc[priced.notna() & (priced > 0)]
        in_holdout = holdout.holdout_scores(frame) < share
        hold_parts.append(frame.loc[in_holdout])
        train_parts.append(frame.loc[~in_holdout].drop(columns=list(TRUTH_COLUMNS)))
    return Split(
        train=pd.concat(train_parts, ignore_index=True),
        holdout=pd.concat(hold_parts, ignore_index=True),
    )


def quality_table(
    rows: pd.DataFrame,
    predictions: np.ndarray,
    baseline: np.ndarray,
    info_median: np.ndarray | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Per group (status, and ``by`` if given) and overall: log MAE vs the noise floor and
    the information floor (``info_median``: the best log-price prediction from the wire's
    columns, :mod:`bench.information_floor`), $ MAE vs the baseline."""
    price = model.target(rows)
    log_price = np.log(price)
    frame = pd.DataFrame(
        {
            "status": rows["status"].fillna("missing").astype(str).to_numpy(),
            "model_log": np.abs(np.log(predictions) - log_price),
            "floor_log": np.abs(rows[NOISELESS_COLUMN].to_numpy() - log_price),
            "info_log": np.abs(info_median - log_price) if info_median is not None else np.nan,
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
        frame["group"] = np.where(all_three_null(rows), "land?", "house")
    elif by == "kind":
        frame["group"] = np.where(
            rows[LAND_COLUMN].to_numpy(dtype=bool),
            "land",
            np.where(all_three_null(rows), "house, bed/bath/size null", "house"),
        )

    def summarise(group: pd.DataFrame) -> dict[str, float]:
        return {
            "rows": len(group),
            "log_mae": group["model_log"].mean(),
            "floor": group["floor_log"].mean(),
            "log_ratio": group["model_log"].mean() / group["floor_log"].mean(),
            "info_floor": group["info_log"].mean(),
            "info_ratio": group["model_log"].mean() / group["info_log"].mean(),
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
    out = pd.DataFrame(table).T
    if info_median is None:
        out = out.drop(columns=["info_floor", "info_ratio"])
    return out


def all_three_null(rows: pd.DataFrame) -> np.ndarray:
    """Rows whose bed, bath and house_size are all null (land, or a house that says nothing)."""
    return (rows["bed"].isna() & rows["bath"].isna() & rows["house_size"].isna()).to_numpy()


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    """mean(a - b) and its standard error, as text."""
    diff = a - b
    se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan
    return f"{diff.mean():+.5f} (SE {se:.5f}, {diff.mean() / se:+.1f} SE)"


def floor_checks(
    rows: pd.DataFrame,
    predictions: np.ndarray,
    info_median: np.ndarray,
    oracle_median: np.ndarray,
) -> list[str]:
    """The information floor's checks, as lines of text (see bench/README.md).

    ``oracle_median``: the best prediction from the TRUE features (the noiseless price), with
    the same price rules as the information floor: the noise floor, selection-aware.
    """
    log_price = np.log(model.target(rows))
    model_err = np.abs(np.log(predictions) - log_price)
    info_err = np.abs(info_median - log_price)
    noise_err = np.abs(rows[NOISELESS_COLUMN].to_numpy() - log_price)
    oracle_err = np.abs(oracle_median - log_price)
    seen = (
        rows["bed"].notna()
        & rows["bath"].notna()
        & rows["house_size"].notna()
        & rows["acre_lot"].notna()
    ).to_numpy()
    lines = [
        f"rows with bed, bath, house_size and acre_lot all known ({seen.sum():,}): "
        f"info - noise floor {_paired(info_err[seen], noise_err[seen])}; "
        f"info - oracle {_paired(info_err[seen], oracle_err[seen])} (both should be ~0)",
        f"all rows: info - noise floor {_paired(info_err, noise_err)}; "
        f"info - oracle {_paired(info_err, oracle_err)} (should be >= 0)",
    ]
    below = info_median >= log_price
    null3 = all_three_null(rows)
    for name, at in (("all rows", np.ones(below.size, bool)), ("bed, bath, size null", null3)):
        share, se = below[at].mean(), 0.5 / np.sqrt(max(1, at.sum()))
        lines.append(
            f"calibration, {name}: {share:.4f} of served log prices at or below the floor's "
            f"median ({(share - 0.5) / se:+.1f} SE from 0.5)"
        )
    status = rows["status"].astype(str).to_numpy()
    for name in [*sorted(set(status)), "overall"]:
        at = np.ones(status.size, bool) if name == "overall" else status == name
        lines.append(
            f"{name}: model - info {_paired(model_err[at], info_err[at])} "
            "(a model cannot be below the floor beyond sampling error)"
        )
    return lines


FORMATS = {
    "rows": "{:,.0f}",
    "log_mae": "{:.3f}",
    "floor": "{:.3f}",
    "log_ratio": "{:.2f}x",
    "info_floor": "{:.3f}",
    "info_ratio": "{:.2f}x",
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


def information_floor(rows: pd.DataFrame, seed: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """(the information floor's prediction, the selection-aware oracle's) per row, log price.

    Both know the price rules the rows passed: validation's price range and, for a batch
    with a price floor, the floor; neither knows the row's batch (a model does not), only
    its prior given status and state (:func:`bench.information_floor.regime_prior`).
    """
    from tasks.core.expectations import RANGES

    world = build_world(seed)
    wire = info.wire_rows(rows, world)
    counts = rows[BATCH_COLUMN].value_counts().to_dict()
    regimes, prior = info.regime_prior(wire, counts, world, info.Regime(*RANGES["price"]))
    median = info.information_medians(wire, world, regimes, prior, draws=draws, seed=seed)
    land = rows[LAND_COLUMN].to_numpy(dtype=bool)
    noise = np.where(land, info.gen.LAND_NOISE, info.gen.HOUSE_NOISE)
    noiseless = rows[NOISELESS_COLUMN].to_numpy()
    oracle = info.mixture_median(
        noiseless[:, None], noise[:, None], np.ones((len(rows), 1)), prior, regimes
    )
    return median, oracle


def _production_model(settings: TaskSettings) -> tuple[object, list[tuple[str, int]], str]:
    """The production model, the (day, batch number) of its training batches, its label."""
    import mlflow

    from tasks.core import registry
    from tasks.core.ledger import Ledger

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


GROUPINGS = ("state", "band", "land", "kind")


def _groupings(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUPINGS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown grouping {unknown}: choose from {GROUPINGS}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42, help="the simulator's seed")
    parser.add_argument("--group-number", type=int, default=None)
    parser.add_argument("--day", default=None)
    parser.add_argument("--batches", default=None, help="batch numbers, e.g. 1,2,3")
    parser.add_argument("--fit", action="store_true", help="fit a model here (no registry)")
    parser.add_argument("--params", default=None, help="JSON hyperparameters for --fit")
    parser.add_argument(
        "--by",
        type=_groupings,
        default=[],
        help=f"more tables, comma-separated: {', '.join(GROUPINGS)}",
    )
    parser.add_argument(
        "--draws", type=int, default=256, help="Monte Carlo draws per row (information floor)"
    )
    parser.add_argument("--no-info", action="store_true", help="skip the information floor")
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
        from tasks.train.search import SEARCH_SPACE

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
    info_median = oracle_median = None
    if not args.no_info:
        info_started = time.perf_counter()
        info_median, oracle_median = information_floor(data.holdout, args.seed, args.draws)
        print(
            f"information floor: {args.draws} draws per row, "
            f"{time.perf_counter() - info_started:.0f} s"
        )
    print(f"model: {label}")
    for by in [None, *args.by]:
        print()
        print(markdown(quality_table(data.holdout, predictions, baseline, info_median, by)))
    if info_median is not None and oracle_median is not None:
        print()
        for line in floor_checks(data.holdout, predictions, info_median, oracle_median):
            print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
