"""network - every declared flow is allowed by the NetworkPolicies of both ends (ours and the
charts', evaluated as the API defines them: checks/netpol.py).

The flows: each ServiceMonitor's and PodMonitor's scrape from the Prometheus pods; each
IngressRoute from the Traefik pods to its Service's pods; and every service URL a pod is
given - in its env, in the ConfigMaps it reads or mounts, in the Secrets create-secrets.sh
writes that it reads - from that pod (PostgreSQL, S3, MLflow, the data API, Airflow's own
API server); the DAG's task pods get pipeline-env and pipeline-secrets, and each URL that
pipeline.env documents as an alternative (`# DATA_API_URL=http://<address>:<port>`, a
service outside the cluster) is a flow too. Pods that operators make are modelled: the
CloudNativePG instances (and their -rw/-ro/-r Services; their backups to the ObjectStores of
their namespace) and the Prometheus pods; longhorn-manager calls the endpoint of the backup
target's Secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import render
from pod_security import containers

from .common import REPO, applied, pod_labels, pod_spec
from .netpol import Endpoint, blocked, selects
from .psa import pod_templates_in_configmaps

SERVICE_HOST = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+]*)://)?(?:[^@/\s\"']*@)?(?P<svc>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)"
    r"\.svc(?:\.cluster\.local)?(?::(?P<port>\d+))?"
)
SHORT_URL = re.compile(r"(?P<scheme>https?)://(?P<svc>[a-z][a-z0-9-]*)(?::(?P<port>\d+))?[/\"'\s]")
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "s3": 443}
PIPELINE_ENV = REPO / "cluster/apps/pipeline/base/pipeline.env"
SCRIPT = REPO / "cluster/secrets/create-secrets.sh"
# Airflow reads pipeline-env only to build the DAG at parse time: the tasks call those URLs.
PARSE_ONLY = {("airflow", "pipeline-env")}


def _pod(what: str, namespace: str, labels: dict, spec: dict | None) -> Endpoint:
    ports = {
        p["name"]: int(p["containerPort"])
        for c in containers(spec or {})
        for p in c.get("ports") or []
        if p.get("name")
    }
    return Endpoint(what, namespace, dict(labels), ports)


def operator_pods(objs: list[render.Obj]) -> tuple[list[Endpoint], list[dict]]:
    """Pods and Services operators make: CloudNativePG instances, Prometheus."""
    pods, services = [], []
    for obj in objs:
        if obj.kind == "Cluster" and obj.doc.get("apiVersion", "").startswith("postgresql.cnpg"):
            labels = {"cnpg.io/cluster": obj.name, "cnpg.io/podRole": "instance"}
            ports = {"postgresql": 5432, "metrics": 9187, "status": 8000}
            pods.append(Endpoint(f"postgres {obj.name}", obj.namespace, labels, ports))
            for suffix in ("rw", "ro", "r"):
                services.append(
                    {
                        "metadata": {"name": f"{obj.name}-{suffix}", "namespace": obj.namespace},
                        "spec": {
                            "selector": {"cnpg.io/cluster": obj.name},
                            "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432}],
                        },
                    }
                )
        if obj.kind == "Prometheus":
            labels = {
                "app.kubernetes.io/name": "prometheus",
                "app.kubernetes.io/managed-by": "prometheus-operator",
                "app.kubernetes.io/instance": obj.name,
                "operator.prometheus.io/name": obj.name,
                "prometheus": obj.name,
            }
            pods.append(Endpoint(f"Prometheus {obj.name}", obj.namespace, labels, {"web": 9090}))
    return pods, services


class Network:
    """The pods, Services and policies of a topology, and the flows checked against them."""

    def __init__(self, topo: render.Topology) -> None:
        objs = list(applied(topo))
        self.objs = objs
        self.policies = [o.doc for o in objs if o.kind == "NetworkPolicy"]
        self.ns_labels = {
            o.name: {
                **((o.doc.get("metadata") or {}).get("labels") or {}),
                "kubernetes.io/metadata.name": o.name,
            }
            for o in objs
            if o.kind == "Namespace"
        }
        self.workloads = [
            o
            for base in objs
            for o in [base, *pod_templates_in_configmaps(base)]
            if pod_spec(o.doc) is not None
        ]
        self.pods = [
            _pod(f"{o.kind} {o.namespace}/{o.name}", o.namespace, pod_labels(o), pod_spec(o.doc))
            for o in self.workloads
        ]
        made_pods, made_services = operator_pods(objs)
        self.pods += made_pods
        self.services = [o.doc for o in objs if o.kind == "Service"] + made_services
        self.errors: list[str] = []
        self.seen: set[tuple[str, str, int]] = set()

    def service_targets(self, namespace: str, name: str, port: int | str) -> list[tuple]:
        """(pod, container port) behind a Service port (its number or name)."""
        out = []
        for svc in self.services:
            meta, spec = svc["metadata"], svc.get("spec") or {}
            if meta.get("namespace") != namespace or meta.get("name") != name:
                continue
            for item in spec.get("ports") or []:
                if port not in (item.get("port"), item.get("name")):
                    continue
                target = item.get("targetPort", item.get("port"))
                for pod in self.pods_selected(namespace, spec.get("selector")):
                    number = pod.ports.get(target) if isinstance(target, str) else target
                    if number is not None:
                        out.append((pod, int(number)))
        return out

    def pods_selected(self, namespace: str, selector: dict | None) -> list[Endpoint]:
        if not selector:
            return []
        return [
            p
            for p in self.pods
            if p.namespace == namespace and selects({"matchLabels": selector}, p.labels)
        ]

    def flow(self, why: str, source: Endpoint, destination: Endpoint, port: int) -> None:
        key = (source.what, destination.what, port)
        if key in self.seen or source.what == destination.what:  # a pod naming itself
            return
        self.seen.add(key)
        reason = blocked(self.policies, source, destination, port, self.ns_labels)
        if reason:
            self.errors.append(
                f"{why}: {source.what} -> {destination.what} port {port} is blocked by {reason}; "
                "allow the flow in the policy of that namespace"
            )


def _monitor_namespaces(spec: dict, own: str, net: Network) -> list[str]:
    selector = spec.get("namespaceSelector") or {}
    if selector.get("any"):
        return sorted({p.namespace for p in net.pods})
    return list(selector.get("matchNames") or [own])


def scrape_flows(net: Network) -> None:
    scrapers = [p for p in net.pods if p.labels.get("app.kubernetes.io/name") == "prometheus"]
    for obj in net.objs:
        spec = obj.doc.get("spec") or {}
        if obj.kind == "ServiceMonitor":
            for ns in _monitor_namespaces(spec, obj.namespace, net):
                for svc in net.services:
                    meta = svc["metadata"]
                    if meta.get("namespace") != ns or not selects(
                        spec.get("selector"), meta.get("labels") or {}
                    ):
                        continue
                    for endpoint in spec.get("endpoints") or []:
                        targets = _endpoint_targets(net, svc, endpoint)
                        for scraper in scrapers:
                            for pod, port in targets:
                                net.flow(f"{obj.kind} {obj.name}", scraper, pod, port)
        if obj.kind == "PodMonitor":
            for ns in _monitor_namespaces(spec, obj.namespace, net):
                pods = [
                    p
                    for p in net.pods
                    if p.namespace == ns and selects(spec.get("selector"), p.labels)
                ]
                for endpoint in spec.get("podMetricsEndpoints") or []:
                    for pod in pods:
                        port = pod.ports.get(endpoint.get("port", ""))
                        for scraper in scrapers:
                            if port:
                                net.flow(f"PodMonitor {obj.name}", scraper, pod, port)


def _endpoint_targets(net: Network, svc: dict, endpoint: dict) -> list[tuple]:
    meta = svc["metadata"]
    if endpoint.get("port"):
        return net.service_targets(meta["namespace"], meta["name"], endpoint["port"])
    target = endpoint.get("targetPort")
    pods = net.pods_selected(meta["namespace"], (svc.get("spec") or {}).get("selector"))
    out = []
    for pod in pods:
        number = pod.ports.get(target) if isinstance(target, str) else target
        if number:
            out.append((pod, int(number)))
    return out


def route_flows(net: Network) -> None:
    proxies = [p for p in net.pods if p.labels.get("app.kubernetes.io/name") == "traefik"]
    for obj in net.objs:
        if obj.kind != "IngressRoute":
            continue
        for route in (obj.doc.get("spec") or {}).get("routes") or []:
            for svc in route.get("services") or []:
                if svc.get("kind", "Service") != "Service":
                    continue
                namespace = svc.get("namespace") or obj.namespace
                for pod, port in net.service_targets(namespace, svc["name"], svc.get("port")):
                    for proxy in proxies:
                        net.flow(f"IngressRoute {obj.namespace}/{obj.name}", proxy, pod, port)


def script_secret_texts(path: Path = SCRIPT) -> dict[tuple[str, str], str]:
    """{(namespace, name): the apply_secret line} with the script's literal variables
    (PG_HOST, S3_ENDPOINT, ...) filled in, to find the service URLs a Secret holds."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    literals = dict(re.findall(r'^([A-Z0-9_]+)="([^"$]*)"$', text, re.M))
    out = {}
    for m in re.finditer(r"^\s*apply_secret\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s+(.*)$", text, re.M):
        line = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda v: literals.get(v.group(1), v.group(0)), m[3])
        out[(m[1], m[2])] = line
    return out


def service_urls(text: str, namespace: str) -> Iterator[tuple[str, str, int]]:
    """(namespace, service, port) of every Service URL in a text; a short name
    (http://name:port) is a Service of the reader's own namespace."""
    for m in SERVICE_HOST.finditer(text):
        port = m["port"] or DEFAULT_PORTS.get((m["scheme"] or "").split("+")[0])
        if port:
            yield m["ns"], m["svc"], int(port)
    for m in SHORT_URL.finditer(text + " "):
        yield namespace, m["svc"], int(m["port"] or DEFAULT_PORTS[m["scheme"]])


def pod_texts(net: Network, obj: render.Obj, secrets: dict) -> list[str]:
    """The env values, ConfigMaps and script-made Secrets a pod template reads or mounts."""
    spec = pod_spec(obj.doc) or {}
    configmaps, secret_names, out = set(), set(), []
    for c in containers(spec):
        out += [str(e["value"]) for e in c.get("env") or [] if "value" in e]
        out += [str(a) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
        for e in c.get("envFrom") or []:
            configmaps.add((e.get("configMapRef") or {}).get("name"))
            secret_names.add((e.get("secretRef") or {}).get("name"))
        for e in c.get("env") or []:
            source = e.get("valueFrom") or {}
            configmaps.add((source.get("configMapKeyRef") or {}).get("name"))
            secret_names.add((source.get("secretKeyRef") or {}).get("name"))
    for vol in spec.get("volumes") or []:
        configmaps.add((vol.get("configMap") or {}).get("name"))
        secret_names.add((vol.get("secret") or {}).get("secretName"))
    for cm in net.objs:
        read = cm.kind == "ConfigMap" and cm.namespace == obj.namespace and cm.name in configmaps
        if read and (cm.namespace, cm.name) not in PARSE_ONLY:
            out += [str(v) for v in (cm.doc.get("data") or {}).values()]
    out += [secrets[(obj.namespace, n)] for n in secret_names if (obj.namespace, n) in secrets]
    return out


def url_flows(net: Network, texts_of: list[tuple[Endpoint, list[str]]]) -> None:
    for source, texts in texts_of:
        for text in texts:
            for ns, svc, port in sorted(set(service_urls(text, source.namespace))):
                for pod, target in net.service_targets(ns, svc, port):
                    net.flow(f"URL of {svc}.{ns}:{port}", source, pod, target)


def operator_texts(net: Network, secrets: dict) -> list[tuple[Endpoint, list[str]]]:
    """URLs operators' pods call for us: each CloudNativePG instance, the ObjectStores of its
    namespace (barman backups); longhorn-manager, the backup target Secret's endpoint."""
    out = []
    stores = [o for o in net.objs if o.kind == "ObjectStore"]
    for pod in net.pods:
        if "cnpg.io/cluster" in pod.labels:
            texts = [str(s.doc.get("spec")) for s in stores if s.namespace == pod.namespace]
            out.append((pod, texts))
        if pod.labels.get("app") == "longhorn-manager":
            out.append((pod, [v for (ns, _), v in secrets.items() if ns == pod.namespace]))
    return out


def documented_alternatives(path: Path = PIPELINE_ENV) -> list[tuple[str, str, int]]:
    """(key, address, port) of each `# KEY=http://<IPv4>:<port>` a settings file documents."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return [
        (key, address, int(port or DEFAULT_PORTS[scheme]))
        for key, scheme, address, port in re.findall(
            r"^#.*?\b([A-Z_]+)=(https?)://(\d+\.\d+\.\d+\.\d+)(?::(\d+))?", text, re.M
        )
    ]


def check_network(
    topo: render.Topology, script: Path = SCRIPT, pipeline_env: Path = PIPELINE_ENV
) -> list[str]:
    net = Network(topo)
    scrape_flows(net)
    route_flows(net)
    secrets = script_secret_texts(script)
    sources = [
        (pod, pod_texts(net, obj, secrets))
        for pod, obj in zip(net.pods, net.workloads, strict=False)
    ]
    task_pod = Endpoint("the DAG's task pods", "pipeline", {"app.kubernetes.io/part-of": "dag"})
    task_texts = [
        str(v)
        for o in net.objs
        if o.kind == "ConfigMap" and (o.namespace, o.name) == ("pipeline", "pipeline-env")
        for v in (o.doc.get("data") or {}).values()
    ] + [secrets.get(("pipeline", "pipeline-secrets"), "")]
    url_flows(net, [*sources, (task_pod, task_texts), *operator_texts(net, secrets)])
    for key, address, port in documented_alternatives(pipeline_env):
        outside = Endpoint(f"{key} {address} (outside the cluster)", address=address)
        net.flow(
            f"{pipeline_env.name} documents {key} outside the cluster", task_pod, outside, port
        )
    return net.errors
