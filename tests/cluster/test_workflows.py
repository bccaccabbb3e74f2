"""The workflows: actionlint (from PyPI, as cluster/validate.sh runs it) and their structure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    "monitor",
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
            module = REPO / "tasks" / entry["task"]  # a module, or a package with __main__
            assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), entry
    build = next(s for s in steps(wf) if s["uses"].startswith("docker/build-push-action@"))
    assert build["with"]["tags"] == (
        "docker.io/realtor-mlops/${{ matrix.image }}:${{ github.sha }}"
    )
    assert ":latest" not in (WF / "images.yaml").read_text()


def test_actions_are_pinned_to_exact_versions():
    for name in ("images.yaml", "ci.yaml", "cluster.yaml"):
        for step in steps(load(name)):
            if "uses" in step:
                assert re.match(r"^[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+$", step["uses"]), step["uses"]


def test_ci_runs_make_test_with_postgres():
    wf = load("ci.yaml")
    job = wf["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu")
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert any(s.get("run") == "make test" for s in job["steps"])


def test_workflows_pass_actionlint():
    actionlint = Path(sys.executable).with_name("actionlint")
    shellcheck = Path(sys.executable).with_name("shellcheck")
    done = subprocess.run(
        [str(actionlint), f"-shellcheck={shellcheck}", *sorted(map(str, WF.glob("*.yaml")))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_vendors_charts_and_schemas_before_make_test():
    runs = [s.get("run", "") for s in load("ci.yaml")["jobs"]["test"]["steps"]]
    vendor = next(i for i, r in enumerate(runs) if "make vendor" in r)
    assert vendor < runs.index("make test")


def test_cluster_workflow_brings_up_k3s_and_waits_for_every_application():
    wf = load("cluster.yaml")
    text = (WF / "cluster.yaml").read_text()
    (job,) = wf["jobs"].values()
    assert job["env"]["TOPOLOGY"] == "single-node"
    assert "cluster/bootstrap/versions.env" in text  # the pinned K3s and networks
    assert "install-argocd.sh" in text
    assert "${GITHUB_SHA}" in text  # every Application at the commit under test
    assert '.status.health.status != "Healthy"' in text
    assert any(s.get("if") == "failure()" for s in job["steps"])  # diagnostics


def test_cluster_workflow_runs_the_bootstrap_steps_of_the_docs_in_their_order():
    docs = (REPO / "docs/cluster.md").read_text(encoding="utf-8")
    runs = "\n".join(s.get("run", "") for s in steps(load("cluster.yaml")))
    order = ["cluster/secrets/create-secrets.sh", "cluster/bootstrap/install-argocd.sh --topology"]
    for text in (docs, runs):
        positions = [text.find(command) for command in order]
        assert -1 not in positions and positions == sorted(positions), (order, positions)
    assert '--image-tag "${GITHUB_SHA}"' in runs and '--image-tag "$SHA"' in docs
