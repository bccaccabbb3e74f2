"""Each task imports its heavy libraries where they are used, and names them in its ``STEP``'s ``preload_modules``
for the local runtime's launcher (PIPELINE_LOCAL_PRELOAD): importing the module stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {
    "tasks.validate": ["great_expectations"],
    "tasks.drift_check": ["evidently", "mlflow"],
    "tasks.train": ["mlflow", "sklearn", "skops", "shap", "optuna"],
    "tasks.promote": ["mlflow", "skops", "sklearn"],
}

PROBE = """
import importlib, json, sys
found = {}
for module, heavy in json.loads(sys.argv[1]).items():
    task = importlib.import_module(module + ".step").STEP
    before = [name for name in heavy if name in sys.modules]
    task.preload()
    after = [name for name in heavy if name in sys.modules]
    found[module] = {"before": before, "after": after}
print(json.dumps(found))
"""


@pytest.mark.slow
def test_importing_a_task_is_light_and_preload_imports_what_its_runs_use() -> None:
    for module, heavy in HEAVY.items():  # one process each: no task sees another's imports
        done = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps({module: heavy})],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        found = json.loads(done.stdout.splitlines()[-1])[module]
        assert found == {"before": [], "after": heavy}, module
