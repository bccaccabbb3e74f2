"""The waves check (cluster/tools/checks/waves.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, deployment, ns, obj, topology


def _lb() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "traefik", "namespace": "apps"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }


def _pool(kind="IPAddressPool") -> dict:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": kind,
        "metadata": {"name": "p", "namespace": "metallb-system"},
    }


def test_waves_flag_a_load_balancer_before_its_address_pool():
    def topo(pool_wave):
        return topology(
            [
                obj(ns("apps", "privileged"), "ns"),
                obj(ns("metallb-system", "privileged"), "ns"),
                obj(_lb(), "traefik"),
                obj(_pool(), "pool"),
                obj(_pool("L2Advertisement"), "pool"),
            ],
            apps=(("ns", 0), ("traefik", 1), ("pool", pool_wave)),
        )

    errors = [e for e in checks.check_waves(topo(2)) if "MetalLB IPAddressPool" in e]
    assert errors and "wave 2" in errors[0]
    assert not [e for e in checks.check_waves(topo(1)) if "MetalLB IPAddressPool" in e]


def test_waves_flag_a_claim_before_its_default_storage_class_and_a_cr_before_its_crd():
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "apps"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "longhorn",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "driver.longhorn.io",
    }
    topo = topology(
        [obj(ns("apps", "privileged"), "ns"), obj(pvc, "prom"), obj(sc, "storage")],
        apps=(("ns", 0), ("prom", 1), ("storage", 2)),
    )
    assert any("default StorageClass" in e for e in checks.check_waves(topo))
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps"},
    }
    topo = topology(
        [obj(ns("apps", "privileged"), "ns"), obj(widget, "a")], apps=(("ns", 0), ("a", 1))
    )
    assert any("CRD of example.com/v1 Widget" in e for e in checks.check_waves(topo))


def test_waves_flag_images_the_workflow_does_not_build_or_builds_from_the_wrong_stage(monkeypatch):
    sha = "0" * 40
    assert checks.image_problems(f"docker.io/realtor-mlops/airflow:{sha}") == []
    assert checks.image_problems(f"docker.io/realtor-mlops/nothing:{sha}")
    entry = dict(checks.workflow_images()["airflow"])
    entry.pop("target")
    monkeypatch.setattr(checks.images, "workflow_images", lambda: {"airflow": entry})
    problems = checks.image_problems(f"docker.io/realtor-mlops/airflow:{sha}")
    assert problems and "airflow-local" in problems[0]


def test_waves_flag_a_pod_whose_secret_nothing_creates():
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "nowhere"}}]
    topo = topology(
        [obj(ns("apps", "restricted"), "ns"), obj(deployment(pod=pod))], apps=(("ns", 0), ("a", 1))
    )
    errors = checks.check_waves(topo)
    assert any("Secret apps/nowhere" in e for e in errors)
    cert = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "c", "namespace": "apps"},
        "spec": {"secretName": "nowhere"},
    }
    topo.objects.append(obj(cert))
    assert not [e for e in checks.check_waves(topo) if "Secret apps/nowhere" in e]


def test_waves_flag_a_key_the_secrets_script_does_not_write():
    def topo(key):
        pod = copy.deepcopy(RESTRICTED_POD)
        ref = {"secretKeyRef": {"name": "airflow-admin", "key": key}}
        pod["containers"][0]["env"] = [{"name": "P", "valueFrom": ref}]
        objects = [
            obj(ns("airflow", "baseline"), "ns"),
            obj(deployment(namespace="airflow", pod=pod)),
        ]
        return topology(objects, apps=(("ns", 0), ("a", 1)))

    assert not [e for e in checks.check_waves(topo("password")) if "airflow-admin" in e]
    assert [e for e in checks.check_waves(topo("pasword")) if "key 'pasword'" in e]


def test_waves_flag_a_resource_applied_with_its_admission_webhook():
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "metallb"},
        "webhooks": [
            {
                "name": "pools.metallb.io",
                "rules": [{"apiGroups": ["metallb.io"], "resources": ["ipaddresspools"]}],
            }
        ],
    }

    def topo(pool_wave):
        objects = [
            obj(ns("metallb-system", "privileged"), "ns"),
            obj(webhook, "metallb"),
            obj(_pool(), "pool"),
        ]
        return topology(objects, apps=(("ns", 0), ("metallb", 1), ("pool", pool_wave)))

    assert [e for e in checks.check_waves(topo(1)) if "admission webhook" in e]
    assert not [e for e in checks.check_waves(topo(2)) if "admission webhook" in e]


def test_waves_flag_a_load_balancer_address_outside_every_pool():
    pool = _pool()
    pool["spec"] = {"addresses": ["10.43.100.95-10.43.100.99"]}
    lb = _lb()
    lb["metadata"]["annotations"] = {"metallb.io/loadBalancerIPs": "10.43.100.95"}
    objects = [obj(ns("apps", "privileged"), "ns"), obj(ns("metallb-system", "privileged"), "ns")]
    good = topology(
        [*objects, obj(lb, "t"), obj(pool, "p"), obj(_pool("L2Advertisement"), "p")],
        apps=(("ns", 0), ("p", 1), ("t", 2)),
    )
    assert checks.check_waves(good) == [] or not [
        e for e in checks.check_waves(good) if "no IPAddressPool" in e
    ]
    lb["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = "10.43.100.120"
    bad = topology(
        [*objects, obj(lb, "t"), obj(pool, "p"), obj(_pool("L2Advertisement"), "p")],
        apps=(("ns", 0), ("p", 1), ("t", 2)),
    )
    assert [
        e for e in checks.check_waves(bad) if "10.43.100.120, which no IPAddressPool holds" in e
    ]
