"""Negative tests of the network check (cluster/tools/checks/network.py, netpol.py): a flow
that the NetworkPolicies of either end block is caught; the same flow once allowed passes."""

from __future__ import annotations

import copy

from cluster_helpers import load_tool

vm = load_tool("validate_manifests")
render, checks = vm.render, vm.checks
netpol = checks.netpol


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, ns: str, env: dict | None = None, port: int = 8080) -> dict:
    container = {
        "name": name,
        "image": "docker.io/library/busybox:1.37",
        "ports": [{"name": "http", "containerPort": port}],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


def service(name: str, ns: str, port: int = 80, target: object = "http") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "web", "port": port, "targetPort": target}],
        },
    }


def policy(name: str, ns: str, types: list[str], **rules) -> dict:
    spec = {"podSelector": {}, "policyTypes": types, **rules}
    meta = {"name": name, "namespace": ns}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": spec,
    }


def to_namespace(ns: str, port: object) -> dict:
    selector = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    return {"to": [{"namespaceSelector": selector}], "ports": [{"protocol": "TCP", "port": port}]}


def from_namespace(ns: str, port: object) -> dict:
    selector = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    return {"from": [{"namespaceSelector": selector}], "ports": [{"protocol": "TCP", "port": port}]}


def topo(*docs: dict) -> render.Topology:
    objs = [render.Obj(copy.deepcopy(d), "a", 0, "test", "Sync", 0) for d in docs]
    return render.Topology("single-node", 1, {}, objs, [])


def check(*docs: dict, tmp_path) -> list[str]:
    script = tmp_path / "create-secrets.sh"
    script.write_text("", encoding="utf-8")
    return checks.check_network(topo(*docs), script, tmp_path / "none.env")


BASE = (
    namespace("client"),
    namespace("server"),
    deployment("app", "client", {"API_URL": "http://api.server.svc.cluster.local:80/v1"}),
    deployment("api", "server"),
    service("api", "server"),
)


def test_a_service_url_blocked_by_the_egress_of_its_reader_or_the_ingress_of_its_server(tmp_path):
    assert check(*BASE, tmp_path=tmp_path) == []  # no policy: nothing isolated
    deny_egress = policy("deny", "client", ["Egress"])
    errors = check(*BASE, deny_egress, tmp_path=tmp_path)
    assert len(errors) == 1 and "blocked by the egress of client (policies deny)" in errors[0]
    # any policy selecting the pod may allow it; the named port resolves on the server pod
    allow = policy("allow", "client", ["Egress"], egress=[to_namespace("server", "http")])
    assert check(*BASE, deny_egress, allow, tmp_path=tmp_path) == []
    deny_ingress = policy("deny", "server", ["Ingress"])
    errors = check(*BASE, deny_egress, allow, deny_ingress, tmp_path=tmp_path)
    assert len(errors) == 1 and "blocked by the ingress of server" in errors[0], errors
    open_server = policy("in", "server", ["Ingress"], ingress=[from_namespace("client", 8080)])
    assert check(*BASE, deny_egress, allow, deny_ingress, open_server, tmp_path=tmp_path) == []
    wrong_port = policy("in", "server", ["Ingress"], ingress=[from_namespace("client", 80)])
    assert check(*BASE, deny_egress, allow, deny_ingress, wrong_port, tmp_path=tmp_path)


def test_a_scrape_and_a_route_blocked_by_the_ingress_of_their_target(tmp_path):
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "prom", "namespace": "monitoring"},
        "spec": {},
    }
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "api", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "namespaceSelector": {"matchNames": ["server"]},
            "endpoints": [{"port": "web"}],
        },
    }
    traefik = deployment("traefik", "traefik")
    traefik["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "traefik"
    route = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "api", "namespace": "server"},
        "spec": {"routes": [{"match": "Host(`x`)", "services": [{"name": "api", "port": 80}]}]},
    }
    docs = (
        *BASE,
        namespace("monitoring"),
        namespace("traefik"),
        prometheus,
        monitor,
        traefik,
        route,
    )
    assert check(*docs, tmp_path=tmp_path) == []
    only_client = policy("in", "server", ["Ingress"], ingress=[from_namespace("client", 8080)])
    errors = check(*docs, only_client, tmp_path=tmp_path)
    assert any(e.startswith("ServiceMonitor api: Prometheus prom") for e in errors), errors
    assert any(e.startswith("IngressRoute server/api: Deployment traefik/traefik") for e in errors)
    scrape = policy("scrape", "server", ["Ingress"], ingress=[from_namespace("monitoring", 8080)])
    route_in = policy("route", "server", ["Ingress"], ingress=[from_namespace("traefik", 8080)])
    assert check(*docs, only_client, scrape, route_in, tmp_path=tmp_path) == []


def test_a_url_the_settings_document_outside_the_cluster_needs_an_ip_block(tmp_path):
    env = tmp_path / "pipeline.env"
    env.write_text("# DATA_API_URL=http://192.0.2.7:8080 (the course's)\n", encoding="utf-8")
    script = tmp_path / "create-secrets.sh"
    script.write_text("", encoding="utf-8")
    in_cluster = policy("tasks", "pipeline", ["Egress"], egress=[to_namespace("apps", 8090)])
    errors = checks.check_network(topo(namespace("pipeline"), in_cluster), script, env)
    assert len(errors) == 1 and "192.0.2.7 (outside the cluster) port 8080" in errors[0], errors
    outside = {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.44.0.0/16"]}}],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }
    allowed = policy("tasks", "pipeline", ["Egress"], egress=[outside])
    assert checks.check_network(topo(namespace("pipeline"), allowed), script, env) == []
    excepted = copy.deepcopy(allowed)
    excepted["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = ["192.0.2.0/24"]
    assert checks.check_network(topo(namespace("pipeline"), excepted), script, env)


def test_selectors_follow_the_label_selector_rules():
    labels = {"app": "api", "tier": "web"}
    assert netpol.selects({}, labels)
    assert netpol.selects({"matchLabels": {"app": "api"}}, labels)
    assert not netpol.selects({"matchLabels": {"app": "ui"}}, labels)
    expr = {"key": "tier", "operator": "In", "values": ["web", "db"]}
    assert netpol.selects({"matchExpressions": [expr]}, labels)
    assert not netpol.selects(
        {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels
    )
    assert netpol.policy_types({"egress": []}) == ["Ingress", "Egress"]
    assert netpol.policy_types({}) == ["Ingress"]


def test_the_pipeline_reaches_outside_the_cluster_but_not_its_pod_and_service_networks():
    import re

    import yaml
    from cluster_helpers import CLUSTER

    versions = (CLUSTER / "bootstrap/versions.env").read_text(encoding="utf-8")
    cidrs = {m for m in re.findall(r'^(?:CLUSTER|SERVICE)_CIDR="([0-9./]+)"', versions, re.M)}
    docs = yaml.safe_load_all((CLUSTER / "apps/pipeline/base/pipeline.yaml").read_text("utf-8"))
    tasks = next(d for d in docs if d and d["kind"] == "NetworkPolicy")
    blocks = [p["ipBlock"] for r in tasks["spec"]["egress"] for p in r["to"] if "ipBlock" in p]
    assert len(blocks) == 1 and set(blocks[0]["except"]) == cidrs, (blocks, cidrs)
