"""The table of pipeline tasks: which module, which image, how much CPU and memory, how long.

One :class:`TaskSpec` per ``tasks/<name>.py``. To add a task: write the module (a command
line ``python -m tasks.<name>``, see ``tasks/fetch/step.py``) and one line in the DAG that calls
``pipeline_task("<name>", ...)``. A task missing from :data:`TASKS` gets the defaults
(its own image, 250m/512Mi requested, 1 CPU/1536Mi limits, 30 minutes); add its line here
when it needs other resources, a longer timeout, or another task's image.

Resources (requests / limits; the kubernetes runtime; the local runtime ignores them):

| task | CPU req / limit | memory req / limit | timeout | image |
|---|---|---|---|---|
| fetch | 250m / 1 | 512Mi / 1536Mi | 15 min | fetch |
| validate | 500m / 1 | 1Gi / 1536Mi | 20 min | validate |
| drift_check | 500m / 1 | 1Gi / 1536Mi | 20 min | drift-check |
| train | 750m / 2 | 1536Mi / 2Gi | 60 min | train |
| promote | 250m / 1 | 768Mi / 1536Mi | 20 min | promote |
| record | 100m / 500m | 128Mi / 256Mi | 5 min | fetch (shared) |
| replay | 100m / 500m | 128Mi / 256Mi | 5 min | fetch (shared) |

``record`` and ``replay`` need exactly what ``fetch`` needs (httpx, SQLAlchemy, the store), so
they run in the fetch image with the command set to their own module; every other image's
ENTRYPOINT is its task, so the operator passes only arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the module tasks.<name>, and the Airflow task id
    image: str  # image name under the registry: images/<image>/
    resources: Resources
    timeout: timedelta
    summary: str  # one line for the task's doc_md

    @property
    def module(self) -> str:
        return f"tasks.{self.name}"

    @property
    def image_has_entrypoint(self) -> bool:
        """True when the image's ENTRYPOINT is this task (then only arguments are passed)."""
        return self.image == self.name.replace("_", "-")


_SMALL = Resources("100m", "128Mi", "500m", "256Mi")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "fetch",
            "fetch",
            Resources("250m", "512Mi", "1", "1536Mi"),
            timedelta(minutes=15),
            "Fetches the next batch of the data API into the raw zone (immutable Parquet, "
            "named by its sha256) and records it in the ledger; `exhausted` when the API "
            "has served every batch.",
        ),
        TaskSpec(
            "validate",
            "validate",
            Resources("500m", "1Gi", "1", "1536Mi"),
            timedelta(minutes=20),
            "Runs the Great Expectations suite on the raw batch: a curated copy without the "
            "bad rows, or the whole batch in quarantine with its validation report.",
        ),
        TaskSpec(
            "drift_check",
            "drift-check",
            Resources("500m", "1Gi", "1", "1536Mi"),
            timedelta(minutes=20),
            "Compares the curated batch with the data the production model was trained on "
            "(Evidently) and decides `train` or `skip`, always with readable reasons.",
        ),
        TaskSpec(
            "train",
            "train",
            # 750m requested (bursts to 2 CPU): with the rest of the platform it fits the
            # single-node budget and the pipeline quota (cluster/validate.sh checks both).
            Resources("750m", "1536Mi", "2", "2Gi"),
            timedelta(minutes=60),
            "Trains a challenger on the curated batches so far, logs it to MLflow (metrics, "
            "baseline, SHAP, lineage, reasons) and registers a new model version.",
        ),
        TaskSpec(
            "promote",
            "promote",
            Resources("250m", "768Mi", "1", "1536Mi"),
            timedelta(minutes=20),
            "Compares the challenger with the champion on the same holdout and moves the "
            "`production` alias only if it is better; records why either way.",
        ),
        TaskSpec(
            "record",
            "fetch",
            _SMALL,
            timedelta(minutes=5),
            "Writes the run summary of the batch (rows, validation, drift, decision, model, "
            "MAE, promotion and their reasons) to the store and to XCom.",
        ),
        TaskSpec(
            "replay",
            "fetch",
            _SMALL,
            timedelta(minutes=5),
            "Restarts the data API's batches for (group, day) and resets the ledger cursor, "
            "so the next runs replay from batch 1 (stored batches are deduplicated).",
        ),
    )
}


#: a task not (yet) in the table: its own image, medium resources, 30 minutes
DEFAULT_RESOURCES = Resources("250m", "512Mi", "1", "1536Mi")
DEFAULT_TIMEOUT = timedelta(minutes=30)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def spec_for(name: str) -> TaskSpec:
    """The task's line in :data:`TASKS`, or the defaults for a new task (its own image
    ``images/<name-with-dashes>``, :data:`DEFAULT_RESOURCES`, :data:`DEFAULT_TIMEOUT`)."""
    if name in TASKS:
        return TASKS[name]
    if not _NAME.match(name):
        raise ValueError(
            f"task name {name!r}: use the module name of tasks/<name>.py "
            "(lowercase letters, digits and underscores)"
        )
    return TaskSpec(
        name,
        name.replace("_", "-"),
        DEFAULT_RESOURCES,
        DEFAULT_TIMEOUT,
        f"Runs `python -m tasks.{name}` (not in dags/realtor/specs.py yet: default image, "
        "resources and timeout).",
    )
