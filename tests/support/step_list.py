"""Everything that names the pipeline's steps, checked against their one list: the table
``TASKS`` of ``dags/realtor/specs.py``.

Each check takes the repository root and returns its problems (empty: consistent), so the
same checks run on this tree (``tests/test_steps.py``) and on a copy where a throwaway step was
added by following docs/pipeline.md's "Add a step" (``tests/dags/test_add_a_step.py``). Pure
Python and PyYAML: they run in the tasks' env and in Airflow's.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml

#: images that no step runs in: images/<name>/ for the platform's services
SERVICE_IMAGES = frozenset({"airflow", "data-api", "mlflow", "serving", "ui"})
#: the Dockerfile every step image is built from (the matrix's ``file``)
STEP_DOCKERFILE = "images/task.Dockerfile"
#: the section of docs/pipeline.md that lists every file a new step touches
ADD_A_STEP = "## Add a step"


def load_specs(repo: Path) -> ModuleType:
    """``dags/realtor/specs.py`` of the tree at ``repo``, loaded on its own (a fresh module)."""
    path = repo / "dags" / "realtor" / "specs.py"
    name = f"_specs_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def step_packages(repo: Path) -> set[str]:
    """The packages under tasks/ other than the shared library tasks/core."""
    return {
        path.parent.name
        for path in (repo / "tasks").glob("*/__init__.py")
        if path.parent.name != "core"
    }


def declared_step(step_py: Path) -> str | None:
    """The name in ``STEP = Step("<name>", ...)`` of a step module, or None."""
    for node in ast.parse(step_py.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "STEP" for t in node.targets)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "Step"
            and node.value.args
            and isinstance(node.value.args[0], ast.Constant)
        ):
            return node.value.args[0].value
    return None


def check_step_packages(repo: Path) -> list[str]:
    """Each step of the table is a package tasks/<step>/ declaring it, and nothing else is."""
    tasks = load_specs(repo).TASKS
    packages = step_packages(repo)
    problems = [f"tasks/{n}/ is a package but not a step in TASKS" for n in packages - set(tasks)]
    problems += [f"step {n!r} has no package tasks/{n}/" for n in set(tasks) - packages]
    for name in sorted(set(tasks) & packages):
        folder = repo / "tasks" / name
        missing = [
            f for f in ("__init__.py", "__main__.py", "step.py") if not (folder / f).is_file()
        ]
        if missing:
            problems.append(f"tasks/{name}/ lacks {', '.join(missing)}")
            continue
        if declared_step(folder / "step.py") != name:
            problems.append(f'tasks/{name}/step.py does not declare STEP = Step("{name}", ...)')
        if "STEP.main()" not in (folder / "__main__.py").read_text():
            problems.append(f"tasks/{name}/__main__.py does not run STEP.main()")
    return sorted(problems)


def check_image_folders(repo: Path) -> list[str]:
    """images/<image>/ exists for exactly the table's images and the service images."""
    wanted = {spec.image for spec in load_specs(repo).TASKS.values()} | SERVICE_IMAGES
    present = {p.name for p in (repo / "images").iterdir() if p.is_dir()}
    problems = [f"images/{n}/: no step of TASKS and no service runs it" for n in present - wanted]
    problems += [f"images/{n}/ is missing (named in TASKS)" for n in wanted - present]
    for image in sorted(wanted & present):
        for lock in ("requirements.in", "requirements.txt"):
            if not (repo / "images" / image / lock).is_file():
                problems.append(f"images/{image}/{lock} is missing")
    return sorted(problems + check_airflow_tasks_env(repo))


def check_airflow_tasks_env(repo: Path) -> list[str]:
    """Compose's Airflow runs every step locally: its requirements-tasks.in includes the
    requirements of every step image, and of nothing else."""
    path = repo / "images" / "airflow" / "requirements-tasks.in"
    included = set(re.findall(r"^-r \.\./([\w-]+)/requirements\.in$", path.read_text(), re.M))
    wanted = set(load_specs(repo).step_images())
    problems = [
        f"{path.relative_to(repo)} lacks -r ../{n}/requirements.in" for n in wanted - included
    ]
    problems += [f"{path.relative_to(repo)} includes {n}, no step image" for n in included - wanted]
    return problems


def images_matrix(repo: Path) -> list[dict[str, str]]:
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "images.yaml").read_text())
    return workflow["jobs"]["build"]["strategy"]["matrix"]["include"]


def check_images_workflow(repo: Path) -> list[str]:
    """The images workflow builds each step image once, from task.Dockerfile, with its step as
    the ENTRYPOINT (a step sharing another's image has no entry), plus the service images."""
    specs = load_specs(repo)
    wanted = {(image, task) for image, task in specs.step_images().items()}
    wanted |= {(image, "") for image in SERVICE_IMAGES}
    entries = images_matrix(repo)
    built = {(entry["image"], entry.get("task") or "") for entry in entries}
    problems = [f"images.yaml builds {e} but TASKS has no such step image" for e in built - wanted]
    problems += [f"images.yaml does not build {e} (image, task)" for e in wanted - built]
    if len(built) != len(entries):
        problems.append("images.yaml lists an image twice")
    for entry in entries:
        if entry.get("task") and entry["file"] != STEP_DOCKERFILE:
            problems.append(f"images.yaml: {entry['image']} is a step image: {STEP_DOCKERFILE}")
    shared = {s.image for s in specs.TASKS.values()} - set(specs.step_images())
    problems += [f"image {n!r} is shared by a step but no step is its ENTRYPOINT" for n in shared]
    return sorted(problems)


def docs_resources_table(repo: Path) -> dict[str, tuple[str, ...]]:
    """docs/pipeline.md's table of the kubernetes runtime: step -> (image, cpu, memory, timeout)."""
    text = (repo / "docs" / "pipeline.md").read_text()
    header = "| task | image | CPU request / limit | memory request / limit | timeout |"
    assert header in text, f"docs/pipeline.md lost its resources table ({header})"
    rows = {}
    for line in text.split(header, 1)[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = tuple(cell.strip() for cell in line.strip("|").split("|"))
        if cells[0] != "XCom sidecar":
            rows[cells[0]] = cells[1:]
    return rows


def _minutes(spec) -> str:
    return f"{int(spec.timeout.total_seconds() // 60)} min"


def check_docs(repo: Path) -> list[str]:
    """docs/pipeline.md's resources table is the table's, row for row; every
    ``python -m tasks.<x>`` in the README and docs/ names a step."""
    tasks = load_specs(repo).TASKS
    rows = docs_resources_table(repo)
    problems = [f"docs/pipeline.md's table has {n!r}, not in TASKS" for n in set(rows) - set(tasks)]
    for name, spec in tasks.items():
        r = spec.resources
        want = (
            spec.image,
            f"{r.cpu_request} / {r.cpu_limit}",
            f"{r.memory_request} / {r.memory_limit}",
            _minutes(spec),
        )
        if rows.get(name) != want:
            problems.append(
                f"docs/pipeline.md's table row for {name}: {rows.get(name)}, want {want}"
            )
    text = (repo / "docs" / "pipeline.md").read_text()
    for name, dags in wired_steps(repo).items():
        if "realtor_pipeline" in dags and f"| `{name}` | `python -m tasks.{name}" not in text:
            problems.append(f'docs/pipeline.md\'s "What each task does" has no row for {name}')
    for doc in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:
        for name in set(re.findall(r"python -m tasks\.(\w+)", doc.read_text())):
            if name not in tasks and name != "core":
                problems.append(f"{doc.relative_to(repo)} runs `python -m tasks.{name}`: no step")
    return sorted(problems)


def check_tests_name_every_step(repo: Path) -> list[str]:
    """Every step is exercised by a test module that names its package ``tasks.<step>``."""
    text = "\n".join(p.read_text(errors="replace") for p in (repo / "tests").rglob("test_*.py"))
    named = set(re.findall(r"tasks\.(\w+)", text))
    return [
        f"no test module names tasks.{n}" for n in sorted(load_specs(repo).TASKS) if n not in named
    ]


def add_a_step_files(repo: Path) -> list[str]:
    """The files docs/pipeline.md's "Add a step" lists, in order (``<step>``, ``<image>`` kept)."""
    text = (repo / "docs" / "pipeline.md").read_text()
    assert ADD_A_STEP in text, f"docs/pipeline.md has no section {ADD_A_STEP!r}"
    section = text.split(ADD_A_STEP, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. `([^`]+)`:", section, flags=re.MULTILINE)


def wired_steps(repo: Path) -> dict[str, list[str]]:
    """step -> the DAGs (file stems, their dag_id) wiring it: ``pipeline_task("<step>"``."""
    wired: dict[str, list[str]] = {}
    for dag_file in sorted((repo / "dags").glob("*.py")):
        for name in re.findall(r"pipeline_task\(\s*[\"'](\w+)[\"']", dag_file.read_text()):
            wired.setdefault(name, []).append(dag_file.stem)
    return wired


def check_dag_wiring(repo: Path) -> list[str]:
    """Every step of the table is wired into exactly one DAG, and nothing else is."""
    tasks, wired = load_specs(repo).TASKS, wired_steps(repo)
    problems = [f"dags/ wire {n!r}, not a step in TASKS" for n in set(wired) - set(tasks)]
    problems += [f"step {n!r} is wired into no DAG (dags/*.py)" for n in set(tasks) - set(wired)]
    problems += [f"step {n!r} is wired into {d}" for n, d in wired.items() if len(d) > 1]
    return sorted(problems)


CHECKS = (
    check_step_packages,
    check_dag_wiring,
    check_image_folders,
    check_images_workflow,
    check_docs,
    check_tests_name_every_step,
)


def all_problems(repo: Path) -> list[str]:
    return [problem for check in CHECKS for problem in check(repo)]
