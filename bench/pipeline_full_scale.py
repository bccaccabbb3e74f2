"""Benchmark: the lifecycle at full scale through the tasks' command lines.

The simulator at ``--scale 1.0`` (six course-size batches, about 1.08M rows), then for each
batch fetch -> validate -> drift_check -> (train -> promote when the decision is train), each
as its own process (as a pod would run it). Reports seconds and peak RSS per task and batch,
and the decision of each step. Every task must fit a 2 GiB pod: the table says whether it did.

    .venv/bin/python bench/pipeline_full_scale.py [--scale 1.0] [--s3]

``--s3``: SeaweedFS S3 + PostgreSQL ledger + a real MLflow server (Postgres backend,
artifacts proxied to S3) instead of files, SQLite and a local MLflow store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import run_task  # noqa: E402
from tests.data_api.server import running_data_api  # noqa: E402
from tests.support.mlflow_server import mlflow_server  # noqa: E402
from tests.support.postgres import fresh_database  # noqa: E402
from tests.support.seaweed import seaweedfs  # noqa: E402

POD_LIMIT_MIB = 2048


def run_measured(task: str, env: dict[str, str], *args: str) -> tuple[dict, float, int]:
    measured = run_task(task, env, *args)
    return measured.result, measured.seconds, measured.peak_rss_mib


def describe(task: str, result: dict) -> str:
    if task == "fetch":
        return f"{result['status']}, {result.get('rows', 0):,} rows"
    if task == "validate":
        return f"{result['status']} ({result['outcome']}), {result['rows_out']:,} kept"
    if task == "drift_check":
        return f"{result['decision']}: {'; '.join(result['reasons'])}"
    if task == "train":
        m = result["metrics"]
        return f"v{result['model_version']}, MAE {m['mae']:,.0f} (baseline {result['baseline_mae']:,.0f})"
    if task == "promote":
        return ("promoted: " if result["promoted"] else "rejected: ") + "; ".join(result["reasons"])
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--s3", action="store_true")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the lake, ledger and MLflow store in this (new) folder, e.g. for "
        "bench/model_quality.py; default: a temporary folder",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=False)
            work = args.keep.resolve()
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        api = stack.enter_context(running_data_api(scale=args.scale, seed=42))
        env = {
            **os.environ,
            "DATA_API_URL": api,
            "XCOM_RETURN_PATH": str(work / "return.json"),
            "FETCH_TIMEOUT_SECONDS": "300",
        }
        if args.s3:
            s3 = stack.enter_context(seaweedfs(work / "seaweedfs"))
            mlflow_db = stack.enter_context(fresh_database("mlflow_bench"))
            env |= s3.env() | {
                "STORAGE_URL": f"s3://{s3.bucket}/lake",
                "LEDGER_URL": stack.enter_context(fresh_database("realtor_bench")),
                "MLFLOW_TRACKING_URI": stack.enter_context(mlflow_server(mlflow_db, s3, work)),
            }
        else:
            env |= {
                "STORAGE_URL": f"file://{work / 'lake'}",
                "LEDGER_URL": f"sqlite:///{work / 'ledger.db'}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            }
        started = time.perf_counter()
        print(
            f"pipeline benchmark: scale {args.scale}, {'S3+Postgres+MLflow server' if args.s3 else 'files+SQLite'}"
        )
        print(
            "| batch | task | seconds | peak RSS MiB | fits 2 GiB | outcome |\n|---:|---|---:|---:|---|---|"
        )
        while True:
            fetched, seconds, rss = run_measured("fetch", env)
            if fetched["status"] == "exhausted":
                break
            number, batch = fetched["batch_number"], str(fetched["batch_id"])
            steps = [("fetch", fetched, seconds, rss)]
            for task in ("validate", "drift_check"):
                steps.append((task, *run_measured(task, env, "--batch-id", batch)))
            if steps[-1][1]["decision"] == "train":
                for task in ("train", "promote"):
                    steps.append((task, *run_measured(task, env, "--batch-id", batch)))
            for task, result, seconds, rss in steps:
                fits = "yes" if rss < POD_LIMIT_MIB else "NO"
                print(
                    f"| {number} | {task} | {seconds:.1f} | {rss:,} | {fits} | {describe(task, result)} |",
                    flush=True,
                )
        print(f"\nall batches: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
