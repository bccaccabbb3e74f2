"""images - the images .github/workflows/images.yaml builds are the images deployed, both
ways (the rendered tree and the DAG's task pods); and why an image a pod names would never
exist (the waves check reports those per object)."""

from __future__ import annotations

import functools
import re

import render
import yaml
from pod_security import containers

from .common import OUR_REGISTRY, REPO, applied, load_module, pod_spec


@functools.lru_cache(maxsize=1)
def workflow_images() -> dict[str, dict]:
    """image name -> matrix entry of .github/workflows/images.yaml."""
    wf = yaml.safe_load((REPO / ".github/workflows/images.yaml").read_text(encoding="utf-8"))
    out = {}
    for job in wf.get("jobs", {}).values():
        for entry in ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []:
            out[entry["image"]] = entry
    return out


def image_problems(image: str) -> list[str]:
    """Why an image of ours would never exist (empty when the images workflow builds it)."""
    if not image.startswith(OUR_REGISTRY):
        return []
    name, _, tag = image.removeprefix(OUR_REGISTRY).partition(":")
    entry = workflow_images().get(name)
    if entry is None:
        return [f"image {image}: .github/workflows/images.yaml builds no image {name!r}"]
    dockerfile = REPO / entry["file"]
    if not dockerfile.is_file():
        return [f"image {image}: the workflow builds it from {entry['file']}, which does not exist"]
    stages = re.findall(
        r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text(encoding="utf-8"), re.M | re.I
    )
    target = entry.get("target")
    if len(stages) > 1 and not target:
        return [
            f"image {image}: {entry['file']} has stages {stages} and the workflow sets no "
            f"target, so it pushes the last one ({stages[-1]})"
        ]
    if target and target not in stages:
        return [f"image {image}: workflow target {target!r} is not a stage of {entry['file']}"]
    if not re.fullmatch(r"[0-9a-f]{40}", tag):
        return [f"image {image}: the workflow tags images with the commit SHA only"]
    return []


def all_images(obj: render.Obj) -> list[str]:
    spec = pod_spec(obj.doc)
    out = [c.get("image", "") for c in containers(spec)] if spec else []
    if obj.kind == "Cluster" and obj.doc.get("spec", {}).get("imageName"):
        out.append(obj.doc["spec"]["imageName"])
    return out


def dag_images() -> dict[str, str]:
    """{image: task} of the pods the DAGs create: every `pipeline_task("<name>", ...)` call
    under dags/, with the image dags/realtor/specs.py gives that task."""
    specs = load_module("realtor_specs_for_checks", REPO / "dags/realtor/specs.py")
    out = {}
    for path in sorted((REPO / "dags").rglob("*.py")):
        for name in re.findall(r'pipeline_task\(\s*"([a-z_]+)"', path.read_text("utf-8")):
            out.setdefault(specs.spec_for(name).image, name)
    return out


def image_folders() -> set[str]:
    return {p.name for p in (REPO / "images").iterdir() if p.is_dir()}


def check_images(
    topo: render.Topology,
    built: dict[str, dict] | None = None,
    dag: dict[str, str] | None = None,
    folders: set[str] | None = None,
) -> list[str]:
    """The images the workflow builds are the images deployed, both ways: each image of ours
    that a rendered object or a DAG task pod runs is built, each image built is run by
    something, and each folder under images/ is an image built."""
    built = workflow_images() if built is None else built
    dag = dag_images() if dag is None else dag
    folders = image_folders() if folders is None else folders
    deployed: dict[str, str] = {}
    for obj in applied(topo):
        for image in all_images(obj):
            if image.startswith(OUR_REGISTRY):
                deployed.setdefault(image.removeprefix(OUR_REGISTRY).split(":")[0], obj.ref())
    for image, task in dag.items():
        deployed.setdefault(image, f"the DAG's task {task} (dags/realtor/specs.py)")
    errors = [
        f"{where}: runs image {name}, which .github/workflows/images.yaml does not build"
        for name, where in sorted(deployed.items())
        if name not in built
    ]
    errors += [
        f".github/workflows/images.yaml builds image {name}, which no rendered object and no "
        f"DAG task runs: drop it from the matrix (and images/{name}/), or deploy it"
        for name in sorted(set(built) - set(deployed))
    ]
    errors += [
        f"images/{name}/: a folder of no image the workflow builds: remove it"
        for name in sorted(folders - set(built))
    ]
    return errors
