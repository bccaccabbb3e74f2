"""The UI reads through contracts: it never imports a pipeline step (directly or not)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import step_list

REPO = Path(__file__).resolve().parents[2]
STEPS = tuple(step_list.load_specs(REPO).TASKS)  # the one list of steps, dags/realtor/specs.py
MODULES = (
    "ui.settings", "ui.errors", "ui.serving_client", "ui.sources", "ui.ledger_views",
    "ui.explain_plots", "ui.record_form", "ui.page_kit",
)  # fmt: skip


def test_no_ui_file_imports_a_step():
    found = []
    for path in sorted((REPO / "ui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found += [f"{path.name}: {n}" for n in names if n in {f"tasks.{s}" for s in STEPS}]
    assert found == []


def test_importing_the_ui_loads_no_step():
    code = (
        "import sys\n"
        f"for name in {MODULES!r}:\n    __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m in {{'tasks.' + s for s in {STEPS!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
