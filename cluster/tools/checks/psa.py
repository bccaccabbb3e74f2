"""psa - Pod Security admission at each namespace's level on every pod template
(Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods, hooks included)."""

from __future__ import annotations

import render
import yaml
from pod_security import psa_violations

from .common import applied, pod_annotations, pod_spec

MODES = {
    "enforce": "refused by",
    "warn": "flagged on every apply by",
    "audit": "logged as a violation by",
}


def namespace_levels(topo: render.Topology) -> dict[str, dict[str, str]]:
    """{namespace: {mode: level}} of every Namespace rendered; a mode without a label is
    privileged, as the API server's default."""
    levels = {}
    for obj in topo.objects:
        if obj.kind == "Namespace":
            labels = (obj.doc.get("metadata") or {}).get("labels") or {}
            levels[obj.name] = {
                mode: labels.get(f"pod-security.kubernetes.io/{mode}", "privileged")
                for mode in MODES
            }
    return levels


def pod_templates_in_configmaps(obj: render.Obj) -> list[render.Obj]:
    """Pods kept as text in a ConfigMap (the KubernetesExecutor's pod_template_file.yaml):
    the executor creates them in the ConfigMap's namespace."""
    out = []
    if obj.kind != "ConfigMap":
        return out
    for key, text in (obj.doc.get("data") or {}).items():
        if key.endswith("pod_template_file.yaml"):
            pod = yaml.safe_load(text) or {}
            pod.setdefault("metadata", {})["namespace"] = obj.namespace
            pod["metadata"].setdefault("name", key)
            out.append(
                render.Obj(pod, obj.app, obj.app_wave, f"{obj.origin} [{key}]", obj.phase, obj.wave)
            )
    return out


def check_psa(topo: render.Topology) -> list[str]:
    """Every pod template against each mode's level of its namespace: enforce refuses the
    pod; warn and audit admit it but flag it on every apply, so they count as errors too."""
    levels = namespace_levels(topo)
    errors = []
    for obj in [o for base in applied(topo) for o in [base, *pod_templates_in_configmaps(base)]]:
        spec = pod_spec(obj.doc)
        if spec is None:
            continue
        modes = levels.get(obj.namespace)
        if modes is None:
            errors.append(
                f"{obj.ref()}: namespace {obj.namespace!r} is not declared with a Pod Security level"
            )
            continue
        by_level: dict[str, list[str]] = {}
        for mode, level in modes.items():
            by_level.setdefault(level, []).append(mode)
        for level, names in by_level.items():
            for violation in psa_violations(spec, pod_annotations(obj.doc), level):
                how = " and ".join(MODES[m] for m in names)
                errors.append(
                    f"{obj.ref()}: {how} Pod Security '{level}' ({'/'.join(names)}) of namespace "
                    f"{obj.namespace}: {violation} (fix the pod's securityContext through the "
                    "values, or lower the namespace's level with a reason)"
                )
    return errors
