"""What the rendered tree gives a pod besides its own spec: ConfigMaps and Secrets (rendered,
plus those create-secrets.sh makes), the backing stores started for it (TLS PostgreSQL as the
CloudNativePG Cluster declares it, SeaweedFS as the chart's values configure it), and every
Service name mapped to a local port."""

from __future__ import annotations

import base64
from pathlib import Path

import render
from workloads import backing, made_secrets
from workloads.container import Workload
from workloads.environment import Store
from workloads.network import Network, free_port

SEAWEED_SERVICE = ("storage", "seaweedfs-all-in-one", 8333)
CNPG_SERVICES = ("-rw", "-ro", "-r")  # the Services CloudNativePG makes for a Cluster


def config_maps(topology: render.Topology) -> Store:
    return {
        (o.namespace, o.name): {k: str(v) for k, v in (o.doc.get("data") or {}).items()}
        for o in topology.objects
        if o.kind == "ConfigMap"
    }


def secrets(topology: render.Topology, workdir: Path) -> Store:
    out = made_secrets.create_secrets(workdir)
    for obj in topology.objects:
        if obj.kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (obj.doc.get("data") or {}).items()}
            data.update(obj.doc.get("stringData") or {})
            out.setdefault((obj.namespace, obj.name), data)
    return out


def seaweed_buckets(topology: render.Topology) -> list[str]:
    for chart in topology.charts:
        if chart.chart.startswith("seaweedfs-"):
            s3 = (chart.values.get("allInOne") or {}).get("s3") or {}
            return [b["name"] for b in s3.get("createBuckets") or []]
    raise LookupError("no seaweedfs chart in the rendered tree")


def start_postgres(topology: render.Topology, store: Store, net: Network):
    pg = backing.start_tls_postgres()
    for obj in topology.objects:
        if obj.kind == "Cluster" and obj.doc.get("apiVersion", "").startswith("postgresql.cnpg.io"):
            backing.apply_cnpg_cluster(pg, obj.doc, store)
            for suffix in CNPG_SERVICES:
                net.add(obj.namespace, obj.name + suffix, 5432, pg.port)
    return pg


def start_s3(topology: render.Topology, store: Store, net: Network, workdir: Path):
    config = store[("storage", "seaweedfs-s3-config")]["seaweedfs_s3_config"]
    server = backing.start_seaweed(workdir, config, seaweed_buckets(topology))
    namespace, name, port = SEAWEED_SERVICE
    net.add(namespace, name, port, server.s3_port)
    return server


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def map_services(topology: render.Topology, workloads: list[Workload], net: Network) -> None:
    """Each workload's ports get free local ports; each rendered Service that selects it maps
    its ports to them."""
    for workload in workloads:
        for port in workload.container.get("ports") or []:
            workload.ports.setdefault(int(port["containerPort"]), free_port())
    for obj in topology.objects:
        if obj.kind != "Service":
            continue
        selector = (obj.doc.get("spec") or {}).get("selector") or {}
        for workload in workloads:
            if workload.namespace != obj.namespace or not _selects(selector, workload.labels):
                continue
            named = {
                p.get("name"): int(p["containerPort"])
                for p in workload.container.get("ports") or []
            }
            for port in obj.doc["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                target = named.get(target) if isinstance(target, str) else int(target)
                if target in workload.ports:
                    net.add(obj.namespace, obj.name, int(port["port"]), workload.ports[target])
