"""refs - an IngressRoute's Service and port exist, a ServiceMonitor selects a Service port,
a Service of ours selects a pod."""

from __future__ import annotations

import re

import render
from pod_security import containers

from .common import applied, labels_match, pod_labels, pod_spec


def cluster_made_services(objs: list[render.Obj]) -> list[render.Obj]:
    """Services no manifest holds: the API server's (default/kubernetes) and the kubelet
    Service the Prometheus operator keeps when it runs with --kubelet-service=NS/NAME."""

    def service(namespace: str, name: str, labels: dict, ports: list[str]) -> render.Obj:
        doc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"ports": [{"name": p, "port": 0} for p in ports]},
        }
        return render.Obj(doc, "cluster", -100, "made by the cluster")

    out = [
        service(
            "default", "kubernetes", {"component": "apiserver", "provider": "kubernetes"}, ["https"]
        )
    ]
    for obj in objs:
        spec = pod_spec(obj.doc)
        for c in containers(spec) if spec else []:
            for arg in c.get("args") or []:
                m = re.match(r"--kubelet-service=([^/]+)/(\S+)", str(arg))
                if m:
                    labels = {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}
                    out.append(
                        service(
                            m.group(1),
                            m.group(2),
                            labels,
                            ["https-metrics", "http-metrics", "cadvisor"],
                        )
                    )
    return out


def check_refs(topo: render.Topology) -> list[str]:
    """Routes and scrapes that lead nowhere: an IngressRoute's Service or port that does not
    exist, a ServiceMonitor that selects no Service port, a Service of ours that selects no pod."""
    objs = [o for o in applied(topo)]
    services = [o for o in objs if o.kind == "Service"] + cluster_made_services(objs)
    workloads = [
        o for o in objs if pod_spec(o.doc) is not None and o.kind not in ("Job", "CronJob")
    ]
    errors = []
    for obj in objs:
        spec = obj.doc.get("spec") or {}
        if obj.kind == "IngressRoute":
            for route in spec.get("routes") or []:
                for svc in route.get("services") or []:
                    if svc.get("kind", "Service") != "Service":
                        continue
                    namespace = svc.get("namespace") or obj.namespace
                    found = [
                        s for s in services if s.name == svc["name"] and s.namespace == namespace
                    ]
                    ports = {
                        p.get("port") for s in found for p in s.doc["spec"].get("ports", [])
                    } | {p.get("name") for s in found for p in s.doc["spec"].get("ports", [])}
                    if not found:
                        errors.append(
                            f"{obj.ref()}: routes to Service {namespace}/{svc['name']}, which nothing renders"
                        )
                    elif svc.get("port") not in ports:
                        errors.append(
                            f"{obj.ref()}: routes to port {svc.get('port')} of Service "
                            f"{namespace}/{svc['name']}, which has {sorted(map(str, ports))}"
                        )
        if obj.kind == "ServiceMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            names = (spec.get("namespaceSelector") or {}).get("matchNames") or [obj.namespace]
            found = [
                s
                for s in services
                if s.namespace in names
                and labels_match(selector, (s.doc.get("metadata") or {}).get("labels") or {})
            ]
            wanted = {e.get("port") for e in spec.get("endpoints") or [] if e.get("port")}
            have = {p.get("name") for s in found for p in s.doc["spec"].get("ports", [])}
            if not found:
                errors.append(
                    f"{obj.ref()}: selects no Service ({selector} in {names}): nothing is scraped"
                )
            elif wanted - have:
                errors.append(
                    f"{obj.ref()}: endpoint ports {sorted(wanted - have)} are not named on {[s.name for s in found]}"
                )
        if obj.kind == "Service" and not obj.from_chart and spec.get("selector"):
            pods = [
                w
                for w in workloads
                if w.namespace == obj.namespace and labels_match(spec["selector"], pod_labels(w))
            ]
            if not pods:
                errors.append(
                    f"{obj.ref()}: selector {spec['selector']} matches no pod template: no endpoints"
                )
    return errors
