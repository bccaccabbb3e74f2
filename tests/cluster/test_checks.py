"""Negative tests: each check of cluster/tools/checks/ catches a planted defect of its kind
(and passes the same objects without it), on small hand-made topologies."""

from __future__ import annotations

import copy
import io
import json
import tarfile
import urllib.error

import pytest
from cluster_helpers import CLUSTER, load_tool

vm = load_tool("validate_manifests")
render, checks, vendor = vm.render, vm.checks, vm.vendor

pytestmark = pytest.mark.usefixtures("vendored")
RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "docker.io/library/busybox:1.37",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def ns(name: str, level: str) -> dict:
    labels = {"pod-security.kubernetes.io/enforce": level}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(name="web", namespace="apps", pod=None, replicas=1) -> dict:
    pod = copy.deepcopy(pod if pod is not None else RESTRICTED_POD)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    }


def app(name: str, wave: int) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
        "spec": {"destination": {"namespace": "x"}},
    }


def obj(doc, app_name="a", phase="Sync", wave=0, origin="test"):
    return render.Obj(copy.deepcopy(doc), app_name, 0, origin, phase, wave)


def topology(objects, apps=(("a", 1),), charts=()):
    applications = {name: app(name, wave) for name, wave in apps}
    return render.Topology("single-node", 1, applications, list(objects), list(charts))


# --- schemas ------------------------------------------------------------------------------------
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


# --- Pod Security admission ------------------------------------------------------------------------
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


# --- hooks ------------------------------------------------------------------------------------
def _job(sa: str) -> dict:
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["serviceAccountName"] = sa
    pod["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pre-upgrade", "namespace": "apps"},
        "spec": {"template": {"spec": pod}},
    }


def test_hooks_flag_a_presync_hook_that_needs_a_sync_resource():
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "svc", "namespace": "apps"},
    }
    late = topology([obj(_job("svc"), phase="PreSync"), obj(sa, phase="Sync")])
    errors = checks.check_hooks(late)
    assert errors and "PreSync" in errors[0] and "ServiceAccount svc" in errors[0]
    early = topology([obj(_job("svc"), phase="PreSync", wave=1), obj(sa, phase="PreSync", wave=0)])
    assert checks.check_hooks(early) == []


def test_helm_hooks_map_to_argo_cd_phases():
    def annotated(**annotations):
        return {"metadata": {"annotations": annotations}}

    assert render.phase_of(annotated(**{"helm.sh/hook": "pre-install,pre-upgrade"})) == (
        "PreSync",
        0,
    )
    assert render.phase_of(
        annotated(**{"helm.sh/hook": "post-install", "helm.sh/hook-weight": "-5"})
    ) == (
        "PostSync",
        -5,
    )
    assert render.phase_of(annotated(**{"helm.sh/hook": "test"}))[0] == "Ignored"
    both = annotated(**{"helm.sh/hook": "pre-install", "argocd.argoproj.io/hook": "Sync"})
    assert render.phase_of(both)[0] == "Sync"


# --- waves ------------------------------------------------------------------------------------
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


# --- values keys --------------------------------------------------------------------------------
def test_values_flag_a_key_the_chart_does_not_have():
    folder = vendor.charts_dir() / "longhorn-1.12.1"
    good = render.ChartRender(
        "longhorn",
        folder.name,
        "longhorn",
        "longhorn-system",
        ["v.yaml"],
        {"persistence": {"defaultClass": False}},
    )
    assert checks.check_values(topology([], charts=[good])) == []
    bad = copy.deepcopy(good)
    bad.values = {"persistence": {"defaultClas": False}}  # misspelt: Helm would ignore it
    errors = checks.check_values(topology([], charts=[bad]))
    assert errors and "persistence.defaultClas" in errors[0]


def test_values_flag_a_key_under_a_map_copied_whole_that_the_program_never_reads():
    def chart(name: str, values: dict) -> render.ChartRender:
        folder = vendor.charts_dir() / name
        return render.ChartRender("x", folder.name, "x", "x", ["v.yaml"], values)

    updater = "argocd-image-updater-1.2.4"  # copies config.* into its ConfigMap (range)
    good = chart(updater, {"config": {"git.user": "bot", "git.email": "bot@example.com"}})
    assert checks.check_values(topology([], charts=[good])) == []
    bad = chart(updater, {"config": {"gitCommitUser": "bot"}})
    errors = checks.check_values(topology([], charts=[bad]))
    assert len(errors) == 1 and "`config.gitCommitUser` is copied as is" in errors[0], errors
    assert "git.user" in errors[0]
    airflow = "airflow-1.19.0"  # config.* becomes airflow.cfg: Airflow's own options
    good = chart(airflow, {"config": {"logging": {"remote_logging": "True"}}})
    assert checks.check_values(topology([], charts=[good])) == []
    for values in (
        {"config": {"logging": {"remote_loging": "True"}}},
        {"config": {"kubernetes_executr": {"delete_worker_pods": "True"}}},
    ):
        errors = checks.check_values(topology([], charts=[chart(airflow, values)]))
        assert len(errors) == 1 and "Airflow has no option" in errors[0], errors


# --- resources ----------------------------------------------------------------------------------
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


# --- database URLs ------------------------------------------------------------------------------
def test_db_urls_flag_a_scheme_whose_driver_the_image_lacks(tmp_path):
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["image"] = "docker.io/realtor-mlops/airflow:" + "0" * 40
    ref = {"secretKeyRef": {"name": "airflow-metadata", "key": "connection"}}
    pod["containers"][0]["env"] = [
        {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "valueFrom": ref}
    ]
    topo = topology([obj(deployment(namespace="airflow", pod=pod))])
    script = tmp_path / "create-secrets.sh"
    script.write_text(
        'apply_secret airflow airflow-metadata Opaque \\\n  "connection=postgresql://a:b@h/airflow"\n'
    )
    errors = checks.check_db_urls(topo, script=script)
    assert errors and "psycopg" in errors[0] and "images/airflow/requirements.txt" in errors[0]
    script.write_text(
        'apply_secret airflow airflow-metadata Opaque \\\n  "connection=postgresql+psycopg2://a:b@h/airflow"\n'
    )
    assert checks.check_db_urls(topo, script=script) == []
    assert "no image of ours reads" in checks.check_db_urls(topology([]), script=script)[0]
    assert checks.driver_for("postgresql", {"sqlalchemy": "2.0.40"}) == "psycopg2"


# --- vendor -------------------------------------------------------------------------------------
def test_without_vendored_charts_the_checks_stop_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nothing"))
    with pytest.raises(vendor.VendorMissing) as caught:
        vendor.root()
    assert "make vendor" in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.delenv("SHARED_DIR")
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(vendor, "REPO", tmp_path / "repo")
    with pytest.raises(vendor.VendorMissing):
        vendor.root()
    (tmp_path / "cache/charts").mkdir(parents=True)
    (tmp_path / "cache/schemas/crds").mkdir(parents=True)
    with pytest.raises(vendor.VendorMissing):  # a download cut short is not a cache
        vendor.root()
    (tmp_path / "cache" / vendor.COMPLETE).write_text("")
    assert vendor.root() == tmp_path / "cache"  # the cache wins over ../shared


def _chart_tgz(chart: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = f"apiVersion: v2\nname: {chart}\nversion: 1\n".encode()
        info = tarfile.TarInfo(f"{chart}/Chart.yaml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upstream(fetched: list[str], charts: list[tuple[str, str, str]], fail_on: str = ""):
    """A stand-in for the chart repositories and raw schema files: ``fetch(url) -> bytes``."""
    crd = (vendor.schemas_dir() / "crds-raw/metallb/metallb.io_ipaddresspools.yaml").read_bytes()

    def fetch(url: str) -> bytes:
        fetched.append(url)
        if fail_on and fail_on in url:
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        if url.endswith("index.yaml"):
            entries = {c: [{"version": v, "urls": [f"{c}-{v}.tgz"]}] for _, c, v in charts}
            return json.dumps({"entries": entries}).encode()
        if url.endswith(".tgz"):
            return _chart_tgz(url.rsplit("/", 1)[1].rsplit("-", 1)[0])
        return crd if url.endswith(".yaml") else b"{}"

    return fetch


def test_vendor_download_fetches_pinned_charts_and_derives_crd_schemas(tmp_path):
    fetched: list[str] = []
    written = vendor.download(tmp_path, upstream(fetched, vendor.pinned_charts()))
    assert any(w.startswith("charts/airflow-") for w in written)
    assert (tmp_path / "charts/traefik-41.3.0/Chart.yaml").is_file()
    assert (tmp_path / "schemas/crds/metallb.io/ipaddresspool_v1beta1.json").is_file()
    assert any("raw.githubusercontent.com/metallb/metallb/791dfcc" in u for u in fetched)
    assert (
        vendor.chart_url(
            "https://x.io/charts",
            "a",
            "1",
            {"entries": {"a": [{"version": "1", "urls": ["a-1.tgz"]}]}},
        )
        == "https://x.io/charts/a-1.tgz"
    )
    assert (tmp_path / vendor.COMPLETE).is_file()


def test_make_test_fetches_the_charts_only_when_none_are_found_and_says_so(
    tmp_path, monkeypatch, capsys
):
    charts = [("https://charts.example.org/stable", "airflow", "1.2.3")]
    fetched: list[str] = []
    offline = upstream(fetched, charts, fail_on="raw.githubusercontent.com")
    online = upstream(fetched, charts)
    monkeypatch.delenv("SHARED_DIR", raising=False)
    monkeypatch.setattr(vendor, "REPO", tmp_path / "repo")  # no ../shared beside it
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "repo/.cache/vendor")
    monkeypatch.setattr(vendor, "pinned_charts", lambda: charts)

    assert vendor.ensure(offline) == 1
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "fetching 1 pinned Helm charts" in out
    assert "charts.example.org" in out and "raw.githubusercontent.com" in out
    assert err.count("\n") == 1 and "Name or service not known" in err and "make vendor" in err
    with pytest.raises(vendor.VendorMissing):  # half a download is not used
        vendor.root()

    assert vendor.ensure(online) == 0
    assert vendor.root() == tmp_path / "repo/.cache/vendor"
    assert (vendor.CACHE / "charts/airflow-1.2.3/Chart.yaml").is_file()
    fetched.clear()
    assert vendor.ensure(online) == 0  # found: nothing fetched again
    assert fetched == []
    assert capsys.readouterr().out.startswith("charts and schemas: ")

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nothing"))
    assert vendor.ensure(online) == 1 and fetched == []
    assert "SHARED_DIR" in capsys.readouterr().err


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


def test_labels_flag_a_version_the_chart_does_not_ship(tmp_path, monkeypatch):
    values = tmp_path / "values.yaml"
    values.write_text("---\n# Longhorn v1.12 (chart 1.12.1) on 10.43.100.95\nx: 1\n")
    monkeypatch.setattr(checks.labels, "REPO", tmp_path)
    chart = render.ChartRender("longhorn", "longhorn-1.12.1", "longhorn", "ns", ["values.yaml"], {})
    assert checks.check_labels(topology([], charts=[chart])) == []
    values.write_text("---\n# Longhorn v1.13 (chart 1.12.0)\nx: 1\n")
    errors = checks.check_labels(topology([], charts=[chart]))
    assert len(errors) == 2 and "appVersion v1.12.1" in errors[0]
    assert "version 1.12.1" in errors[1]


def test_labels_flag_an_airflow_version_other_than_the_image(tmp_path, monkeypatch):
    (tmp_path / "images/airflow").mkdir(parents=True)
    (tmp_path / "images/airflow/requirements.txt").write_text("apache-airflow==3.3.2\n")
    (tmp_path / "values.yaml").write_text("airflowVersion: '3.1.7'\n")
    monkeypatch.setattr(checks.labels, "REPO", tmp_path)
    chart = render.ChartRender(
        "airflow",
        "airflow-1.19.0",
        "airflow",
        "airflow",
        ["values.yaml"],
        {"airflowVersion": "3.1.7"},
    )
    assert "3.3.2" in checks.check_labels(topology([], charts=[chart]))[0]
    chart.values["airflowVersion"] = "3.3.2"
    assert checks.check_labels(topology([], charts=[chart])) == []


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


def test_the_secrets_script_is_read_with_its_route_logins():
    keys = checks.script_secret_keys()
    assert keys[("airflow", "airflow-admin")] == {"username", "password"}
    assert keys[("mlflow", "mlflow-basic-auth")] == {"users"}
    assert keys[("airflow", "airflow-metadata")] == {"connection"}


# --- secrets ----------------------------------------------------------------------------------------
def test_secrets_flag_a_reference_to_a_secret_the_script_creates_only_with_credentials(tmp_path):
    script = tmp_path / "create-secrets.sh"
    script.write_text(
        "apply_secret apps always Opaque a=1\n"
        'if [[ -n "${TOKEN:-}" ]]; then\n'
        "  apply_secret apps sometimes Opaque a=1\n"
        "fi\n"
        "route_login apps web admin\n",
        encoding="utf-8",
    )
    created = checks.secrets.script_creates(script)
    assert created[("apps", "always")] is None and created[("apps", "web-basic-auth")] is None
    assert "TOKEN" in created[("apps", "sometimes")]

    def reading(secret: str) -> dict:
        pod = copy.deepcopy(RESTRICTED_POD)
        pod["containers"][0]["envFrom"] = [{"secretRef": {"name": secret}}]
        return deployment(pod=pod)

    def updater(secret: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "registries", "namespace": "apps"},
            "data": {"registries.conf": f"credentials: pullsecret:apps/{secret}\n"},
        }

    for good in (reading("always"), updater("web-login")):
        assert checks.check_secrets(topology([obj(good)]), script) == []
    for bad in (reading("sometimes"), updater("sometimes")):
        errors = checks.check_secrets(topology([obj(bad)]), script)
        assert len(errors) == 1 and "only under `if" in errors[0], errors
    errors = checks.check_secrets(topology([obj(reading("nowhere"))]), script)
    assert "which nothing creates" in errors[0]
    optional = reading("sometimes")
    optional["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["optional"] = (
        True
    )
    assert checks.check_secrets(topology([obj(optional)]), script) == []


def test_hooks_flag_a_job_that_races_the_migration_of_its_database():
    def job(name: str, args: list[str], wave: int) -> render.Obj:
        pod = copy.deepcopy(RESTRICTED_POD)
        pod["restartPolicy"] = "Never"
        pod["containers"][0]["args"] = args
        pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "db-url"}}]
        doc = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"template": {"spec": pod}},
        }
        return obj(doc, wave=wave)

    migrate = job("migrate", ["bash", "-c", "exec airflow db migrate"], 0)
    same_wave = job("create-user", ["airflow", "users", "create"], 0)
    errors = checks.check_hooks(topology([migrate, same_wave]))
    assert len(errors) == 1 and "races the migration" in errors[0], errors
    assert checks.check_hooks(topology([migrate, job("create-user", ["airflow"], 1)])) == []


# --- images -------------------------------------------------------------------------------------------
def test_images_built_equal_images_deployed_both_ways():
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["image"] = "docker.io/realtor-mlops/serving:" + "a" * 40
    serving = obj(deployment(pod=pod))
    built = {"serving": {}, "fetch": {}}
    dag = {"fetch": "fetch"}
    assert checks.check_images(topology([serving]), built, dag, {"serving", "fetch"}) == []
    unused = checks.check_images(topology([serving]), built | {"record": {}}, dag, {"serving"})
    assert unused and "builds image record, which no rendered object" in unused[0], unused
    unbuilt = checks.check_images(topology([serving]), {"serving": {}}, dag, set())
    assert unbuilt == [
        "the DAG's task fetch (dags/realtor/specs.py): runs image fetch, which "
        ".github/workflows/images.yaml does not build"
    ]
    orphan = checks.check_images(topology([serving]), built, dag, {"serving", "fetch", "old"})
    assert orphan == ["images/old/: a folder of no image the workflow builds: remove it"]
