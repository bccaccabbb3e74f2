"""The project check (cluster/tools/checks/project.py)."""

from __future__ import annotations

from check_helpers import app, checks, deployment, obj, topology


def test_project_refuses_a_cluster_kind_or_namespace_it_does_not_permit():
    project = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "realtor", "namespace": "argocd"},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [
                {"server": "*", "namespace": "apps"},
                {"server": "*", "namespace": "argocd"},
            ],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
        },
    }
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "x"},
        "provisioner": "p",
    }
    application = app("a", 1)
    application["spec"] = {
        "project": "realtor",
        "destination": {"namespace": "apps"},
        "source": {"repoURL": "x"},
    }
    topo = topology([obj(project, "bootstrap"), obj(deployment()), obj(sc)])
    topo.applications["a"] = application
    errors = checks.check_project(topo)
    assert len(errors) == 1 and "clusterResourceWhitelist" in errors[0]
    project["spec"]["clusterResourceWhitelist"].append({"group": "storage.k8s.io", "kind": "*"})
    topo.objects[0] = obj(project, "bootstrap")
    topo.objects.append(obj(deployment(namespace="elsewhere")))
    errors = checks.check_project(topo)
    assert len(errors) == 1 and "namespace elsewhere" in errors[0]
