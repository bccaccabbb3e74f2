"""docs/pipeline.md's "Add a step", followed to the letter: a throwaway step added to a copy of
the tree by writing exactly the files the docs list, then checked against the table of steps
(tests/support/step_list.py) and run by the real DAG through Airflow on the local runtime.

The test knows how to write each file a step needs; it writes only those the docs list. A file
the docs forget is not written, and the checks or the run fail. Leaving each file out in turn
shows that every file of the list is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dags.conftest import REPO
from tests.support import step_list

STEP, IMAGE = "hello_step", "hello-step"
ARGUMENTS = '["--group-number", "{{ params.group_number }}", "--day", "{{ params.day }}"]'

STEP_PY = '''"""Say hello to a (group, day): the throwaway step of tests/dags/test_add_a_step.py."""

from __future__ import annotations

from typing import Any

from tasks.core.cli import GroupDayInputs, Step
from tasks.core.settings import TaskSettings


class HelloInputs(GroupDayInputs):
    """Inputs of tasks.hello_step."""


def run(inputs: HelloInputs, settings: TaskSettings) -> dict[str, Any]:
    group_number, day = inputs.resolve(settings)
    return {"group_number": group_number, "day": day, "greeting": "hello"}


def summary(result: dict[str, Any]) -> str:
    return f"hello_step: {result['greeting']}, group {result['group_number']} {result['day']}"


STEP = Step("hello_step", HelloInputs, run, summary, doc=__doc__)
'''


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} is gone; update tests/dags/test_add_a_step.py"
    path.write_text(text.replace(old, new, 1))


def _spec_line(root: Path) -> None:
    _edit(
        root / "dags/realtor/specs.py",
        "\n    )\n}\n",
        f'\n        TaskSpec("{STEP}", "{IMAGE}", _SMALL, timedelta(minutes=5), "Says hello."),'
        "\n    )\n}\n",
    )


def _dag_line(root: Path) -> None:
    _edit(
        root / "dags/realtor_pipeline.py",
        "    skip_training >> record\n",
        f"    skip_training >> record\n    {STEP} = pipeline_task({STEP!r}, {ARGUMENTS})\n"
        f"    record >> {STEP}\n",
    )


def _workflow_line(root: Path) -> None:
    promote = "          - {image: promote, file: images/task.Dockerfile, task: promote}\n"
    line = f"          - {{image: {IMAGE}, file: images/task.Dockerfile, task: {STEP}}}\n"
    _edit(root / ".github/workflows/images.yaml", promote, promote + line)


def _docs_rows(root: Path) -> None:
    docs = root / "docs/pipeline.md"
    _edit(
        docs,
        "\n\nA quarantined batch goes through",
        f"\n| `{STEP}` | `python -m tasks.{STEP} --group-number N --day D` | says hello | "
        "`greeting` |\n\nA quarantined batch goes through",
    )
    _edit(
        docs,
        "| XCom sidecar |",
        f"| {STEP} | {IMAGE} | 100m / 500m | 128Mi / 256Mi | 5 min |\n| XCom sidecar |",
    )


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return write


#: how this test writes each file a step may touch, by the docs' name for it
WRITERS: dict[str, Callable[[Path], None]] = {
    "tasks/<step>/step.py": _write(f"tasks/{STEP}/step.py", STEP_PY),
    "tasks/<step>/__main__.py": _write(
        f"tasks/{STEP}/__main__.py",
        f"from tasks.{STEP}.step import STEP\n\nraise SystemExit(STEP.main())\n",
    ),
    "tasks/<step>/__init__.py": _write(f"tasks/{STEP}/__init__.py", '"""Say hello."""\n'),
    "dags/realtor/specs.py": _spec_line,
    "dags/realtor_pipeline.py": _dag_line,
    "images/<image>/requirements.in": _write(
        f"images/{IMAGE}/requirements.in",
        "-c ../../requirements/dev.txt\n-r ../../requirements/task-core.in\n",
    ),
    "images/<image>/requirements.txt": lambda root: _write(
        f"images/{IMAGE}/requirements.txt", (REPO / "images/fetch/requirements.txt").read_text()
    )(root),
    "images/airflow/requirements-tasks.in": lambda root: _edit(
        root / "images/airflow/requirements-tasks.in",
        "-r ../promote/requirements.in\n",
        f"-r ../promote/requirements.in\n-r ../{IMAGE}/requirements.in\n",
    ),
    ".github/workflows/images.yaml": _workflow_line,
    "docs/pipeline.md": _docs_rows,
    "tests/tasks/<step>/test_<step>.py": _write(
        f"tests/tasks/{STEP}/test_{STEP}.py",
        f"import importlib\n\n\ndef test_step():\n"
        f"    assert importlib.import_module('tasks.{STEP}.step').STEP.name == '{STEP}'\n",
    ),
}
DOCUMENTED = step_list.add_a_step_files(REPO)


def copy_of_the_tree(root: Path) -> Path:
    # this module names the throwaway step: left out, so only the step's own test names it
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", Path(__file__).name)
    for part in ("dags", "tasks", "images", "docs", "tests", "requirements"):
        shutil.copytree(REPO / part, root / part, ignore=ignore)
    (root / ".github/workflows").mkdir(parents=True)
    shutil.copy(REPO / ".github/workflows/images.yaml", root / ".github/workflows")
    shutil.copy(REPO / "README.md", root)
    assert step_list.all_problems(root) == [], "the copy disagrees with its table before the step"
    return root


def follow_the_docs(root: Path, leave_out: str | None = None) -> None:
    unknown = [f for f in DOCUMENTED if f not in WRITERS]
    assert unknown == [], f"'Add a step' lists files this test cannot write: {unknown}"
    for documented in DOCUMENTED:
        if documented != leave_out:
            WRITERS[documented](root)


def test_the_docs_list_every_file_a_step_touches() -> None:
    assert set(DOCUMENTED) == set(WRITERS), "docs/pipeline.md's 'Add a step' and this test"


@pytest.mark.parametrize("left_out", DOCUMENTED)
def test_each_file_of_the_list_is_needed(tmp_path: Path, left_out: str) -> None:
    root = copy_of_the_tree(tmp_path)
    follow_the_docs(root, leave_out=left_out)
    problems = step_list.all_problems(root)
    assert problems, f"a step without {left_out} passes every check"
    assert any(STEP in p or IMAGE in p for p in problems), problems


def _airflow(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_real_dag_runs_a_step_added_by_following_the_docs(tmp_path: Path) -> None:
    root = copy_of_the_tree(tmp_path / "repo")
    follow_the_docs(root)
    assert step_list.all_problems(root) == []
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "AIRFLOW"))}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PIPELINE_RUNTIME": "local",
        "PIPELINE_REPO_ROOT": str(root),  # the step runs from the copy: python -m tasks.hello_step
        "PIPELINE_TASKS_PYTHON": str(REPO / ".venv" / "bin" / "python"),
        "GROUP_NUMBER": "3",
        "DAY": "Tuesday",
    }
    migrate = _airflow(["db", "migrate"], env, 600)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    done = _airflow(["tasks", "test", "realtor_pipeline", STEP, "2026-01-01"], env, 600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert f"-m tasks.{STEP} --group-number 3 --day Tuesday (cwd {root})" in output
    assert "[stdout] hello_step: hello, group 3 Tuesday" in output, output[-5000:]
    assert re.search(rf"tasks\.{STEP}: exit 0, peak RSS \d+ MiB", output), output[-5000:]
