"""The image and CI workflows (actionlint is not installable offline: structural checks)."""

from __future__ import annotations

import re

import yaml
from cluster_helpers import REPO

WF = REPO / ".github/workflows"
IMAGES = {
    "airflow",
    "data-api",
    "mlflow",
    "fetch",
    "validate",
    "drift-check",
    "train",
    "promote",
    "record",
    "serving",
    "ui",
}


def load(name):
    data = yaml.safe_load((WF / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on` as true
    return data


def steps(wf):
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def test_images_workflow_builds_every_image_by_commit_sha_only_on_main():
    wf = load("images.yaml")
    assert set(wf["on"]) == {"push", "workflow_dispatch"}
    assert wf["on"]["push"]["branches"] == ["main"]
    matrix = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {entry["image"] for entry in matrix} == IMAGES
    for entry in matrix:  # every image's Dockerfile and locked requirements exist
        assert (REPO / entry["file"]).is_file(), entry
        assert (REPO / "images" / entry["image"] / "requirements.txt").is_file(), entry
        if entry["file"] == "images/task.Dockerfile":
            assert (REPO / "tasks" / f"{entry['task']}.py").is_file(), entry
    build = next(s for s in steps(wf) if s["uses"].startswith("docker/build-push-action@"))
    assert build["with"]["tags"] == (
        "docker.io/realtor-mlops/${{ matrix.image }}:${{ github.sha }}"
    )
    assert ":latest" not in (WF / "images.yaml").read_text()


def test_actions_are_pinned_to_exact_versions():
    for name in ("images.yaml", "ci.yaml"):
        for step in steps(load(name)):
            if "uses" in step:
                assert re.match(r"^[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+$", step["uses"]), step["uses"]


def test_ci_runs_make_test_with_postgres():
    wf = load("ci.yaml")
    job = wf["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu")
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert any(s.get("run") == "make test" for s in job["steps"])
