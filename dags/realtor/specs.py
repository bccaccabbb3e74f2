"""The table of pipeline steps: the ONLY list of them.

One :class:`TaskSpec` per step package ``tasks/<step>/``: its image, CPU and memory (the
kubernetes runtime; the local runtime ignores them), timeout and one-line summary. Everything
else that names the steps reads :data:`TASKS`, or a test checks it against it
(``tests/support/step_list.py``): the step packages, the images folder, the images workflow's
matrix, the docs' tables, the DAG's pipeline tasks. A name that is not here is refused
(:func:`spec_for`). To add a step, follow docs/pipeline.md, "Add a step": every file it touches.

``record`` and ``replay`` need exactly what ``fetch`` needs (httpx, SQLAlchemy, the store), so
they run in the fetch image with the command set to their own module; every other image's
ENTRYPOINT is its step, so the operator passes only arguments.
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
            "monitor",
            "monitor",
            Resources("500m", "1Gi", "1", "1536Mi"),
            timedelta(minutes=20),
            "Compares a window of live requests (the inference log) with the production "
            "model's training data (Evidently): `stable`, `drifted` or `too_few_rows`, with "
            "readable reasons (its own DAG, realtor_monitor).",
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


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownStepError(LookupError):
    """A step name that is not in :data:`TASKS`."""


def spec_for(name: str) -> TaskSpec:
    """The step's line in :data:`TASKS`; an unknown name is an error saying what to do."""
    if name in TASKS:
        return TASKS[name]
    shape = "" if _NAME.match(name) else " (and a step name is lowercase letters, digits, '_')"
    raise UnknownStepError(
        f"step {name!r} is not in dags/realtor/specs.py's TASKS{shape}: add its line there "
        f"(image, resources, timeout, summary), with the other files docs/pipeline.md's "
        f'"Add a step" lists; known steps: {", ".join(TASKS)}'
    )


def step_images() -> dict[str, str]:
    """Each image a step builds, with the step that is its ENTRYPOINT (``images/<image>/``)."""
    return {spec.image: spec.name for spec in TASKS.values() if spec.image_has_entrypoint}
