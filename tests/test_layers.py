"""The layers of ARCHITECTURE.md are contracts that `make lint` checks (import-linter,
pyproject.toml): the tree keeps them, and a forbidden import of each kind, planted in a copy
of the tree, breaks the contract that names it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("tasks", "serving", "ui", "data_api", "bench", "dags/realtor")

#: (the file that gets the import, the import, the contract it breaks)
PLANTED = [
    ("tasks/train/step.py", "from tasks.promote import rule", "steps"),
    ("tasks/core/ledger.py", "import tasks.fetch.step", "steps"),
    ("serving/answers.py", "from tasks.train import search", "apps"),
    ("ui/sources.py", "import tasks.drift_check.step", "apps"),
    ("data_api/batches.py", "from tasks.core import ledger", "data-api"),
    ("dags/realtor/specs.py", "import pandas", "dags"),
    ("dags/realtor/config.py", "from tasks.core import settings", "dags"),
]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": f"{tree}:{tree / 'dags'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("path", "line", "contract"), PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_forbidden_import_is_caught(tree: Path, path: str, line: str, contract: str):
    target = tree / path
    original = target.read_text()
    target.write_text(original + f"\n{line}  # planted\n")
    try:
        done = lint_imports(tree)
    finally:
        target.write_text(original)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [row for row in done.stdout.splitlines() if " BROKEN" in row]
    names = {c["id"]: c["name"] for c in _contracts()}
    # the contract that names it (a step imported by the core also reaches serving and ui)
    assert any(row.startswith(f"{names[contract]} BROKEN") for row in broken), done.stdout
    assert f"{path.removesuffix('.py').replace('/', '.').removeprefix('dags.')}" in done.stdout


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_contracts_name_every_step() -> None:
    """A new step package is a layer of its own and is forbidden to serving/ and ui/."""
    steps = sorted(p.name for p in (ROOT / "tasks").iterdir() if (p / "__main__.py").is_file())
    by_id = {c["id"]: c for c in _contracts()}
    assert sorted(by_id["steps"]["layers"][0].split(" | ")) == steps
    forbidden = by_id["apps"]["forbidden_modules"]
    assert sorted(m.removeprefix("tasks.") for m in forbidden if m.startswith("tasks.")) == steps
