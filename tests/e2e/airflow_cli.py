"""Drive the Airflow CLI of ``.venv-airflow`` from the tests' environment (``.venv``).

The end-to-end tests run pytest in the tasks' env (it has the fixtures' dependencies) and
Airflow in its own env, as separate processes: ``airflow db migrate``, ``airflow dags test``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = REPO / ".venv-airflow" / "bin" / "airflow"


@dataclass(frozen=True)
class CliRun:
    returncode: int
    seconds: float
    log_path: Path

    def tail(self, lines: int = 60) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])


def airflow_path(url: str) -> str:
    """A SQLAlchemy URL for Airflow's env (psycopg2 there, psycopg 3 in the tasks' env)."""
    return url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


def run_airflow(args: list[str], env: dict[str, str], log_path: Path, timeout: float) -> CliRun:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        done = subprocess.run(
            [str(AIRFLOW), *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return CliRun(done.returncode, time.monotonic() - started, log_path)
