"""
# realtor_pipeline: one batch of the data API, from fetch to a (maybe) new production model

```
fetch -> batch_available -> validate -> drift_check -> decide -+-> train -> promote -+-> record
         (short-circuit:                                       +-> skip_training ----+
          API exhausted)
```

Each box except `batch_available`, `decide` and `skip_training` is a command line,
`python -m tasks.<name> [args]`, in its own pod (`PIPELINE_RUNTIME=kubernetes`) or as a
subprocess in the tasks' virtualenv (`PIPELINE_RUNTIME=local`). Each writes a small JSON
result (its XCom) and every later task gets `--batch-id` from fetch's result.

- **fetch** stores the next batch (raw zone + ledger). `exhausted` (the API has served every
  batch of the group and day) skips everything after it: the run ends green, nothing to do.
- **validate** curates the batch or quarantines it with its report.
- **drift_check** decides `train` or `skip` with reasons (a quarantined batch: `skip`, with the
  quarantine reason; too few rows: `skip`; drift or no model yet: `train`).
- **decide** follows that decision: **train** then **promote**, or **skip_training**.
- **record** writes the run summary (`reports/runs/batch_id=<id>/summary.json`) either way.

Every task is idempotent: a re-run for the same batch returns what the ledger recorded.

**Params** (Trigger DAG w/ config): `group_number` and `day` of the data API (defaults from
`GROUP_NUMBER`, `DAY`). The schedule is `PIPELINE_SCHEDULE` (default every 5 minutes, the
API's pace) or the Asset `realtor://live-drift`, whichever comes first: a drifted window of
live traffic (`realtor_monitor`) starts a run now. `none`: no cron; the live-drift Asset and
manual triggers still start it. To replay from batch 1, trigger `realtor_replay` first.

**Add a step**: docs/pipeline.md, "Add a step", lists every file a new step touches: its
package `tasks/<step>/`, its line in `dags/realtor/specs.py`, one line here
(`mine = pipeline_task("<step>", ["--batch-id", BATCH_ID])`, wired `promote >> mine`), its
image, the images workflow and the docs' tables.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Imported here (unused) so the DAG processor pre-imports the provider once in its parent
# process ([dag_processor] parsing_pre_import_modules) and each parse of this file stays fast.
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: F401
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param, TriggerRule, task

# dags/ is on sys.path when it is Airflow's dags folder; a Git-Sync checkout may nest it
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from realtor.assets import LIVE_DRIFT
from realtor.config import load_config
from realtor.factory import BATCH_ID, pipeline_task

CONFIG = load_config()
#: its cron or a live-drift event (realtor_monitor), whichever comes first; `none`: no cron,
#: only the live-drift event (and manual triggers)
SCHEDULE = (
    AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(CONFIG.schedule, timezone="UTC"), assets=LIVE_DRIFT
    )
    if CONFIG.schedule
    else LIVE_DRIFT
)
log = logging.getLogger(__name__)

default_args = {
    "owner": "realtor-mlops",
    "depends_on_past": False,
    "retries": CONFIG.retries,
    "retry_delay": timedelta(seconds=CONFIG.retry_delay_seconds),
    "retry_exponential_backoff": 2.0,  # 30 s, 60 s, 120 s... (a multiplier in Airflow 3.3)
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=5),  # pipeline tasks: their own, in specs.py
}

with DAG(
    dag_id="realtor_pipeline",
    description="fetch -> validate -> drift_check -> train/promote or skip -> record",
    doc_md=__doc__,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["realtor", "mlops", "continuous-training", f"runtime:{CONFIG.runtime}"],
    params={
        "group_number": Param(
            CONFIG.group_number,
            type="integer",
            minimum=1,
            maximum=10,
            description="the data API's group number (GROUP_NUMBER)",
        ),
        "day": Param(
            CONFIG.day,
            type="string",
            pattern=r"^[A-Za-z0-9_-]{1,32}$",
            description="the data API's day (DAY)",
        ),
    },
) as dag:
    fetch = pipeline_task(
        "fetch", ["--group-number", "{{ params.group_number }}", "--day", "{{ params.day }}"]
    )

    @task.short_circuit(
        ignore_downstream_trigger_rules=True,
        doc_md="Stops the run cleanly (every later task skipped) when fetch says `exhausted`.",
    )
    def batch_available(fetched: dict[str, Any]) -> bool:
        status = fetched.get("status")
        if status not in ("stored", "duplicate", "exhausted"):
            raise ValueError(f"fetch returned an unknown status {status!r}: {fetched}")
        return status != "exhausted"

    validate = pipeline_task("validate", ["--batch-id", BATCH_ID])
    drift_check = pipeline_task("drift_check", ["--batch-id", BATCH_ID])

    @task.branch(
        doc_md="Follows drift_check's decision: `train` -> train, `skip` -> skip_training."
    )
    def decide(decision: dict[str, Any]) -> str:
        verdict = decision.get("decision")
        reasons = "; ".join(decision.get("reasons") or [])
        if verdict == "train":
            log.info("training: %s", reasons)
            return "train"
        if verdict == "skip":
            log.info("skipping training: %s", reasons)
            return "skip_training"
        raise ValueError(f"drift_check returned an unknown decision {verdict!r}: {decision}")

    train = pipeline_task("train", ["--batch-id", BATCH_ID])
    promote = pipeline_task("promote", ["--batch-id", BATCH_ID])
    skip_training = EmptyOperator(
        task_id="skip_training",
        doc_md="No training for this batch: drift_check's reasons say why (see its XCom).",
    )
    record = pipeline_task(
        "record", ["--batch-id", BATCH_ID], trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )

    batch_available(fetch.output) >> validate >> drift_check
    decide(drift_check.output) >> [train, skip_training]
    train >> promote >> record
    skip_training >> record
