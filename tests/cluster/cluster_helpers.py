"""Paths and loaders shared by the cluster-static tests (no network, no cluster)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
BOOTSTRAP = CLUSTER / "bootstrap"
HELM_VALUES = REPO / "helm-values"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_preflight():
    return _load("k3s_preflight", BOOTSTRAP / "preflight.py")


def load_tool(name: str):
    """A module of cluster/tools/ (render, validate_manifests, resources)."""
    return _load("cluster_tools_" + name, CLUSTER / "tools" / (name + ".py"))
