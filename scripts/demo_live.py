"""``make demo``'s second act: live traffic, the monitor, and the pipeline a drift starts.

After the batches, the demo starts serving (shadow scoring on) on its stores and:

1. sends live requests drawn from the curated rows the production model was trained on
   (``scripts/live_traffic.py``), waits until serving has logged them, and runs
   ``realtor_monitor`` (``airflow dags test``): a ``stable`` window, nothing emitted;
2. sends requests from a shifted distribution (one state and luxury homes over-represented)
   and runs ``realtor_monitor`` again: a ``drifted`` window, whose last task emits the Asset
   ``realtor://live-drift``. Airflow queues a run of ``realtor_pipeline`` for it
   (``asset_dag_run_queue`` in its metadata; Airflow queues only an unpaused DAG, so the demo
   unpauses ``realtor_pipeline`` first). With no scheduler in the demo, the demo starts
   that queued run itself (``airflow dags test realtor_pipeline``) and removes the queue entry
   it consumed, saying so; that run's drift_check has the live window as a reason.
3. once serving has loaded the version that run registered as ``challenger`` beside production
   (``SERVING_SHADOW=true``), sends usual traffic again and says how the two versions' prices
   compare (``shadow_predictions``: the Monitoring page's shadow agreement);
4. prices a few houses and explains one on the model serving now.

The monitor's window ends ``MONITOR_SETTLE_SECONDS`` before it runs (30 s by default, for
transactions still in flight); the demo sets it to 1 s and waits for serving's log instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.payloads import request_record  # noqa: E402
from scripts.live_traffic import Shift, sample_records, send  # noqa: E402
from scripts.local_apps import say, serving, try_serving  # noqa: E402

#: records of each kind of live traffic the demo sends
LIVE_RECORDS = 1_000
#: records sent once the shadow challenger scores beside production
SHADOW_RECORDS = 500
PIPELINE = "realtor_pipeline"


class AirflowRunner(Protocol):
    def run(self, args: list[str], log_path: Path) -> int: ...


@dataclass(frozen=True)
class WindowLine:
    traffic: str
    window_id: int
    rows: int
    decision: str
    drift_share: float | None
    reasons: list[str]


def serving_environment(env: dict[str, str]) -> dict[str, str]:
    """Serving on the demo's stores, scoring live requests with the challenger too, and
    checking the registry every 2 s (10 s by default) so the new challenger comes quickly."""
    return {
        **env,
        "SERVING_SHADOW": env.get("SERVING_SHADOW", "true"),
        "SERVING_POLL_INTERVAL_SECONDS": env.get("SERVING_POLL_INTERVAL_SECONDS", "2"),
    }


def wait_shadow(url: str, timeout: float = 120.0) -> dict[str, Any] | None:
    """/model's shadow section once serving scores with a challenger; None if it never does."""
    import httpx

    deadline = time.monotonic() + timeout
    shadow: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        shadow = httpx.get(f"{url}/model", timeout=10).json().get("shadow")
        if shadow and shadow.get("scoring"):
            return shadow
        time.sleep(1)
    say(f"    the shadow never started scoring: {shadow}")
    return None


def shadow_scene(url: str, pool: list[dict[str, Any]], model_name: str, settle: float) -> None:
    """Usual traffic once the new challenger scores beside production; what the two said."""
    from tasks.core.ledger import Ledger
    from tasks.core.monitoring_reads import shadow_agreement

    say("serving: waiting for it to load the new challenger beside production (shadow)...")
    shadow = wait_shadow(url)
    if shadow is None:
        return
    say(f"    challenger v{shadow['challenger_version']} scores {shadow['sample']:.0%} of requests")
    send_traffic(url, "shadowed", None, 3, pool, "like the training data", settle)
    ledger = Ledger.open(os.environ["LEDGER_URL"])
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [
            r
            for r in shadow_agreement(ledger, model_name)
            if str(r["challenger_version"]) == str(shadow["challenger_version"])
        ]
        if rows and rows[0]["compared"] >= SHADOW_RECORDS:
            break
        time.sleep(0.5)
    for row in rows:
        median = row["median_abs_log_diff"]
        say(
            f"    shadow: v{row['challenger_version']} beside production v"
            f"{row['production_version']} on {row['compared']:,} predictions: median "
            f"|Δ log10 price| {median:.3f}, {row['share_apart']:.1%} more than 10% apart "
            "(the UI's Monitoring page; promote says the same once it compares them)"
        )


def training_pool(model_name: str) -> tuple[str, list[dict[str, Any]]]:
    """(version, records) of the curated batches the production model was trained on.

    The usual traffic is drawn from them: users asking about houses like those the model
    learnt from (the simulator's later batches differ from the earlier ones by design).
    """
    import pandas as pd
    from sqlalchemy import select

    from tasks.core.lake import read_table
    from tasks.core.ledger import Ledger, Promotion
    from tasks.core.lifecycle_ledger import curated_validations, training_of_version
    from tasks.core.storage import open_store

    ledger = Ledger.open(os.environ["LEDGER_URL"])
    with ledger.session() as session:
        version = session.scalar(
            select(Promotion.challenger_version)
            .where(Promotion.model_name == model_name, Promotion.promoted.is_(True))
            .order_by(Promotion.id.desc())
        )
    training = training_of_version(ledger, model_name, version) if version else None
    if training is None:
        raise RuntimeError(f"no promoted version of {model_name} in the ledger: no usual traffic")
    store = open_store(os.environ["STORAGE_URL"])
    validations = curated_validations(ledger, training.training_batch_ids)
    frames = [
        read_table(store, v.curated_key).to_pandas()
        for v in validations.values()
        if v.curated_key is not None
    ]
    rows = pd.concat(frames, ignore_index=True).to_dict("records")
    return version, [r for r in map(request_record, rows) if r is not None]


def wait_logged(prefix: str, rows: int, timeout: float = 60.0) -> int:
    """Wait until serving's inference log holds ``rows`` rows of requests ``<prefix>-*``."""
    from sqlalchemy import func, select

    from tasks.core.ledger import InferenceLog, Ledger

    ledger = Ledger.open(os.environ["LEDGER_URL"])
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with ledger.session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(InferenceLog)
                .where(InferenceLog.request_id.like(f"{prefix}-%"))
            )
        if count >= rows:
            return int(count)
        time.sleep(0.3)
    raise TimeoutError(
        f"serving logged {count} of the {rows} rows sent as {prefix}-* in {timeout:.0f} s: "
        "see serving's log (SERVING_INFERENCE_LOG_ENABLED, the ledger)"
    )


def latest_window_line(traffic: str, model_name: str) -> WindowLine:
    from tasks.core.ledger import Ledger
    from tasks.core.monitor_ledger import recent_windows

    windows = recent_windows(Ledger.open(os.environ["LEDGER_URL"]), model_name, limit=1)
    if not windows:
        raise RuntimeError("realtor_monitor ran but recorded no window: see its log")
    window = windows[-1]
    return WindowLine(
        traffic, window.id, window.rows, window.decision, window.drift_share, list(window.reasons)
    )


def queued_runs(airflow_db: Path, dag_id: str) -> int:
    """Asset events waiting to start ``dag_id`` (rows of Airflow's ``asset_dag_run_queue``)."""
    with sqlite3.connect(airflow_db) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM asset_dag_run_queue WHERE target_dag_id = ?", (dag_id,)
        ).fetchone()
    return int(count)


def consume_queue(airflow_db: Path, dag_id: str) -> None:
    """Remove the queue entries the demo starts itself (a scheduler would, creating the run)."""
    with sqlite3.connect(airflow_db) as db:
        db.execute("DELETE FROM asset_dag_run_queue WHERE target_dag_id = ?", (dag_id,))


def monitor(airflow: AirflowRunner, traffic: str, logs: Path, model_name: str) -> WindowLine:
    log_path = logs / f"monitor-{traffic}.log"
    say(f"realtor_monitor after the {traffic} traffic (airflow dags test; log {log_path})")
    if airflow.run(["dags", "test", "realtor_monitor"], log_path):
        raise RuntimeError(f"realtor_monitor failed: see {log_path}")
    line = latest_window_line(traffic, model_name)
    share = "-" if line.drift_share is None else f"{line.drift_share:.2f}"
    say(
        f"    window {line.window_id}: {line.decision} ({line.rows:,} requests, drift share {share})"
    )
    for reason in line.reasons:
        say(f"      - {reason}")
    return line


def send_traffic(
    url: str,
    traffic: str,
    shift: Shift | None,
    seed: int,
    pool: list[dict[str, Any]] | None,
    what: str,
    settle_seconds: float,
) -> None:
    count = SHADOW_RECORDS if traffic == "shadowed" else LIVE_RECORDS
    records = sample_records(count, shift=shift, seed=seed, pool=pool)
    prefix = f"demo-{traffic}-{int(time.time())}"
    say(f"live traffic, {traffic}: {count:,} houses {what}")
    result = send(url, records, request_prefix=prefix, progress=sys.stderr)
    say(
        f"    {result.requests} requests in {result.seconds:.1f} s, answered by "
        f"v{', v'.join(result.model_versions)}"
    )
    wait_logged(prefix, count)
    time.sleep(settle_seconds + 0.5)  # the monitor's window ends MONITOR_SETTLE_SECONDS ago


def describe(shift: Shift) -> str:
    return (
        f"from a shifted mix ({shift.state_share:.0%} from {shift.state}, "
        f"{shift.luxury_share:.0%} homes of {shift.luxury_sqft:,.0f} sq ft and up)"
    )


def live_act(
    airflow: AirflowRunner,
    env: dict[str, str],
    conf: dict[str, Any],
    logs: Path,
    airflow_db: Path,
) -> tuple[list[WindowLine], bool]:
    """The act; returns the windows it made and whether the Asset started the pipeline."""
    model_name = env.get("MODEL_NAME", "realtor-price")
    windows: list[WindowLine] = []
    started = False
    settle = float(env.get("MONITOR_SETTLE_SECONDS", "30"))
    version, pool = training_pool(model_name)
    shift = Shift()
    # an Asset event queues only an unpaused DAG (Airflow pauses new DAGs at first)
    if airflow.run(["dags", "unpause", PIPELINE], logs / "unpause.log"):
        raise RuntimeError(f"airflow dags unpause {PIPELINE} failed: see {logs / 'unpause.log'}")
    say("serving: loading the production model, shadow scoring on (python -m serving)...")
    with serving(serving_environment(env)) as url:
        usual = f"drawn from the {len(pool):,} curated rows v{version} was trained on"
        send_traffic(url, "usual", None, 1, pool, usual, settle)
        windows.append(monitor(airflow, "usual", logs, model_name))
        send_traffic(url, "shifted", shift, 2, None, describe(shift), settle)
        windows.append(monitor(airflow, "shifted", logs, model_name))
        queued = queued_runs(airflow_db, PIPELINE)
        if queued:
            say(
                f"the live-drift Asset queued a run of {PIPELINE}; no scheduler runs in the "
                "demo, so it starts that run itself (airflow dags test), as the scheduler would"
            )
            consume_queue(airflow_db, PIPELINE)
            log_path = logs / "run-live-drift.log"
            say(f"{PIPELINE}, started by the live drift (log {log_path})")
            if airflow.run(["dags", "test", PIPELINE, "-c", json.dumps(conf)], log_path):
                raise RuntimeError(f"the pipeline run the live drift started failed: {log_path}")
            started = True
            shadow_scene(url, pool, model_name, settle)
        else:
            say(f"no run of {PIPELINE} was queued: the monitor emitted no live-drift event")
        try_serving(url)
    say("serving stopped")
    return windows, started


def print_windows(windows: list[WindowLine]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Live traffic, window by window (realtor_monitor)", show_lines=True)
    for column in ("traffic", "window", "requests", "decision", "drift share", "reasons"):
        table.add_column(column, overflow="fold")
    for line in windows:
        table.add_row(
            line.traffic,
            str(line.window_id),
            f"{line.rows:,}",
            line.decision,
            "-" if line.drift_share is None else f"{line.drift_share:.2f}",
            "\n".join(f"- {r}" for r in line.reasons),
        )
    Console(width=140).print(table)
