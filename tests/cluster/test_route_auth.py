"""Every way into the cluster is authenticated or public on purpose (cluster/tools/route_auth.py),
and the check catches each way of getting it wrong: planted routes, Ingresses, TCP routes,
LoadBalancer Services and chart ingresses, middlewares that are not auth or do not resolve,
Secrets nobody creates, stale or false entries in cluster/public-routes.yaml."""

from __future__ import annotations

import copy
import shutil
import time

import pytest
import yaml
from cluster_helpers import CLUSTER, REPO, load_tool

ra = load_tool("route_auth")

pytestmark = pytest.mark.usefixtures("vendored")

HOST = ".10.43.100.95.nip.io"


@pytest.fixture(scope="module")
def applied():
    """What the single-node cluster applies: (manifests per app, chart values per app)."""
    manifests, charts, errors = ra.applied("single-node")
    assert errors == []
    return manifests, charts


@pytest.fixture(scope="module")
def public():
    return ra.load_public_list()


@pytest.fixture(scope="module")
def secrets():
    return ra.created_secrets()


def run(applied, public, secrets, extra_docs=(), values_patch=None, app="ui"):
    manifests, charts = copy.deepcopy(applied)
    manifests[app] = manifests.get(app, []) + [copy.deepcopy(d) for d in extra_docs]
    if values_patch:
        name, patch = values_patch
        charts[name] = (ra.deep_merge(charts[name][0], patch), charts[name][1])
    return ra.check_docs(manifests, charts, public, secrets)


def route(name="planted", namespace="apps", host="planted", middlewares=None, kind="IngressRoute"):
    rule = {
        "kind": "Rule",
        "match": f"Host(`{host}{HOST}`)",
        "services": [{"name": "x", "port": 80}],
    }
    if middlewares is not None:
        rule["middlewares"] = middlewares
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"entryPoints": ["websecure"], "routes": [rule], "tls": {}},
    }


def middleware(name, namespace="apps", **spec):
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --- the real tree passes, with the expected answer per host ------------------------------------


@pytest.mark.parametrize("topology", ra.TOPOLOGIES)
def test_every_way_in_is_authenticated_or_listed(topology):
    start = time.perf_counter()
    result = ra.check(topology)
    took = time.perf_counter() - start
    assert result.errors == []
    assert result.applications >= 25 and result.objects > 100
    by_key = {e.key: e for e in result.exposures}
    assert by_key["IngressRoute mlflow/mlflow"].auth.startswith("basicAuth mlflow/mlflow-auth")
    assert by_key["IngressRoute apps/data-api"].auth.startswith("basicAuth apps/data-api-auth")
    assert by_key["IngressRoute traefik/traefik-dashboard"].auth.startswith("basicAuth")
    for listed in ("apps/ui", "apps/serving", "airflow/airflow-api-server"):
        assert by_key[f"IngressRoute {listed}"].auth == ""
    hosts = {h for e in result.exposures for h in e.hosts if h != "*"}
    names = ("mlflow", "api", "ui", "serving", "airflow", "argocd", "grafana", "traefik")
    assert hosts == {n + HOST for n in names}
    assert took < 30  # about 1 s on 2 busy cores


def test_the_middleware_secrets_come_from_create_secrets(secrets):
    assert {
        ("mlflow", "mlflow-basic-auth"),
        ("mlflow", "mlflow-login"),
        ("apps", "data-api-basic-auth"),
        ("apps", "serving-admin"),
        ("traefik", "traefik-dashboard-auth"),
    } <= secrets


def test_the_public_list_gives_reasons(public):
    assert {e["access"] for e in public.values()} == {"public", "app-login"}
    assert public["IngressRoute apps/ui"]["access"] == "public"
    assert public["IngressRoute apps/serving"]["access"] == "public"
    assert "IngressRoute mlflow/mlflow" not in public
    assert "IngressRoute apps/data-api" not in public


def test_docs_table_names_every_host_and_its_login():
    text = (REPO / "docs/cluster.md").read_text()
    section = text.split("## Routes and logins", 1)[1].split("\n## ", 1)[0]
    for name in ("mlflow", "api", "ui", "serving", "airflow", "argocd", "grafana", "traefik"):
        assert f"https://{name}{HOST}" in section, name
    for secret in (
        "mlflow-login",
        "data-api-login",
        "serving-admin",
        "airflow-admin",
        "grafana-admin",
    ):
        assert secret in section, secret


# --- negative tests: each planted mistake fails the check ---------------------------------------


def test_planted_unauthenticated_route_fails(applied, public, secrets):
    result = run(applied, public, secrets, [route()])
    assert any("IngressRoute apps/planted" in e and "not listed" in e for e in result.errors)
    assert len(result.errors) == 1


def test_planted_route_with_a_non_auth_middleware_fails(applied, public, secrets):
    docs = [middleware("headers", headers={"customRequestHeaders": {"X-A": "b"}})]
    docs.append(route(middlewares=[{"name": "headers"}]))
    result = run(applied, public, secrets, docs)
    assert any("IngressRoute apps/planted" in e for e in result.errors)


def test_planted_route_with_a_missing_or_foreign_middleware_fails(applied, public, secrets):
    for ref in (
        {"name": "nowhere"},
        {"name": "mlflow-auth", "namespace": "mlflow"},
        {"name": "a@file"},
    ):
        result = run(applied, public, secrets, [route(middlewares=[ref])])
        assert any("IngressRoute apps/planted" in e and "not listed" in e for e in result.errors)
        assert any("middleware" in e for e in result.errors), ref


def test_basic_auth_secret_nobody_creates_fails(applied, public, secrets):
    docs = [middleware("typo-auth", basicAuth={"secret": "data-api-basic-auht"})]
    docs.append(route(middlewares=[{"name": "typo-auth"}]))
    result = run(applied, public, secrets, docs)
    assert any("data-api-basic-auht is not made by" in e for e in result.errors)


def test_authenticated_planted_route_passes_also_through_a_chain(applied, public, secrets):
    docs = [
        middleware("chain", chain={"middlewares": [{"name": "data-api-auth"}]}),
        route(middlewares=[{"name": "chain"}]),
        route(name="direct", middlewares=[{"name": "data-api-auth"}]),
    ]
    result = run(applied, public, secrets, docs)
    assert result.errors == []


def test_one_unauthenticated_rule_in_a_route_fails(applied, public, secrets):
    doc = route(middlewares=[{"name": "data-api-auth"}])
    extra = copy.deepcopy(doc["spec"]["routes"][0])
    del extra["middlewares"]
    extra["match"] = f"Host(`planted{HOST}`) && PathPrefix(`/admin`)"
    doc["spec"]["routes"].append(extra)
    result = run(applied, public, secrets, [doc])
    assert any("IngressRoute apps/planted" in e for e in result.errors)


def test_planted_ingress_needs_the_middleware_annotation(applied, public, secrets):
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "planted", "namespace": "apps"},
        "spec": {"rules": [{"host": "planted" + HOST}]},
    }
    result = run(applied, public, secrets, [ingress])
    assert any("Ingress apps/planted" in e and "not listed" in e for e in result.errors)
    annotated = copy.deepcopy(ingress)
    annotated["metadata"]["annotations"] = {
        ra.MIDDLEWARE_ANNOTATION: "apps-data-api-auth@kubernetescrd"
    }
    assert run(applied, public, secrets, [annotated]).errors == []


@pytest.mark.parametrize("kind", ["IngressRouteTCP", "IngressRouteUDP"])
def test_tcp_and_udp_routes_must_be_listed(applied, public, secrets, kind):
    doc = route(kind=kind)
    doc["spec"]["routes"][0]["match"] = f"HostSNI(`planted{HOST}`)"
    result = run(applied, public, secrets, [doc])
    assert any(f"{kind} apps/planted" in e for e in result.errors)


def test_loadbalancer_service_must_be_listed(applied, public, secrets):
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "planted", "namespace": "apps"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }
    result = run(applied, public, secrets, [svc])
    assert any("Service apps/planted" in e for e in result.errors)


@pytest.mark.parametrize(
    ("app", "patch", "key"),
    [
        ("kube-prometheus-stack", {"grafana": {"ingress": {"enabled": True}}}, "grafana.ingress"),
        (
            "kube-prometheus-stack",
            {"prometheus": {"ingress": {"enabled": True}}},
            "prometheus.ingress",
        ),
        (
            "kube-prometheus-stack",
            {"alertmanager": {"ingress": {"enabled": True}}},
            "alertmanager.ingress",
        ),
        ("longhorn", {"ingress": {"enabled": True}}, "ingress"),
        ("longhorn", {"service": {"ui": {"type": "NodePort"}}}, "service.ui.type=NodePort"),
        ("seaweedfs", {"filer": {"ingress": {"enabled": True}}}, "filer.ingress"),
        ("seaweedfs", {"s3": {"ingress": {"enabled": True}}}, "s3.ingress"),
        ("traefik", {"ingressRoute": {"dashboard": {"enabled": True}}}, "ingressRoute.dashboard"),
        ("argo-cd", {"server": {"ingress": {"enabled": True}}}, "server.ingress"),
    ],
)
def test_chart_ingress_switched_on_in_values_must_be_listed(
    applied, public, secrets, app, patch, key
):
    assert run(applied, public, secrets).errors == []
    result = run(applied, public, secrets, values_patch=(app, patch))
    assert any(f"helm {app} {key} " in e for e in result.errors), result.errors


def test_listed_but_authenticated_route_fails(applied, secrets):
    public = ra.load_public_list()
    public["IngressRoute mlflow/mlflow"] = {
        "key": "IngressRoute mlflow/mlflow",
        "access": "public",
        "reason": "pretend it is public on purpose",
    }
    result = run(applied, public, secrets)
    assert any("is authenticated" in e and "mlflow/mlflow" in e for e in result.errors)


def test_stale_entry_and_false_login_checks_fail(monkeypatch, tmp_path):
    listed = yaml.safe_load(ra.PUBLIC_LIST.read_text())
    listed["exposures"].append(
        {"key": "IngressRoute apps/gone", "access": "public", "reason": "a route removed long ago"}
    )
    for entry in listed["exposures"]:
        if entry["key"] == "IngressRoute airflow/airflow-api-server":
            entry["checks"][0]["not"] = "$(AIRFLOW_ADMIN_PASSWORD)"  # i.e. what we ship
        if entry["key"] == "IngressRoute monitoring/grafana":
            entry["credentials"] = ["monitoring/grafana-admn"]
    path = tmp_path / "public-routes.yaml"
    path.write_text(yaml.safe_dump(listed))
    result = ra.check("single-node", ra.load_public_list(path))
    assert any("lists IngressRoute apps/gone" in e for e in result.errors)
    assert any("createUserJob.defaultUser.password" in e for e in result.errors)
    assert any("grafana-admn are not made by" in e for e in result.errors)


def test_cli_fails_on_a_route_planted_in_a_copy_of_the_tree(monkeypatch, tmp_path, capsys):
    root = tmp_path / "repo"
    shutil.copytree(CLUSTER, root / "cluster")
    shutil.copytree(REPO / "helm-values", root / "helm-values")
    base = root / "cluster/apps/ui/base"
    (base / "planted.yaml").write_text(yaml.safe_dump(route(host="planted")))
    kust = yaml.safe_load((base / "kustomization.yaml").read_text())
    kust["resources"].append("planted.yaml")
    (base / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    monkeypatch.setattr(ra, "REPO", root)
    monkeypatch.setattr(ra, "CLUSTER", root / "cluster")
    monkeypatch.setattr(ra, "PUBLIC_LIST", root / "cluster/public-routes.yaml")
    monkeypatch.setattr(ra, "CREATE_SECRETS", root / "cluster/secrets/create-secrets.sh")
    assert ra.main(["--topology", "single-node", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "IngressRoute apps/planted" in err and "planted" + HOST in err
    (base / "planted.yaml").write_text(
        yaml.safe_dump(route(host="planted", middlewares=[{"name": "data-api-auth"}]))
    )
    assert ra.main(["--topology", "single-node", "--quiet"]) == 0
