"""The pipeline's configuration, read from the Airflow process's environment at parse time.

Pure: :func:`load_config` reads a mapping (``os.environ`` by default) and validates it, it
opens nothing and imports nothing heavy. Errors say which variable is wrong and what to set.

| variable | default | meaning |
|---|---|---|
| ``PIPELINE_RUNTIME`` | ``local`` | ``kubernetes`` (a pod per task) or ``local`` (a subprocess per task) |
| ``PIPELINE_IMAGE_REGISTRY`` | ``docker.io/realtor-mlops`` | where the task images live |
| ``PIPELINE_IMAGE_TAG`` | (none) | the commit SHA the images were built from; required by ``kubernetes`` |
| ``PIPELINE_NAMESPACE`` | ``pipeline`` | namespace of the task pods |
| ``PIPELINE_SERVICE_ACCOUNT`` | ``pipeline-runner`` | service account of the task pods |
| ``PIPELINE_ENV_CONFIGMAP`` / ``PIPELINE_ENV_SECRET`` | ``pipeline-env`` / ``pipeline-secrets`` | the tasks' environment in the cluster |
| ``PIPELINE_TASKS_PYTHON`` | ``<repo>/.venv/bin/python`` | the tasks' interpreter (``local``) |
| ``PIPELINE_REPO_ROOT`` | the folder above ``dags/`` | working directory of the tasks (``local``) |
| ``PIPELINE_LOCAL_PRELOAD`` | ``1`` | fork each task's process from a launcher that imported its libraries once (``local``); ``0``: a fresh interpreter per task, as a pod (``make airflow`` sets it: its scheduler runs each task in a process of its own) |
| ``PIPELINE_LOCAL_LAUNCHERS`` | (none) | a folder where another process serves launchers (``<module>.socket``, e.g. the test session's): with preload on, a task forks from the one serving there, if any, instead of starting its own, so one machine pays each task's imports once (``local``) |
| ``PIPELINE_SCHEDULE`` | ``*/5 * * * *`` | cron of ``realtor_pipeline`` (the live-drift Asset also starts it); ``none``: no cron, the Asset and manual runs only |
| ``MONITOR_SCHEDULE`` | ``@hourly`` | cron of ``realtor_monitor``; ``none`` for manual runs only |
| ``PIPELINE_RETRIES`` | ``2`` | retries per task (exponential backoff from ``PIPELINE_RETRY_DELAY_SECONDS``) |
| ``PIPELINE_RETRY_DELAY_SECONDS`` | ``30`` | first retry delay; doubles each retry, at most 10 minutes |
| ``GROUP_NUMBER`` / ``DAY`` | ``1`` / ``Tuesday`` | defaults of the DAG's params (the data API's group and day) |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Runtime = Literal["kubernetes", "local"]
RUNTIMES: tuple[str, ...] = ("kubernetes", "local")
DEFAULT_REGISTRY = "docker.io/realtor-mlops"
#: an immutable image tag: a git commit SHA, abbreviated (7+ hex digits) or full (40)
COMMIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_DAY = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
#: the repository root: ``dags/realtor/config.py`` -> ``dags/`` -> the repo
REPO_ROOT = Path(__file__).resolve().parents[2]


class PipelineConfigError(ValueError):
    """A pipeline setting is missing or invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class PipelineConfig:
    runtime: Runtime
    image_registry: str
    image_tag: str | None
    namespace: str
    service_account: str
    env_configmap: str
    env_secret: str
    tasks_python: Path
    repo_root: Path
    local_preload: bool
    local_launchers: Path | None
    schedule: str | None
    monitor_schedule: str | None
    retries: int
    retry_delay_seconds: float
    group_number: int
    day: str

    def image(self, image_name: str) -> str:
        """``<registry>/<image>:<sha>`` for the kubernetes runtime (the tag was validated)."""
        if self.image_tag is None:
            raise PipelineConfigError(
                "PIPELINE_IMAGE_TAG is not set: set it to the commit SHA the task images were "
                "built from (e.g. `git rev-parse HEAD`)"
            )
        return f"{self.image_registry}/{image_name}:{self.image_tag}"


def validate_image_tag(tag: str | None) -> str:
    """The tag itself if it is an immutable commit SHA; else a :class:`PipelineConfigError`."""
    if tag is None or not tag.strip():
        raise PipelineConfigError(
            "PIPELINE_IMAGE_TAG is empty: the kubernetes runtime needs the commit SHA the task "
            "images were built from (e.g. `git rev-parse HEAD`), never a moving tag"
        )
    tag = tag.strip()
    if tag.lower() == "latest":
        raise PipelineConfigError(
            "PIPELINE_IMAGE_TAG=latest is refused: `latest` moves, so a retry or a replay could "
            "run other code than the first attempt; set the commit SHA the images were built from"
        )
    if not COMMIT_SHA.match(tag):
        raise PipelineConfigError(
            f"PIPELINE_IMAGE_TAG={tag!r} is not a commit SHA (7 to 40 lowercase hex digits); "
            "the task images are tagged with the commit they were built from"
        )
    return tag


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PipelineConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise PipelineConfigError(f"{name}={value} is out of range: {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise PipelineConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise PipelineConfigError(f"{name}={value} must be >= 0")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise PipelineConfigError(f"{name}={raw!r}: use 1 or 0")


def _schedule(raw: str) -> str | None:
    """A cron expression or preset, or None (manual runs only) for ``none``/empty."""
    return None if raw.lower() in ("", "none", "null") else raw


def load_config(environ: Mapping[str, str] | None = None) -> PipelineConfig:
    """Read and validate the pipeline's settings (``os.environ`` unless given)."""
    env = os.environ if environ is None else environ
    runtime = env.get("PIPELINE_RUNTIME", "local").strip().lower() or "local"
    if runtime not in RUNTIMES:
        raise PipelineConfigError(
            f"PIPELINE_RUNTIME={runtime!r}: use 'kubernetes' (a pod per task) or 'local' "
            "(a subprocess per task in the tasks' virtualenv)"
        )
    tag = env.get("PIPELINE_IMAGE_TAG")
    if runtime == "kubernetes":
        tag = validate_image_tag(tag)
    elif tag is not None and tag.strip():
        tag = validate_image_tag(tag)  # a wrong tag is wrong whatever the runtime
    else:
        tag = None
    repo_root = Path(env.get("PIPELINE_REPO_ROOT", "").strip() or REPO_ROOT)
    tasks_python = Path(
        env.get("PIPELINE_TASKS_PYTHON", "").strip() or repo_root / ".venv" / "bin" / "python"
    )
    schedule = env.get("PIPELINE_SCHEDULE", "*/5 * * * *").strip()
    monitor_schedule = env.get("MONITOR_SCHEDULE", "@hourly").strip()
    day = env.get("DAY", "Tuesday").strip() or "Tuesday"
    if not _DAY.match(day):
        raise PipelineConfigError(f"DAY={day!r}: must be 1-32 letters, digits, '_' or '-'")
    return PipelineConfig(
        runtime=runtime,  # type: ignore[arg-type]  # checked against RUNTIMES above
        image_registry=env.get("PIPELINE_IMAGE_REGISTRY", "").strip().rstrip("/")
        or DEFAULT_REGISTRY,
        image_tag=tag,
        namespace=env.get("PIPELINE_NAMESPACE", "").strip() or "pipeline",
        service_account=env.get("PIPELINE_SERVICE_ACCOUNT", "").strip() or "pipeline-runner",
        env_configmap=env.get("PIPELINE_ENV_CONFIGMAP", "").strip() or "pipeline-env",
        env_secret=env.get("PIPELINE_ENV_SECRET", "").strip() or "pipeline-secrets",
        tasks_python=tasks_python,
        repo_root=repo_root,
        local_preload=_bool(env, "PIPELINE_LOCAL_PRELOAD", True),
        local_launchers=Path(folder)
        if (folder := env.get("PIPELINE_LOCAL_LAUNCHERS", "").strip())
        else None,
        schedule=_schedule(schedule),
        monitor_schedule=_schedule(monitor_schedule),
        retries=_int(env, "PIPELINE_RETRIES", 2, 0, 10),
        retry_delay_seconds=_float(env, "PIPELINE_RETRY_DELAY_SECONDS", 30.0),
        group_number=_int(env, "GROUP_NUMBER", 1, 1, 10),
        day=day,
    )
