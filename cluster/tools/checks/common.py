"""Shared by every check: the repository, which objects a sync applies, pod templates
and their labels, the pinned K3s schema version, a lock file's pins."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import render

REPO = render.REPO


Check = Callable[[render.Topology], list[str]]


WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


APPLIED = ("PreSync", "Sync", "PostSync")  # phases a sync applies (not delete, skip or test)


def applied(topo: render.Topology) -> Iterator[render.Obj]:
    return (o for o in topo.objects if o.phase in APPLIED)


def k8s_version() -> str:
    text = (REPO / "cluster/bootstrap/versions.env").read_text(encoding="utf-8")
    match = re.search(r'^KUBERNETES_SCHEMA_VERSION="([0-9.]+)"', text, re.M)
    if not match:
        raise SystemExit("KUBERNETES_SCHEMA_VERSION missing from cluster/bootstrap/versions.env")
    return match.group(1)


def pod_spec(doc: dict) -> dict | None:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def pod_annotations(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return (doc.get("metadata") or {}).get("annotations") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}


OUR_REGISTRY = "docker.io/realtor-mlops/"


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def lock_versions(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(obj: render.Obj) -> dict:
    doc, spec = obj.doc, obj.doc.get("spec") or {}
    if obj.kind == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}
    if obj.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
