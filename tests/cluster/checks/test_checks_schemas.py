"""The schemas check (cluster/tools/checks/schemas.py)."""

from __future__ import annotations

import copy

from check_helpers import checks, deployment, obj, render, topology
from cluster_helpers import CLUSTER


def test_schemas_catch_unknown_and_mistyped_fields_of_core_kinds():
    good = deployment()
    assert checks.check_schemas(topology([obj(good)])) == []
    typo = copy.deepcopy(good)
    typo["spec"]["replica"] = 1
    assert checks.check_schemas(topology([obj(typo)]))
    wrong = copy.deepcopy(good)
    wrong["spec"]["replicas"] = "one"
    assert checks.check_schemas(topology([obj(wrong)]))


def test_schemas_are_strict_for_custom_resources_and_refuse_unknown_kinds():
    pool = render.load_yaml_docs(CLUSTER / "apps/metallb/base/ip-pool.yaml")[0]
    assert checks.check_schemas(topology([obj(pool)])) == []
    unknown_field = copy.deepcopy(pool)
    unknown_field["spec"]["adresses"] = ["10.0.0.1/32"]  # misspelt: the CRD would drop it
    errors = checks.check_schemas(topology([obj(unknown_field)]))
    assert errors and "adresses" in errors[0]
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no schema" in checks.check_schemas(topology([obj(widget)]))[0]


def test_schemas_prefer_the_crd_the_charts_render():
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    gadget = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g"},
        "spec": {"size": 1},
    }
    assert checks.check_schemas(topology([obj(crd), obj(gadget)])) == []
    gadget["spec"]["colour"] = "red"
    assert checks.check_schemas(topology([obj(crd), obj(gadget)]))


def test_schemas_flag_an_object_too_large_for_client_side_apply():
    big = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "apps"},
    }
    big["data"] = {"blob": "x" * 300000}
    topo = topology([obj(big)])
    assert "ServerSideApply=true" in checks.check_schemas(topo)[0]
    topo.applications["a"]["spec"]["syncPolicy"] = {"syncOptions": ["ServerSideApply=true"]}
    assert checks.check_schemas(topo) == []
