"""The environment of a task run by the local runtime: the Airflow process's, without
Airflow's own settings, plus the task's variables and where to write its result."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: Airflow's own configuration (database URL, fernet key...) stays out of the tasks' env
_PRIVATE_PREFIXES = ("AIRFLOW__", "_AIRFLOW", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def task_environment(
    base: Mapping[str, str], extra: Mapping[str, str], xcom_path: Path
) -> dict[str, str]:
    """The subprocess's environment: ``base`` without Airflow's private settings, plus ``extra``."""
    env = {k: v for k, v in base.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update({k: str(v) for k, v in extra.items()})
    env["XCOM_RETURN_PATH"] = str(xcom_path)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the log as they are written
    return env
