"""The refs check (cluster/tools/checks/refs.py)."""

from __future__ import annotations

from check_helpers import checks, deployment, obj, topology


def test_refs_flag_routes_and_scrapes_that_lead_nowhere():
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 8000}]},
    }
    route = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "routes": [
                {"match": "Host(`x`)", "kind": "Rule", "services": [{"name": "web", "port": 8000}]}
            ]
        },
    }
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "endpoints": [{"port": "http"}]},
    }
    good = [obj(deployment()), obj(svc), obj(route), obj(monitor)]
    assert checks.check_refs(topology(good)) == []
    route["spec"]["routes"][0]["services"][0]["port"] = 80
    monitor["spec"]["endpoints"][0]["port"] = "metrics"
    svc["spec"]["selector"] = {"app": "other"}
    errors = checks.check_refs(topology([obj(deployment()), obj(svc), obj(route), obj(monitor)]))
    assert len(errors) == 3
