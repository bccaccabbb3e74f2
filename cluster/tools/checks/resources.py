"""resources - every pod the DAG can create fits the pipeline namespace's ResourceQuota and
LimitRange; the requests of everything rendered fit the topology's nodes."""

from __future__ import annotations

import ast
import copy
from typing import Any

import render

from .common import REPO, applied, load_module, pod_spec


def cpu_m(value: Any) -> int:
    text = str(value)
    return int(float(text[:-1])) if text.endswith("m") else int(float(text) * 1000)


def mem_mi(value: Any) -> int:
    text = str(value)
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "Ti": 1024 * 1024,
        "k": 1 / 1048.576,
        "M": 1000 / 1048.576,
        "G": 1000000 / 1048.576,
    }
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return round(float(text[: -len(suffix)]) * factor)
    return round(float(text) / 1048576)


def dag_pods() -> list[tuple[str, list[dict]]]:
    """(task, containers with resources) of every pod the DAG's kubernetes runtime creates:
    the task's container (dags/realtor/specs.py) and the XCom sidecar
    (dags/realtor/kubernetes.py SIDECAR_RESOURCES)."""
    specs = load_module("realtor_specs_for_checks", REPO / "dags/realtor/specs.py")
    source = (REPO / "dags/realtor/kubernetes.py").read_text(encoding="utf-8")
    sidecar = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "SIDECAR_RESOURCES" for t in node.targets
        ):
            sidecar = ast.literal_eval(node.value)
    out = []
    for name, spec in sorted(specs.TASKS.items()):  # the one list of steps: no defaults
        cs = [{"name": "base", "resources": spec.resources.as_k8s()}]
        cs.append(
            {"name": "airflow-xcom-sidecar", "resources": copy.deepcopy(sidecar) if sidecar else {}}
        )
        out.append((name, cs))
    return out


def with_limit_range(cs: list[dict], limit_ranges: list[dict]) -> tuple[list[dict], list[str]]:
    """Containers as admitted: the API server's defaulting (a limit without a request makes
    the request), then the LimitRanger (default limit, defaultRequest - or the default limit -
    as request); and what the LimitRange's min and max refuse."""
    conv = {"cpu": cpu_m, "memory": mem_mi}
    out, errors = [], []
    for c in copy.deepcopy(cs):
        res = c.setdefault("resources", {})
        limits = res.setdefault("limits", {})
        requests = res.setdefault("requests", {})
        for k, v in limits.items():
            requests.setdefault(k, v)
        for lr in limit_ranges:
            for item in (lr.get("spec") or {}).get("limits") or []:
                if item.get("type") != "Container":
                    continue
                for k, v in (item.get("default") or {}).items():
                    limits.setdefault(k, v)
                for k, v in (
                    (item.get("default") or {}) | (item.get("defaultRequest") or {})
                ).items():
                    requests.setdefault(k, v)
                for k, v in (item.get("max") or {}).items():
                    if k in conv and k in limits and conv[k](limits[k]) > conv[k](v):
                        errors.append(
                            f"container {c['name']} limit {k}={limits[k]} above the LimitRange max {v}"
                        )
                for k, v in (item.get("min") or {}).items():
                    if k in conv and k in requests and conv[k](requests[k]) < conv[k](v):
                        errors.append(
                            f"container {c['name']} request {k}={requests[k]} below the LimitRange min {v}"
                        )
        out.append(c)
    return out, errors


def pod_totals(cs: list[dict]) -> dict[str, int]:
    tot = {"requests.cpu": 0, "requests.memory": 0, "limits.cpu": 0, "limits.memory": 0}
    for c in cs:
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            vals = res.get(kind) or {}
            if "cpu" in vals:
                tot[f"{kind}.cpu"] += cpu_m(vals["cpu"])
            if "memory" in vals:
                tot[f"{kind}.memory"] += mem_mi(vals["memory"])
    return tot


def check_pipeline_quota(topo: render.Topology, namespace: str = "pipeline") -> list[str]:
    objs = [o for o in applied(topo) if o.namespace == namespace]
    quotas = [o.doc for o in objs if o.kind == "ResourceQuota"]
    ranges = [o.doc for o in objs if o.kind == "LimitRange"]
    errors = []
    for task, cs in dag_pods():
        filled, lr_errors = with_limit_range(cs, ranges)
        errors += [
            f"DAG task {task}: refused by the LimitRange of {namespace}: {e}" for e in lr_errors
        ]
        tot = pod_totals(filled)
        for quota in quotas:
            hard = quota["spec"].get("hard") or {}
            for key, used in tot.items():
                if key not in hard:
                    continue
                if any(key.startswith(k) for k in ("limits", "requests")):
                    missing = [
                        c["name"]
                        for c in filled
                        if key.split(".")[1] not in (c["resources"].get(key.split(".")[0]) or {})
                    ]
                    if missing:
                        errors.append(
                            f"DAG task {task}: quota {quota['metadata']['name']} tracks {key} but containers {missing} set none: the pod is refused"
                        )
                cap = cpu_m(hard[key]) if key.endswith("cpu") else mem_mi(hard[key])
                if used > cap:
                    errors.append(
                        f"DAG task {task}: its pod needs {key}={used}{'m' if key.endswith('cpu') else 'Mi'} "
                        f"(task + XCom sidecar, after the LimitRange), above the quota "
                        f"{quota['metadata']['name']} ({hard[key]}): the API server refuses the pod; "
                        "raise the quota in cluster/apps/pipeline or lower dags/realtor/specs.py"
                    )
    return errors


VM_CPU_M = 4000


VM_MEM_MI = 16 * 1024


MAX_CPU_SHARE = 0.85


MAX_MEM_SHARE = 0.75


# Pods no chart renders (created by operators or K3s itself): explicit estimates per node or
# per cluster, (name, cpu m, memory Mi, per node).
UNRENDERED = [
    ("k3s server + containerd + kubelet (measured)", 500, 1536, True),
    ("K3s CoreDNS + metrics-server", 200, 140, False),
    ("longhorn instance-manager (guaranteedInstanceManagerCPU 5%)", 200, 256, True),
    ("longhorn engine-image, CSI plugin and sidecars (operator-made)", 100, 320, True),
]


def budget_rows(topo: render.Topology) -> list[tuple[str, int, int, int]]:
    """(what, replicas, cpu m, memory Mi of one replica) of everything that requests resources."""
    rows = []
    for obj in applied(topo):
        spec = pod_spec(obj.doc)
        if spec is not None and obj.phase == "Sync" and obj.kind != "Job" and obj.kind != "CronJob":
            cs = list(spec.get("containers") or [])
            tot = pod_totals(cs)
            init = pod_totals(list(spec.get("initContainers") or []))
            cpu = max(tot["requests.cpu"], init["requests.cpu"])
            mem = max(tot["requests.memory"], init["requests.memory"])
            if obj.kind == "DaemonSet":
                replicas = topo.nodes
            elif obj.kind == "Pod":
                replicas = 1
            else:
                replicas = int((obj.doc.get("spec") or {}).get("replicas", 1) or 0)
            rows.append((f"[{obj.app}] {obj.kind} {obj.name}", replicas, cpu, mem))
        if obj.kind == "Cluster" and obj.doc.get("apiVersion", "").startswith("postgresql.cnpg.io"):
            spec_ = obj.doc["spec"]
            req = (spec_.get("resources") or {}).get("requests") or {}
            rows.append(
                (
                    f"[{obj.app}] postgres {obj.name}",
                    int(spec_.get("instances", 1)),
                    cpu_m(req.get("cpu", 0)),
                    mem_mi(req.get("memory", 0)),
                )
            )
        if obj.kind in ("Prometheus", "Alertmanager"):
            spec_ = obj.doc["spec"]
            req = (spec_.get("resources") or {}).get("requests") or {}
            rows.append(
                (
                    f"[{obj.app}] {obj.kind} {obj.name}",
                    int(spec_.get("replicas", 1)),
                    cpu_m(req.get("cpu", 0)),
                    mem_mi(req.get("memory", 0)),
                )
            )
        if obj.kind == "ResourceQuota":
            hard = obj.doc["spec"].get("hard") or {}
            if "requests.cpu" in hard:
                rows.append(
                    (
                        f"[{obj.app}] task pods (quota {obj.name} ceiling)",
                        1,
                        cpu_m(hard["requests.cpu"]),
                        mem_mi(hard.get("requests.memory", 0)),
                    )
                )
    for what, cpu, mem, per_node in UNRENDERED:
        rows.append((what + " (estimate)", topo.nodes if per_node else 1, cpu, mem))
    return rows


def check_node_budget(topo: render.Topology) -> list[str]:
    rows = budget_rows(topo)
    cpu = sum(r * c for _, r, c, _ in rows)
    mem = sum(r * m for _, r, _, m in rows)
    cap_cpu, cap_mem = VM_CPU_M * topo.nodes, VM_MEM_MI * topo.nodes
    errors = []
    if cpu > MAX_CPU_SHARE * cap_cpu or mem > MAX_MEM_SHARE * cap_mem:
        top = sorted(rows, key=lambda r: -r[1] * r[3])[:5]
        errors.append(
            f"requests {cpu}m CPU / {mem}Mi memory exceed {MAX_CPU_SHARE:.0%} / {MAX_MEM_SHARE:.0%} "
            f"of {topo.nodes} x 4 vCPU / 16 GiB; largest: "
            + ", ".join(f"{w} x{r} {c}m/{m}Mi" for w, r, c, m in top)
        )
    return errors


def check_resources(topo: render.Topology) -> list[str]:
    return check_pipeline_quota(topo) + check_node_budget(topo)
