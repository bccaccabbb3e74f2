"""One list of steps: dags/realtor/specs.py's TASKS. The step packages, the images folder,
the images workflow's matrix, the docs and the tests agree with it (tests/support/step_list.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import step_list

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("check", step_list.CHECKS, ids=lambda check: check.__name__)
def test_the_tree_agrees_with_the_table_of_steps(check) -> None:
    assert check(REPO) == []


def test_each_step_package_declares_the_step_of_its_name() -> None:
    import importlib

    for name in step_list.load_specs(REPO).TASKS:
        step = importlib.import_module(f"tasks.{name}.step").STEP
        assert step.name == name


def test_a_step_missing_anywhere_is_caught(tmp_path: Path) -> None:
    """The checks can fail: a copy of the tree without the images workflow's fetch line, with
    an image folder nothing runs and a docs row changed, shows each problem."""
    import shutil

    for part in ("dags", "images", "docs", ".github"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / "README.md").write_text("`python -m tasks.explain`\n")
    (tmp_path / "images" / "explain").mkdir()
    workflow = tmp_path / ".github" / "workflows" / "images.yaml"
    text = workflow.read_text()
    fetch_line = "          - {image: fetch, file: images/task.Dockerfile, task: fetch}\n"
    assert fetch_line in text
    workflow.write_text(text.replace(fetch_line, ""))
    docs = tmp_path / "docs" / "pipeline.md"
    docs.write_text(
        docs.read_text().replace("| train | train | 750m / 2 |", "| train | train | 1 / 2 |")
    )
    problems = (
        step_list.check_image_folders(tmp_path)
        + step_list.check_images_workflow(tmp_path)
        + step_list.check_docs(tmp_path)
    )
    assert problems == [
        "images/explain/: no step of TASKS and no service runs it",
        "images.yaml does not build ('fetch', 'fetch') (image, task)",
        "README.md runs `python -m tasks.explain`: no step",
        "docs/pipeline.md's table row for train: ('train', '1 / 2', '1536Mi / 2Gi', '60 min'), "
        "want ('train', '750m / 2', '1536Mi / 2Gi', '60 min')",
    ]
