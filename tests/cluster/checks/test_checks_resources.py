"""The resources check (cluster/tools/checks/resources.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, deployment, obj, topology


def test_resources_flag_dag_pods_above_the_pipeline_quota():
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "pipeline"},
        "spec": {"hard": {"requests.cpu": "500m", "limits.cpu": "2"}},
    }
    errors = checks.check_pipeline_quota(topology([obj(quota)]))
    assert any("DAG task train" in e and "requests.cpu" in e for e in errors)
    quota["spec"]["hard"] = {"requests.cpu": "2", "limits.cpu": "4"}
    assert checks.check_pipeline_quota(topology([obj(quota)])) == []


def test_resources_flag_a_topology_whose_requests_exceed_the_nodes():
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["resources"] = {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert checks.check_node_budget(topology([obj(deployment(pod=pod))])) == []
    big = deployment(pod=pod, replicas=4)
    errors = checks.check_node_budget(topology([obj(big)]))
    assert errors and "Deployment web" in errors[0]


def test_resources_apply_the_limit_range_as_admission_does():
    ranges = [
        {
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "1", "memory": "2Gi"},
                        "defaultRequest": {"cpu": "250m"},
                        "max": {"memory": "4Gi"},
                    }
                ]
            }
        }
    ]
    bare = [{"name": "a"}]
    (filled,), errors = checks.with_limit_range(bare, ranges)
    assert filled["resources"] == {
        "limits": {"cpu": "1", "memory": "2Gi"},
        "requests": {"cpu": "250m", "memory": "2Gi"},
    }
    assert errors == []
    limited = [{"name": "b", "resources": {"limits": {"cpu": "500m", "memory": "8Gi"}}}]
    (filled,), errors = checks.with_limit_range(limited, ranges)
    assert filled["resources"]["requests"] == {"cpu": "500m", "memory": "8Gi"}
    assert errors and "above the LimitRange max 4Gi" in errors[0]
