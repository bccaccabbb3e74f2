"""Small hand-made objects and topologies for the checks' negative tests, and the tools they
load (cluster/tools: validate_manifests, render, checks, vendor)."""

from __future__ import annotations

import copy

from cluster_helpers import load_tool

vm = load_tool("validate_manifests")
render, checks, vendor = vm.render, vm.checks, vm.vendor

RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "docker.io/library/busybox:1.37",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def ns(name: str, level: str) -> dict:
    labels = {"pod-security.kubernetes.io/enforce": level}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(name="web", namespace="apps", pod=None, replicas=1) -> dict:
    pod = copy.deepcopy(pod if pod is not None else RESTRICTED_POD)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    }


def app(name: str, wave: int) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
        "spec": {"destination": {"namespace": "x"}},
    }


def obj(doc, app_name="a", phase="Sync", wave=0, origin="test"):
    return render.Obj(copy.deepcopy(doc), app_name, 0, origin, phase, wave)


def topology(objects, apps=(("a", 1),), charts=()):
    applications = {name: app(name, wave) for name, wave in apps}
    return render.Topology("single-node", 1, applications, list(objects), list(charts))
