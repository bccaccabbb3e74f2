"""scripts/airflow_runs.py: Airflow CLI commands one after the other in one process (make demo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.dags.conftest import REPO

MARKER = "[airflow_runs] exit"


def run_commands(*lines: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "airflow_runs.py")],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        cwd=REPO,
    )


def test_each_command_ends_with_its_exit_code_and_end_of_input_ends_the_process() -> None:
    import airflow

    done = run_commands(
        json.dumps(["version"]),
        json.dumps(["dags", "no-such-command"]),
        '"not a list"',
        "not JSON",
        json.dumps(["version"]),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    codes = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith(MARKER)]
    assert codes == ["0", "2", "2", "2", "0"]
    # the commands' own output comes before their marker, as `airflow <args>` prints it
    before_first = done.stdout.split(MARKER)[0]
    assert airflow.__version__ in before_first
    assert "not a JSON list of strings" in done.stdout
    assert "invalid choice" in done.stderr  # argparse's message for the bad command
