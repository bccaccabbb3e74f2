"""Benchmark: fetch the course-size batches (scale 1.0) with the real fetch task.

Starts the simulator at scale 1.0, then runs ``python -m tasks.fetch`` once per batch as a
separate process (as a pod would), and reports wall seconds and the process's peak RSS
(``wait4`` rusage), for a file:// lake + SQLite ledger and for SeaweedFS S3 + PostgreSQL
when ``--s3`` is given. Not a test: run on demand (``make bench``) and copy the table into
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import run_task  # noqa: E402
from tests.data_api.server import running_data_api  # noqa: E402
from tests.support.postgres import fresh_database, postgres_available  # noqa: E402
from tests.support.seaweed import seaweedfs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--s3", action="store_true", help="SeaweedFS + PostgreSQL instead of files")
    args = parser.parse_args()

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fetch-")))
        url = stack.enter_context(running_data_api(scale=args.scale, seed=42))
        env = {
            **os.environ,
            "DATA_API_URL": url,
            "XCOM_RETURN_PATH": str(work / "return.json"),
            "FETCH_TIMEOUT_SECONDS": "300",
        }
        backend = "file + SQLite"
        if args.s3:
            if reason := postgres_available():
                raise SystemExit(f"--s3 needs PostgreSQL on 127.0.0.1:5432: {reason}")
            s3 = stack.enter_context(seaweedfs(work / "seaweedfs"))
            env |= s3.env() | {
                "STORAGE_URL": f"s3://{s3.bucket}/lake",
                "LEDGER_URL": stack.enter_context(fresh_database("realtor_bench")),
            }
            backend = "SeaweedFS S3 + PostgreSQL"
        else:
            env |= {
                "STORAGE_URL": f"file://{work / 'lake'}",
                "LEDGER_URL": f"sqlite:///{work / 'ledger.db'}",
            }
        print(f"fetch benchmark: scale {args.scale}, {backend}")
        print(
            f"{'batch':>5} {'rows':>9} {'payload MB':>10} {'parquet MB':>10} {'seconds':>8} {'peak RSS MiB':>12}"
        )
        while True:
            measured = run_task("fetch", env)
            result, seconds, rss = measured.result, measured.seconds, measured.peak_rss_mib
            if result["status"] == "exhausted":
                break
            print(
                f"{result['batch_number']:>5} {result['rows']:>9,} {result['payload_bytes'] / 1e6:>10.1f}"
                f" {result['bytes'] / 1e6:>10.1f} {seconds:>8.2f} {rss:>12,}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
