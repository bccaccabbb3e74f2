"""
# realtor_monitor: live traffic against the production model's training data

```
monitor -> live_drift_detected -> emit_live_drift (outlet: realtor://live-drift)
           (short-circuit: only a drifted window goes on)
```

- **monitor** (`python -m tasks.monitor --until <data_interval_end>`) reads the inference log
  since the last window it consumed (each logged request once), compares the input features
  with the production model's training batches (Evidently, the same code as drift_check) and
  records a window: `stable`, `drifted` or `too_few_rows`, with reasons. A re-run of the same
  scheduled run returns the window it recorded.
- **live_drift_detected** lets only a `drifted` window through; `stable` and `too_few_rows`
  end the run green.
- **emit_live_drift** emits an event of the Asset `realtor://live-drift`; `realtor_pipeline`
  is scheduled on its cron *or* that Asset, so a drifted window starts it now: new data is
  fetched without waiting for the next scheduled run.

The schedule is `MONITOR_SCHEDULE` (default hourly; `none` for manual runs only). The latest
window's gauges are on serving's /metrics (`realtor_live_*`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Imported here (unused) so the DAG processor pre-imports it (see realtor_pipeline.py).
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: F401
from airflow.sdk import DAG, task

# dags/ is on sys.path when it is Airflow's dags folder; a Git-Sync checkout may nest it
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from realtor.assets import LIVE_DRIFT
from realtor.config import load_config
from realtor.factory import pipeline_task

CONFIG = load_config()
log = logging.getLogger(__name__)

with DAG(
    dag_id="realtor_monitor",
    description="monitor live traffic -> a drifted window starts realtor_pipeline (an Asset)",
    doc_md=__doc__,
    schedule=CONFIG.monitor_schedule,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "realtor-mlops",
        "depends_on_past": False,
        "retries": CONFIG.retries,
        "retry_delay": timedelta(seconds=CONFIG.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=5),
    },
    tags=["realtor", "mlops", "monitoring", f"runtime:{CONFIG.runtime}"],
) as dag:
    monitor = pipeline_task("monitor", ["--until", "{{ data_interval_end.isoformat() }}"])

    @task.short_circuit(doc_md="Goes on only when the window is `drifted`.")
    def live_drift_detected(window: dict[str, Any]) -> bool:
        decision = window.get("decision")
        if decision not in ("stable", "drifted", "too_few_rows"):
            raise ValueError(f"monitor returned an unknown decision {decision!r}: {window}")
        log.info("window %s: %s", decision, "; ".join(window.get("reasons") or []))
        return decision == "drifted"

    @task(outlets=[LIVE_DRIFT], doc_md="Emits the live-drift Asset event (starts the pipeline).")
    def emit_live_drift(window: dict[str, Any]) -> dict[str, Any]:
        return {k: window.get(k) for k in ("window_id", "drift_share", "reasons")}

    gate = live_drift_detected(monitor.output)
    gate >> emit_live_drift(monitor.output)
