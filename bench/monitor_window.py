"""Benchmark: ``python -m tasks.monitor`` over one window of 1,000,000 logged requests.

The issue's target: under 60 s and under 1 GiB peak memory. The world:

- a PostgreSQL ledger (a fresh database on the test server, ``TEST_POSTGRES_ADMIN_URL``);
- the production model's training data: the simulator's full-range batch (batch 6 of the
  demo's seed) at ``--reference-scale``, in a file lake as a curated batch, and a registered
  version (a SQLite MLflow registry) carrying ``production`` with its ``trainings`` row, as
  ``tests/tasks/monitor/test_monitor.py`` builds them;
- the window: ``--rows`` inference_log rows in the format serving writes (each record parsed
  by serving's own ``parse_records`` and logged by ``log_rows``; one request a row), drawn
  with replacement from ``bench/payloads.py``'s realistic records (the same batch, another
  seed: live traffic like the training data), spread over the hour before the window's end,
  inserted with COPY. ``--shift`` makes a tenth of them luxury homes in Vermont.

Then the monitor runs once as its own process, as the DAG's pod would (``bench/measure.py``:
wall seconds and the peak RSS from ``wait4``), and the figures and its decision are printed.

    .venv/bin/python bench/monitor_window.py [--rows 1000000] [--shift] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from bench.measure import run_task  # noqa: E402
from bench.payloads import DEMO_SEED, FULL_RANGE_BATCH, realistic_records  # noqa: E402
from tests.support.postgres import fresh_database  # noqa: E402

MODEL = "realtor-monitor-bench"
TARGET_SECONDS, TARGET_MIB = 60.0, 1024
POOL = 50_000  # distinct records the window is drawn from
COLUMNS = (
    "request_id",
    "row_index",
    "model_name",
    "model_version",
    "predicted_at",
    "price",
    "features",
)


def reference(store, ledger, tracking_uri: str, scale: float) -> tuple[str, int]:
    """The production version and its training batch (the simulator's full-range batch)."""
    from data_api.scenarios import build_frame
    from tasks.core.ledger import Validation
    from tasks.core.schema import to_canonical
    from tests.tasks.factories import put_batch, register_champion

    frame = build_frame(DEMO_SEED, scale, 1, "Tuesday", FULL_RANGE_BATCH)
    table = to_canonical(pa.Table.from_pandas(frame, preserve_index=False)).table
    batch = put_batch(store, ledger, table, batch_number=FULL_RANGE_BATCH)
    with ledger.session() as session:  # the raw object serves as the curated one
        session.add(
            Validation(
                batch_id=batch.id,
                outcome="pass",
                status="curated",
                rows_in=table.num_rows,
                rows_out=table.num_rows,
                rows_dropped=0,
                curated_key=batch.raw_key,
            )
        )
    version = register_champion(
        tracking_uri, ledger, model_name=MODEL, batch_id=batch.id, training_batch_ids=[batch.id]
    )
    return version, table.num_rows


def logged_features(shift: bool) -> list[str]:
    """Serving's logged ``features`` JSON of :data:`POOL` realistic records."""
    from serving.records import parse_records

    records = realistic_records(POOL, seed=DEMO_SEED + 1, scale=0.25)
    if shift:  # a tenth: luxury homes in Vermont
        for record in records[: POOL // 10]:
            record.update(state="Vermont", city=None, zip_code=None, status="for_sale")
            for name, factor in (("house_size", 3.0), ("bed", 2.0), ("bath", 2.0)):
                if record[name] is not None:
                    record[name] *= factor
    parsed, _ = parse_records(json.dumps(records).encode(), len(records))
    return [json.dumps(row) for row in _features(parsed)]


def _features(parsed: list) -> list[dict]:
    from serving.inference_log import log_rows

    at = datetime.now(UTC)
    rows = log_rows(MODEL, "1", "x", [r.features() for r in parsed], [0.0] * len(parsed), at)
    return [row["features"] for row in rows]


def copy_window(ledger_url: str, version: str, pool: list[str], rows: int, end: datetime) -> None:
    """``rows`` inference_log rows, one request each, predicted over the hour before ``end``."""
    import psycopg

    rng = random.Random(DEMO_SEED)
    start = end - timedelta(hours=1)
    step = timedelta(hours=1) / rows
    dsn = ledger_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        statement = f"COPY inference_log ({', '.join(COLUMNS)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for i in range(rows):
                copy.write_row(
                    (
                        uuid.UUID(int=rng.getrandbits(128)).hex,
                        0,
                        MODEL,
                        version,
                        start + i * step,
                        round(rng.lognormvariate(12.6, 0.8), 2),
                        rng.choice(pool),
                    )
                )
        cursor.execute("ANALYZE inference_log")


def time_read(ledger_url: str, result: dict) -> float:
    """Seconds the window's read takes on its own (the rest is start-up, Evidently, report)."""
    from tasks.core.ledger import Ledger
    from tasks.monitor.live import read_features

    ledger = Ledger.open(ledger_url, upgrade=False)
    started = time.perf_counter()
    read_features(ledger, MODEL, result["first_log_id"], result["last_log_id"])
    seconds = time.perf_counter() - started
    ledger.engine.dispose()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-scale", type=float, default=0.25)
    parser.add_argument("--shift", action="store_true", help="a tenth luxury homes in Vermont")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    from tasks.core.ledger import Ledger
    from tasks.core.settings import TaskSettings
    from tasks.core.storage import open_store

    work = args.workdir or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    with fresh_database("realtor_bench_monitor") as ledger_url:
        env_settings = {
            "LEDGER_URL": ledger_url,
            "STORAGE_URL": f"file://{work / 'lake'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "MODEL_NAME": MODEL,
            "XCOM_RETURN_PATH": str(work / "xcom.json"),
        }
        settings = TaskSettings(**{k.lower(): v for k, v in env_settings.items()})
        ledger = Ledger.open(ledger_url)
        store = open_store(settings.storage_url, settings)
        started = time.perf_counter()
        version, ref_rows = reference(
            store, ledger, settings.mlflow_tracking_uri, args.reference_scale
        )
        pool = logged_features(args.shift)
        until = datetime.now(UTC).replace(microsecond=0)
        end = until - timedelta(seconds=settings.monitor_settle_seconds + 60)
        copy_window(ledger_url, version, pool, args.rows, end)
        ledger.engine.dispose()
        print(
            f"world: v{version} trained on {ref_rows:,} rows; {args.rows:,} logged requests "
            f"({POOL:,} distinct records) COPYed in {time.perf_counter() - started:.1f} s"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "LEDGER_"))},
            **env_settings,
            "LOG_FORMAT": "console",
        }
        measured = run_task("monitor", env, "--until", until.isoformat())
        read_seconds = time_read(ledger_url, measured.result)
    after = os.getloadavg()
    result = measured.result
    ok = measured.seconds < TARGET_SECONDS and measured.peak_rss_mib < TARGET_MIB
    print(
        f"monitor: {measured.seconds:.1f} s wall, {measured.cpu_seconds:.1f} s CPU, peak RSS {measured.peak_rss_mib:,} MiB "
        f"(targets < {TARGET_SECONDS:.0f} s, < {TARGET_MIB:,} MiB: {'met' if ok else 'MISSED'}); "
        f"load {load[0]:.1f} before, {after[0]:.1f} after"
    )
    print(
        f"window {result['first_log_id']}-{result['last_log_id']}: {result['rows']:,} rows; "
        f"reading them alone (tasks.monitor.live.read_features, in this process): "
        f"{read_seconds:.1f} s"
    )
    print(f"{result['decision']}: " + "; ".join(result["reasons"]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
