"""Requests and limits of everything on the cluster, summed for a topology.

Our workloads are read from the rendered overlays (Deployments, CloudNativePG Cluster,
Barman Cloud sidecar, the pipeline's ResourceQuota as the ceiling of task pods); chart
workloads from the resources we set in helm-values/ (CHART_WORKLOADS below names the
value path of each). Components whose chart exposes no resources are listed with an
explicit estimate, and the K3s server itself with its measured footprint.

Usage: python cluster/tools/resources.py [--topology single-node] [--nodes 1]
       [--markdown] [--check]   (--check: exit 1 unless the budget fits 4 vCPU / 16 GiB)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render

REPO = Path(__file__).resolve().parents[2]
VM_CPU_M = 4000
VM_MEM_MI = 16 * 1024
# Headroom rule: requests at most 85% of CPU and 75% of memory of the single-node VM.
MAX_CPU_SHARE = 0.85
MAX_MEM_SHARE = 0.75
NODES = {"single-node": 1, "two-node": 2, "three-node": 3}

# (application, component, values file, dotted path to resources, replicas, per-node)
# replicas: an int, or a dotted path in the topology values file.
CHART_WORKLOADS = [
    ("argo-cd", "application-controller", "argo-cd/values.yaml", "controller.resources", 1, False),
    ("argo-cd", "repo-server", "argo-cd/values.yaml", "repoServer.resources", 1, False),
    ("argo-cd", "server", "argo-cd/values.yaml", "server.resources", 1, False),
    ("argo-cd", "applicationset", "argo-cd/values.yaml", "applicationSet.resources", 1, False),
    ("argo-cd", "redis", "argo-cd/values.yaml", "redis.resources", 1, False),
    (
        "argocd-image-updater",
        "controller",
        "argocd-image-updater/values.yaml",
        "resources",
        1,
        False,
    ),
    ("cert-manager", "controller", "cert-manager/values.yaml", "resources", 1, False),
    ("cert-manager", "webhook", "cert-manager/values.yaml", "webhook.resources", 1, False),
    ("cert-manager", "cainjector", "cert-manager/values.yaml", "cainjector.resources", 1, False),
    ("metallb", "controller", "metallb/values.yaml", "controller.resources", 1, False),
    ("metallb", "speaker", "metallb/values.yaml", "speaker.resources", 1, True),
    ("traefik", "traefik", "traefik/values.yaml", "resources", 1, False),
    ("cloudnative-pg", "operator", "cloudnative-pg/values.yaml", "resources", 1, False),
    ("plugin-barman-cloud", "operator", "plugin-barman-cloud/values.yaml", "resources", 1, False),
    ("longhorn", "manager", "longhorn/values.yaml", "longhornManager.resources", 1, True),
    (
        "kube-prometheus-stack",
        "prometheus",
        "kube-prometheus-stack/values.yaml",
        "prometheus.prometheusSpec.resources",
        1,
        False,
    ),
    (
        "kube-prometheus-stack",
        "operator",
        "kube-prometheus-stack/values.yaml",
        "prometheusOperator.resources",
        1,
        False,
    ),
    (
        "kube-prometheus-stack",
        "grafana",
        "kube-prometheus-stack/values.yaml",
        "grafana.resources",
        1,
        False,
    ),
    (
        "kube-prometheus-stack",
        "grafana dashboard sidecar",
        "kube-prometheus-stack/values.yaml",
        "grafana.sidecar.resources",
        1,
        False,
    ),
    (
        "kube-prometheus-stack",
        "kube-state-metrics",
        "kube-prometheus-stack/values.yaml",
        "kube-state-metrics.resources",
        1,
        False,
    ),
    (
        "kube-prometheus-stack",
        "node-exporter",
        "kube-prometheus-stack/values.yaml",
        "prometheus-node-exporter.resources",
        1,
        True,
    ),
    ("seaweedfs", "all-in-one (S3)", "seaweedfs/values.yaml", "allInOne.resources", 1, False),
    ("airflow", "api-server", "airflow/values.yaml", "apiServer.resources", 1, False),
    ("airflow", "scheduler", "airflow/values.yaml", "scheduler.resources", 1, False),
    (
        "airflow",
        "scheduler log groomer",
        "airflow/values.yaml",
        "scheduler.logGroomerSidecar.resources",
        1,
        False,
    ),
    ("airflow", "dag-processor", "airflow/values.yaml", "dagProcessor.resources", 1, False),
    (
        "airflow",
        "dag-processor log groomer",
        "airflow/values.yaml",
        "dagProcessor.logGroomerSidecar.resources",
        1,
        False,
    ),
    ("airflow", "triggerer", "airflow/values.yaml", "triggerer.resources", 1, False),
    (
        "airflow",
        "triggerer log groomer",
        "airflow/values.yaml",
        "triggerer.logGroomerSidecar.resources",
        1,
        False,
    ),
    (
        "airflow",
        "git-sync (dag-processor, triggerer)",
        "airflow/values.yaml",
        "dags.gitSync.resources",
        2,
        False,
    ),
    (
        "airflow",
        "task worker pod (one at a time)",
        "airflow/values.yaml",
        "workers.resources",
        1,
        False,
    ),
]
LONGHORN_CSI = [
    ("csi-attacher", "csi.attacherReplicaCount"),
    ("csi-provisioner", "csi.provisionerReplicaCount"),
    ("csi-resizer", "csi.resizerReplicaCount"),
    ("csi-snapshotter", "csi.snapshotterReplicaCount"),
]
# Not settable through the charts' values: explicit estimates (requests = limits here).
ESTIMATES = [
    ("k3s", "server + containerd + kubelet (measured footprint, not a request)", 500, 1536, True),
    ("longhorn", "instance-manager (guaranteedInstanceManagerCPU 5% of 4 vCPU)", 200, 256, True),
    (
        "longhorn",
        "engine-image, driver deployer, UI (chart sets no resources; estimate)",
        50,
        192,
        False,
    ),
    ("k3s", "CoreDNS + metrics-server (K3s add-ons' own requests)", 200, 140, False),
]


@dataclass
class Row:
    app: str
    component: str
    replicas: int
    cpu_req: int
    mem_req: int
    cpu_lim: int
    mem_lim: int
    source: str


def cpu_m(value: Any) -> int:
    text = str(value)
    return int(float(text[:-1])) if text.endswith("m") else int(float(text) * 1000)


def mem_mi(value: Any) -> int:
    text = str(value)
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1000 / 1048.576, "G": 1000 * 1000 / 1048576}
    for suffix in ("Ki", "Mi", "Gi", "M", "G"):
        if text.endswith(suffix):
            return round(float(text[: -len(suffix)]) * units[suffix])
    return round(int(text) / 1048576)


def dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _row(app, component, replicas, res, source) -> Row:
    req, lim = res.get("requests", {}), res.get("limits", {})
    return Row(
        app,
        component,
        replicas,
        cpu_m(req.get("cpu", 0)),
        mem_mi(req.get("memory", 0)),
        cpu_m(lim.get("cpu", 0)),
        mem_mi(lim.get("memory", 0)),
        source,
    )


def chart_rows(topology: str, nodes: int) -> list[Row]:
    rows = []
    values_dir = REPO / "helm-values"
    for app, comp, vfile, path, replicas, per_node in CHART_WORKLOADS:
        data = yaml.safe_load((values_dir / vfile).read_text(encoding="utf-8"))
        rows.append(
            _row(
                app,
                comp,
                replicas * (nodes if per_node else 1),
                dig(data, path),
                f"helm-values/{vfile}: {path}",
            )
        )
    lh = yaml.safe_load((values_dir / "longhorn/values.yaml").read_text(encoding="utf-8"))
    lh_topo = yaml.safe_load(
        (values_dir / (f"longhorn/values-{topology}.yaml")).read_text(encoding="utf-8")
    )
    import json

    limits = json.loads(lh["defaultSettings"]["systemManagedCSIComponentsResourceLimits"])
    for comp, path in LONGHORN_CSI:
        rows.append(
            _row(
                "longhorn",
                comp,
                int(dig(lh_topo, path)),
                limits[comp],
                "helm-values/longhorn: systemManagedCSIComponentsResourceLimits",
            )
        )
    for comp in ("longhorn-csi-plugin", "node-driver-registrar", "longhorn-liveness-probe"):
        rows.append(
            _row(
                "longhorn",
                comp + " (per node)",
                nodes,
                limits[comp],
                "helm-values/longhorn: systemManagedCSIComponentsResourceLimits",
            )
        )
    for app, comp, cpu, mem, per_node in ESTIMATES:
        rows.append(Row(app, comp, nodes if per_node else 1, cpu, mem, cpu, mem, "estimate"))
    return rows


def manifest_rows(topology: str) -> list[Row]:
    rows = []
    for overlay in sorted((REPO / "cluster/apps").glob(f"*/overlays/{topology}")):
        app = overlay.parent.parent.name
        if app == "root":
            continue
        docs = render.render(overlay)
        instances = {
            d["metadata"]["name"]: d["spec"].get("instances", 1)
            for d in docs
            if d.get("kind") == "Cluster"
        }
        for doc in docs:
            kind, spec = doc.get("kind"), doc.get("spec", {})
            src = f"cluster/apps/{app}"
            if kind in ("Deployment", "StatefulSet"):
                for c in spec["template"]["spec"]["containers"]:
                    rows.append(
                        _row(app, c["name"], spec.get("replicas", 1), c.get("resources", {}), src)
                    )
            elif kind == "Cluster":
                rows.append(
                    _row(
                        app,
                        "postgres instance",
                        spec.get("instances", 1),
                        spec.get("resources", {}),
                        src,
                    )
                )
            elif kind == "ObjectStore":
                sidecar = spec.get("instanceSidecarConfiguration", {}).get("resources", {})
                rows.append(
                    _row(app, "barman-cloud sidecar", sum(instances.values()) or 1, sidecar, src)
                )
            elif kind == "ResourceQuota":
                hard = spec["hard"]
                rows.append(
                    Row(
                        app,
                        "task pods (ResourceQuota ceiling)",
                        1,
                        cpu_m(hard["requests.cpu"]),
                        mem_mi(hard["requests.memory"]),
                        cpu_m(hard["limits.cpu"]),
                        mem_mi(hard["limits.memory"]),
                        src,
                    )
                )
    return rows


def all_rows(topology: str) -> list[Row]:
    nodes = NODES[topology]
    return manifest_rows(topology) + chart_rows(topology, nodes)


def totals(rows: list[Row]) -> tuple[int, int, int, int]:
    return (
        sum(r.cpu_req * r.replicas for r in rows),
        sum(r.mem_req * r.replicas for r in rows),
        sum(r.cpu_lim * r.replicas for r in rows),
        sum(r.mem_lim * r.replicas for r in rows),
    )


def markdown(topology: str = "single-node") -> str:
    rows = sorted(all_rows(topology), key=lambda r: (r.app, r.component))
    out = [
        "| app | component | x | CPU request | memory request | CPU limit | memory limit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.app} | {r.component} | {r.replicas} | {r.cpu_req}m | {r.mem_req}Mi "
            f"| {r.cpu_lim}m | {r.mem_lim}Mi |"
        )
    cr, mr, cl, ml = totals(rows)
    out.append(
        f"| **total** | {topology}, {NODES[topology]} node(s) | | **{cr}m** | **{mr}Mi** "
        f"| {cl}m | {ml}Mi |"
    )
    out.append("")
    out.append(
        f"Single 4 vCPU / 16 GiB VM: requests use {100 * cr / VM_CPU_M:.0f}% of the CPU and "
        f"{100 * mr / VM_MEM_MI:.0f}% of the memory (budget: at most {100 * MAX_CPU_SHARE:.0f}% "
        f"and {100 * MAX_MEM_SHARE:.0f}%); limits may burst to {100 * cl / VM_CPU_M:.0f}% CPU "
        f"and {100 * ml / VM_MEM_MI:.0f}% memory, which only matters if everything peaks at once."
    )
    return "\n".join(out)


def fits(topology: str = "single-node") -> tuple[bool, str]:
    cr, mr, _, _ = totals(all_rows(topology))
    cpu, mem = VM_CPU_M * NODES[topology], VM_MEM_MI * NODES[topology]
    ok = cr <= MAX_CPU_SHARE * cpu and mr <= MAX_MEM_SHARE * mem
    return ok, (
        f"requests {cr}m CPU / {mr}Mi memory on {cpu}m / {mem}Mi "
        f"({NODES[topology]} x 4 vCPU / 16 GiB)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topology", default="single-node", choices=sorted(NODES))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(args.topology))
    ok, summary = fits(args.topology)
    print(("fits: " if ok else "DOES NOT FIT: ") + summary, file=sys.stderr)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
