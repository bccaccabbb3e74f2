"""Images of ours: the matrix of .github/workflows/images.yaml, and why an image a pod names
would never exist."""

from __future__ import annotations

import functools
import re

import render
import yaml
from pod_security import containers

from .common import OUR_REGISTRY, REPO, pod_spec


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
