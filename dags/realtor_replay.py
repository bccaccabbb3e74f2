"""
# realtor_replay: start the data API's batches over, for a clean replay

Calls the data API's `/restart_data_generation?group_number=N&day=D` and resets the ledger's
cursor for (group, day) (`python -m tasks.replay`). The next `realtor_pipeline` runs fetch
batch 1 again: a batch the ledger already holds with the same content comes back as
`duplicate` and every later task returns what it recorded, so a replay changes nothing that
was already decided. Manual only (no schedule); params as in `realtor_pipeline`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Imported here (unused) so the DAG processor pre-imports it (see realtor_pipeline.py).
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: F401
from airflow.sdk import DAG, Param

# dags/ is on sys.path when it is Airflow's dags folder; a Git-Sync checkout may nest it
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from realtor.config import load_config
from realtor.factory import pipeline_task

CONFIG = load_config()

with DAG(
    dag_id="realtor_replay",
    description="restart the data API's batches and reset the ledger cursor",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "realtor-mlops",
        "retries": CONFIG.retries,
        "retry_delay": timedelta(seconds=CONFIG.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["realtor", "mlops", "replay", f"runtime:{CONFIG.runtime}"],
    params={
        "group_number": Param(CONFIG.group_number, type="integer", minimum=1, maximum=10),
        "day": Param(CONFIG.day, type="string", pattern=r"^[A-Za-z0-9_-]{1,32}$"),
    },
) as dag:
    pipeline_task(
        "replay", ["--group-number", "{{ params.group_number }}", "--day", "{{ params.day }}"]
    )
