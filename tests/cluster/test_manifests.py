"""Every manifest and rendered overlay validates; the validator catches broken ones;
the GitOps tree follows the rules of the issue (images, probes, security, waves)."""

from __future__ import annotations

import re

import pytest
import yaml
from cluster_helpers import CLUSTER, HELM_VALUES, REPO, load_tool

vm = load_tool("validate_manifests")
render = vm.render
checks = vm.checks
TOPOLOGIES = ("single-node", "two-node", "three-node")
SHA_TAG = re.compile(r"^docker\.io/realtor-mlops/[a-z-]+:[0-9a-f]{40}$")

pytestmark = pytest.mark.usefixtures("vendored")


@pytest.fixture(scope="module")
def topologies():
    return {name: render.render_topology(name) for name in TOPOLOGIES}


@pytest.fixture(scope="module")
def rendered(topologies):
    """{topology: {Application: [objects]}} of what we wrote (charts left out)."""
    out = {}
    for name, topo in topologies.items():
        apps = out.setdefault(name, {})
        for o in topo.objects:
            if not o.from_chart:
                apps.setdefault(o.app, []).append(o.doc)
    return out


def test_schema_version_matches_pinned_k3s_minor():
    env = (CLUSTER / "bootstrap/versions.env").read_text()
    k3s = re.search(r'^K3S_VERSION="v(\d+\.\d+)\.\d+\+k3s\d+"', env, re.M).group(1)
    assert checks.k8s_version().startswith(k3s + ".")


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_every_topology_renders_and_passes_every_check(topologies, name):
    topo = topologies[name]
    assert topo.errors == []
    assert sum(o.from_chart for o in topo.objects) > 300  # every chart rendered for real
    assert {c.chart.rsplit("-", 1)[0] for c in topo.charts} >= {"airflow", "traefik", "longhorn"}
    for check, run in checks.CHECKS.items():
        assert run(topo) == [], check


def test_no_overlay_is_an_empty_pass_through():
    """One place per fact: an overlay exists only where its topology really differs."""
    for kustomization in sorted(CLUSTER.glob("apps/*/overlays/*/kustomization.yaml")):
        doc = yaml.safe_load(kustomization.read_text())
        assert set(doc) - {"apiVersion", "kind", "resources"}, kustomization
    for topo in ("two-node", "three-node"):
        base = render.render(CLUSTER / "apps/longhorn/base")
        assert render.render(CLUSTER / "apps/longhorn/overlays" / topo) != base


def test_each_image_tag_lives_in_one_file():
    for image in ("data-api", "serving", "ui"):
        holders = [
            p
            for p in CLUSTER.rglob("kustomization.yaml")
            if f"docker.io/realtor-mlops/{image}\n" in p.read_text() and "newTag" in p.read_text()
        ]
        assert holders == [CLUSTER / f"apps/{image}/base/kustomization.yaml"], image


def test_real_kustomize_rejects_what_kustomize_rejects(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(render.RenderError):
        render.render(tmp_path)


# --- rules of the issue, on the rendered single-node tree ---------------------------------


def _workloads(rendered, topo="single-node"):
    for key, docs in rendered[topo].items():
        for doc in docs:
            if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                yield key, doc


def test_our_workloads_have_resources_probes_and_restricted_context(rendered):
    seen = 0
    for key, doc in _workloads(rendered):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, key
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", key
        assert pod.get("automountServiceAccountToken") is False, key
        for c in pod["containers"]:
            seen += 1
            assert {"requests", "limits"} <= set(c["resources"]), key
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), key
            assert "livenessProbe" in c, key
            assert "readinessProbe" in c, key
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
    assert seen == 4  # mlflow, data-api, serving, ui


@pytest.mark.parametrize("topo", TOPOLOGIES)
def test_images_are_pinned_to_a_commit_sha_never_latest(rendered, topo):
    for _key, doc in _workloads(rendered, topo):
        for c in doc["spec"]["template"]["spec"]["containers"]:
            if "realtor-mlops" in c["image"]:
                assert SHA_TAG.match(c["image"]), c["image"]
            assert not c["image"].endswith(":latest")
    for path in list(CLUSTER.rglob("*.yaml")) + list(HELM_VALUES.rglob("*.yaml")):
        assert ":latest" not in path.read_text(), path


def test_ports_of_the_apps(rendered):
    ports = {}
    for _, doc in _workloads(rendered):
        c = doc["spec"]["template"]["spec"]["containers"][0]
        ports[doc["metadata"]["name"]] = c["ports"][0]["containerPort"]
    assert ports == {"data-api": 8090, "serving": 8000, "ui": 8501, "mlflow": 5000}


def test_namespaces_carry_pod_security_labels_and_reasons(rendered):
    ours = {"data", "storage", "mlflow", "pipeline", "apps"}
    for doc in rendered["single-node"]["namespaces"]:
        if doc["kind"] != "Namespace":
            continue
        labels = doc["metadata"]["labels"]
        level = labels["pod-security.kubernetes.io/enforce"]
        assert level in ("restricted", "baseline", "privileged")
        assert doc["metadata"]["annotations"]["realtor-mlops/pod-security-reason"]
        if doc["metadata"]["name"] in ours:
            assert level == "restricted"


def test_default_deny_in_every_namespace_of_ours(rendered):
    docs = rendered["single-node"]["namespaces"]
    denied = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and d["metadata"]["name"] == "default-deny"
        and d["spec"]["podSelector"] == {}
        and set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    }
    assert denied == {"data", "storage", "mlflow", "airflow", "pipeline", "apps"}


def test_storage_class_replicas_follow_the_topology(rendered):
    expected = {
        "single-node": ("longhorn-single", "1"),
        "two-node": ("longhorn-two-replicas", "2"),
        "three-node": ("longhorn-three-replicas", "3"),
    }
    for topo, (name, replicas) in expected.items():
        (sc,) = [d for d in rendered[topo]["longhorn-config"] if d["kind"] == "StorageClass"]
        assert sc["metadata"]["name"] == name
        assert sc["parameters"]["numberOfReplicas"] == replicas
        values = yaml.safe_load((HELM_VALUES / (f"longhorn/values-{topo}.yaml")).read_text())
        assert values["persistence"]["defaultClassReplicaCount"] == int(replicas)


def test_root_apps_point_at_their_topology(rendered):
    waves = {}
    for topo in TOPOLOGIES:
        for app in rendered[topo]["root"]:
            waves[app["metadata"]["name"]] = int(
                app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            )
            text = yaml.safe_dump(app["spec"])
            for other in set(TOPOLOGIES) - {topo}:
                assert "overlays/" + other not in text, (topo, app["metadata"]["name"])
                assert "values-" + other not in text, (topo, app["metadata"]["name"])
            assert app["spec"]["project"] == "realtor"
    # infrastructure before data before platform before apps
    assert waves["metallb"] < waves["metallb-config"] < waves["seaweedfs"] < waves["postgres"]
    assert waves["postgres"] < waves["mlflow"] <= waves["airflow"] < waves["serving"]
    assert waves["cert-manager"] < waves["plugin-barman-cloud"] <= waves["postgres"]


def test_root_bootstrap_apps_exist_for_each_topology():
    for topo in TOPOLOGIES:
        (app,) = render.load_yaml_docs(CLUSTER / "bootstrap/root" / (topo + ".yaml"))
        expected = "base" if topo == "single-node" else "overlays/" + topo
        assert app["spec"]["source"]["path"] == "cluster/apps/root/" + expected


def test_chart_versions_are_pinned(rendered):
    for app in rendered["single-node"]["root"]:
        for src in app["spec"].get("sources", []):
            if "chart" in src:
                assert re.match(r"^v?\d+\.\d+\.\d+$", src["targetRevision"]), src


def test_ingress_hosts_are_nip_io_on_the_traefik_address(rendered):
    hosts = set()
    for docs in rendered["single-node"].values():
        for d in docs:
            if d["kind"] == "IngressRoute":
                hosts |= set(re.findall(r"Host\(`([^`]+)`\)", d["spec"]["routes"][0]["match"]))
                assert d["spec"]["entryPoints"] == ["websecure"]
                assert "tls" in d["spec"]
    for name in ("airflow", "mlflow", "api", "ui", "grafana", "argocd", "traefik"):
        assert name + ".10.43.100.95.nip.io" in hosts


def test_image_updater_targets_serving_and_ui_with_sha_tags():
    (iu,) = render.load_yaml_docs(CLUSTER / "apps/image-updater/base/image-updater.yaml")
    assert iu["apiVersion"] == "argocd-image-updater.argoproj.io/v1alpha1"
    allow = iu["spec"]["commonUpdateSettings"]["allowTags"]
    assert allow.startswith("regexp:")
    pattern = re.compile(allow[len("regexp:") :])
    assert pattern.match("0123456789abcdef0123456789abcdef01234567")
    assert not pattern.match("latest")
    assert not pattern.match("v1.2.3")
    assert iu["spec"]["writeBackConfig"]["method"].startswith("git")
    assert {r["namePattern"] for r in iu["spec"]["applicationRefs"]} == {"serving", "ui"}


def test_pipeline_namespace_has_runner_rbac_and_env(rendered):
    docs = rendered["single-node"]["pipeline"]
    kinds = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs}
    assert ("ServiceAccount", "pipeline-runner", "pipeline") in kinds
    assert ("Role", "pipeline-launcher", "pipeline") in kinds
    assert ("ConfigMap", "pipeline-env", "pipeline") in kinds
    assert ("ConfigMap", "pipeline-env", "airflow") in kinds
    assert not any(d["kind"] == "Secret" for d in docs)  # pipeline-secrets is never committed


def test_no_secret_values_committed():
    for path in CLUSTER.rglob("*.yaml"):
        for doc in render.load_yaml_docs(path):
            if doc.get("kind") == "Secret":
                assert "template" in path.name, path


def test_dashboard_uses_the_serving_metrics():
    text = (CLUSTER / "apps/monitoring/dashboards/realtor-serving.json").read_text()
    for metric in (
        "realtor_predictions_total",
        "realtor_prediction_latency_seconds_bucket",
        "realtor_model_version_info",
    ):
        assert metric in text


def test_schemas_path_is_relative_to_the_repo():
    text = (REPO / "cluster/validate.sh").read_text() + (
        REPO / "cluster/tools/validate_manifests.py"
    ).read_text()
    assert "/work/" not in text


def test_cluster_readme_lists_every_root_application_with_its_wave():
    readme = (REPO / "cluster" / "README.md").read_text()
    for path in sorted((REPO / "cluster/apps/root/base").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if not doc or doc.get("kind") != "Application":
            continue
        wave = doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        assert f"| {wave} | {doc['metadata']['name']} |" in readme, path.name


@pytest.mark.parametrize("table", ["charts", "budget"])
def test_docs_tables_are_current(topologies, table):
    text = (REPO / "docs/cluster.md").read_text()
    start = "<!-- chart-table:start -->" if table == "charts" else "<!-- budget-table:start -->"
    end = start.replace(":start", ":end")
    current = text[text.index(start) + len(start) : text.index(end)].strip()
    make = vm.chart_table if table == "charts" else vm.budget_table
    assert current == make(topologies["single-node"]), (
        f"docs/cluster.md is stale: python cluster/tools/validate_manifests.py --markdown {table}"
    )
