"""The psa check (cluster/tools/checks/psa.py)."""

from __future__ import annotations

import copy
import json

from check_helpers import RESTRICTED_POD, checks, deployment, ns, obj, topology


def test_psa_refuses_a_pod_without_restricted_context_in_a_restricted_namespace():
    bare = deployment(pod={"containers": [{"name": "app", "image": "busybox:1.37"}]})
    errors = checks.check_psa(topology([obj(ns("apps", "restricted")), obj(bare)]))
    assert any("allowPrivilegeEscalation" in e for e in errors)
    assert any("runAsNonRoot" in e for e in errors)
    assert checks.check_psa(topology([obj(ns("apps", "restricted")), obj(deployment())])) == []


def test_psa_baseline_refuses_host_paths_and_privileged_but_privileged_namespace_does_not():
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["volumes"] = [{"name": "host", "hostPath": {"path": "/var"}}]
    pod["containers"][0]["securityContext"]["privileged"] = True
    hook = obj(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "hook", "namespace": "apps"},
            "spec": {"template": {"spec": pod}},
        },
        phase="PreSync",
    )
    errors = checks.check_psa(topology([obj(ns("apps", "baseline")), hook]))
    assert any("hostPath" in e for e in errors) and any("privileged" in e for e in errors)
    assert checks.check_psa(topology([obj(ns("apps", "privileged")), hook])) == []


def test_psa_flags_pods_at_the_warn_and_audit_levels_not_only_enforce():
    bare = deployment(pod={"containers": [{"name": "app", "image": "busybox:1.37"}]})
    lenient = ns("apps", "privileged")
    assert checks.check_psa(topology([obj(lenient), obj(bare)])) == []
    for mode in ("warn", "audit"):
        watched = copy.deepcopy(lenient)
        watched["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] = "restricted"
        errors = checks.check_psa(topology([obj(watched), obj(bare)]))
        assert errors and all(f"'restricted' ({mode})" in e for e in errors), errors
        assert checks.check_psa(topology([obj(watched), obj(deployment())])) == []


def test_psa_checks_the_executor_pod_template_kept_in_a_configmap():
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"containers": [{"name": "base", "image": "x:1"}]},
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "airflow-config", "namespace": "apps"},
        "data": {"pod_template_file.yaml": json.dumps(template)},
    }
    errors = checks.check_psa(topology([obj(ns("apps", "restricted")), obj(cm)]))
    assert errors and "pod_template_file.yaml" in errors[0]
