"""What the cluster would refuse or never finish, checked on a rendered topology.

Each check takes a render.Topology and returns a list of error strings (empty = pass):

* schemas   - strict schema of every object (and none too large for a client-side apply): built-in kinds against the Kubernetes schemas of
              the pinned K3s minor (kubernetes-validate, unknown fields fail); custom resources
              against the CRDs the charts render (else ../shared/schemas/crds), made strict
              (unknown fields fail unless the CRD preserves unknown fields); no schema = error.
* psa       - Pod Security admission at each namespace's enforce level on every pod template
              (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods, hooks included).
* hooks     - Helm hooks as Argo CD runs them: a PreSync hook runs before the Sync phase
              creates anything, so what it mounts or runs as must exist already; a Sync
              resource must not need something only a PostSync hook creates.
* waves     - sync waves against health: a custom resource needs its CRD in the same
              Application or an earlier wave, and the failing-closed admission webhook that
              guards it in an earlier one; a LoadBalancer Service needs a MetalLB pool, a volume
              claim its StorageClass, a pod its Secrets and ConfigMaps (rendered, made by a
              producer, or written by create-secrets.sh with the keys it reads), in the same or
              an earlier wave; an object needs its namespace; our images must be built by the
              images workflow from the right stage.
* values    - every key we set in helm-values exists in the chart's values (or its schema,
              or is read whole by a template), so a silently ignored setting fails.
* resources - every pod the DAG can create fits the pipeline namespace's ResourceQuota and
              LimitRange; the requests of everything rendered fit the topology's nodes.
* db-urls   - every database URL create-secrets.sh writes names a driver that the lock of each
              image reading it (rendered pods, the DAG's task pods) installs.
* project   - the AppProject permits every Application's sources, its destination and every
              object's namespace or cluster-scoped kind (Argo CD refuses the rest).
* refs      - an IngressRoute's Service and port exist, a ServiceMonitor selects a Service
              port, a Service of ours selects a pod.
* labels    - the versions our values files name are those the pinned charts ship, and
              Airflow's airflowVersion is the Airflow of our image.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import functools
import importlib.util
import ipaddress
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import render
import vendor
import yaml
from pod_security import containers, psa_violations

REPO = render.REPO
Check = Callable[[render.Topology], list[str]]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
APPLIED = ("PreSync", "Sync", "PostSync")  # phases a sync applies (not delete, skip or test)


def applied(topo: render.Topology) -> Iterator[render.Obj]:
    return (o for o in topo.objects if o.phase in APPLIED)


def k8s_version() -> str:
    text = (REPO / "cluster/bootstrap/versions.env").read_text(encoding="utf-8")
    match = re.search(r'^KUBERNETES_SCHEMA_VERSION="([0-9.]+)"', text, re.M)
    if not match:
        raise SystemExit("KUBERNETES_SCHEMA_VERSION missing from cluster/bootstrap/versions.env")
    return match.group(1)


# --- schemas --------------------------------------------------------------------------------
def strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it: unknown fields are errors (pruning is off
    for nothing: an unknown field is dropped silently, which is the bug we want to see);
    `nullable` allows null."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def crd_schemas(topo: render.Topology) -> dict[tuple[str, str], Any]:
    """{(apiVersion, kind): schema} from the CRDs rendered in this topology, then shared."""
    out: dict[tuple[str, str], Any] = {}
    for path in sorted((vendor.schemas_dir() / "crds").rglob("*.json")):
        group = path.parent.name
        kind_lower, _, version = path.stem.rpartition("_")
        out[(f"{group}/{version}", kind_lower)] = path
    for obj in topo.objects:
        if obj.kind != "CustomResourceDefinition":
            continue
        spec = obj.doc["spec"]
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"].lower())] = schema
    return out


@functools.cache
def _validator_for_path(path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(json.loads(path.read_text(encoding="utf-8"))))


_validators: dict[str, jsonschema.Draft7Validator] = {}


def _validator(schema: Any) -> jsonschema.Draft7Validator:
    if isinstance(schema, Path):
        return _validator_for_path(schema)
    key = json.dumps(schema, sort_keys=True)
    if key not in _validators:
        _validators[key] = jsonschema.Draft7Validator(strict(schema))
    return _validators[key]


def is_builtin(api_version: str) -> bool:
    group = api_version.split("/")[0] if "/" in api_version else ""
    return group == "" or "." not in group or group.endswith(".k8s.io")


_seen_valid: set[str] = set()


def validate_object(doc: dict, crds: dict, version: str) -> list[str]:
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return ["not a Kubernetes object (apiVersion/kind missing)"]
    key = json.dumps(doc, sort_keys=True, default=str)
    if key in _seen_valid:
        return []
    api, kind = doc["apiVersion"], doc["kind"]
    if is_builtin(api):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.absolute_path)) or "<root>"
            return [f"{path}: {exc.message}"]
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [f"no Kubernetes {version} schema: {exc.message}"]
    else:
        schema = crds.get((api, kind.lower()))
        if schema is None:
            return [f"no schema for {api} {kind}: no CRD renders it and none is vendored"]
        errors = [
            "{}: {}".format("/".join(map(str, e.absolute_path)) or "<root>", e.message)
            for e in _validator(schema).iter_errors(doc)
        ]
        if errors:
            return errors[:5]
    _seen_valid.add(key)
    return []


ANNOTATION_LIMIT = 262144  # bytes of all annotations; client-side apply copies the object there


def sync_options(topo: render.Topology, app: str) -> list[str]:
    spec = (topo.applications.get(app) or {}).get("spec") or {}
    return list((spec.get("syncPolicy") or {}).get("syncOptions") or [])


def check_schemas(topo: render.Topology) -> list[str]:
    version = k8s_version()
    crds = crd_schemas(topo)
    errors = []
    for obj in topo.objects:
        if obj.phase == "Ignored":
            continue
        size = len(json.dumps(obj.doc, separators=(",", ":")))
        if (
            size > ANNOTATION_LIMIT
            and obj.app in topo.applications
            and "ServerSideApply=true" not in sync_options(topo, obj.app)
        ):
            errors.append(
                f"{obj.ref()}: {size} bytes, over the {ANNOTATION_LIMIT}-byte annotation limit "
                "that a client-side apply's last-applied-configuration hits: set "
                "ServerSideApply=true on the Application"
            )
        for err in validate_object(obj.doc, crds, version):
            errors.append(f"{obj.ref()}: {err}")
    return errors


# --- pod templates ----------------------------------------------------------------------------
def pod_spec(doc: dict) -> dict | None:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def pod_annotations(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return (doc.get("metadata") or {}).get("annotations") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}


def namespace_levels(topo: render.Topology) -> dict[str, str]:
    levels = {}
    for obj in topo.objects:
        if obj.kind == "Namespace":
            labels = (obj.doc.get("metadata") or {}).get("labels") or {}
            levels[obj.name] = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    return levels


def pod_templates_in_configmaps(obj: render.Obj) -> list[render.Obj]:
    """Pods kept as text in a ConfigMap (the KubernetesExecutor's pod_template_file.yaml):
    the executor creates them in the ConfigMap's namespace."""
    out = []
    if obj.kind != "ConfigMap":
        return out
    for key, text in (obj.doc.get("data") or {}).items():
        if key.endswith("pod_template_file.yaml"):
            pod = yaml.safe_load(text) or {}
            pod.setdefault("metadata", {})["namespace"] = obj.namespace
            pod["metadata"].setdefault("name", key)
            out.append(
                render.Obj(pod, obj.app, obj.app_wave, f"{obj.origin} [{key}]", obj.phase, obj.wave)
            )
    return out


def check_psa(topo: render.Topology) -> list[str]:
    levels = namespace_levels(topo)
    errors = []
    for obj in [o for base in applied(topo) for o in [base, *pod_templates_in_configmaps(base)]]:
        spec = pod_spec(obj.doc)
        if spec is None:
            continue
        level = levels.get(obj.namespace)
        if level is None:
            errors.append(
                f"{obj.ref()}: namespace {obj.namespace!r} is not declared with a Pod Security level"
            )
            continue
        for violation in psa_violations(spec, pod_annotations(obj.doc), level):
            errors.append(
                f"{obj.ref()}: refused by Pod Security '{level}' of namespace {obj.namespace}: "
                f"{violation} (fix the pod's securityContext through the values, or lower the "
                "namespace's enforce level with a reason)"
            )
    return errors


# --- references between objects ---------------------------------------------------------------
def pod_references(obj: render.Obj) -> list[tuple[str, str]]:
    """(kind, name) of what a pod template needs to start: SA, ConfigMaps, Secrets, PVCs."""
    spec = pod_spec(obj.doc)
    if spec is None:
        return []
    refs = []
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if sa and sa != "default":
        refs.append(("ServiceAccount", sa))
    for vol in spec.get("volumes") or []:
        if "configMap" in vol and not vol["configMap"].get("optional"):
            refs.append(("ConfigMap", vol["configMap"]["name"]))
        if "secret" in vol and not vol["secret"].get("optional"):
            refs.append(("Secret", vol["secret"]["secretName"]))
        if "persistentVolumeClaim" in vol:
            refs.append(("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]))
        for src in (vol.get("projected") or {}).get("sources") or []:
            if "configMap" in src and not src["configMap"].get("optional"):
                refs.append(("ConfigMap", src["configMap"]["name"]))
            if "secret" in src and not src["secret"].get("optional"):
                refs.append(("Secret", src["secret"]["name"]))
    for c in containers(spec):
        for env_from in c.get("envFrom") or []:
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = env_from.get(key)
                if ref and not ref.get("optional"):
                    refs.append((kind, ref["name"]))
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(key)
                if ref and not ref.get("optional"):
                    refs.append((kind, ref["name"]))
    return refs


def script_secrets() -> frozenset[tuple[str, str]]:
    """(namespace, name) of the Secrets cluster/secrets/create-secrets.sh creates."""
    return frozenset(script_secret_keys())


@functools.lru_cache(maxsize=1)
def script_secret_keys() -> dict[tuple[str, str], frozenset[str]]:
    """{(namespace, name): keys} of the Secrets create-secrets.sh writes with apply_secret."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "cluster/secrets/create-secrets.sh").read_text("utf-8"))
    out = {}
    for m in re.finditer(
        r"^\s*apply_secret\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s+\S+\s+(.*)$", text, re.M
    ):
        ns, name, rest = m.groups()
        out[(ns, name)] = frozenset(re.findall(r'(?:^|\s)"?([A-Za-z_][A-Za-z0-9_.-]*)=', rest))
    # route_login NS NAME USER: NAME-login (basic-auth: username, password), NAME-basic-auth (users)
    for ns, name in re.findall(r"^\s*route_login\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s", text, re.M):
        out[(ns, f"{name}-login")] = frozenset({"username", "password"})
        out[(ns, f"{name}-basic-auth")] = frozenset({"users"})
    return out


def secret_key_refs(obj: render.Obj) -> list[tuple[str, str]]:
    spec = pod_spec(obj.doc)
    out = []
    for c in containers(spec) if spec else []:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                out.append((ref["name"], ref["key"]))
    return out


PHASE_ORDER = {"PreSync": 0, "Sync": 1, "PostSync": 2}


def check_hooks(topo: render.Topology) -> list[str]:
    index: dict[tuple[str, str, str], list[render.Obj]] = {}
    for obj in applied(topo):
        index.setdefault((obj.kind, obj.namespace, obj.name), []).append(obj)
    errors = []
    for obj in applied(topo):
        for kind, name in pod_references(obj):
            if kind == "Secret" and (obj.namespace, name) in script_secrets():
                continue
            providers = index.get((kind, obj.namespace, name), [])
            same_app = [p for p in providers if p.app == obj.app]
            if not same_app or any(p.app != obj.app for p in providers):
                continue  # other Applications: the waves check
            ready = [
                p
                for p in same_app
                if (PHASE_ORDER[p.phase], p.wave) <= (PHASE_ORDER[obj.phase], obj.wave)
            ]
            if not ready:
                first = min(same_app, key=lambda p: (PHASE_ORDER[p.phase], p.wave))
                errors.append(
                    f"{obj.ref()}: runs in phase {obj.phase} (wave {obj.wave}) but needs {kind} "
                    f"{name}, which Argo CD creates later ({first.phase}, wave {first.wave}): "
                    "the hook cannot succeed on a first sync (turn the hook off in the values or "
                    "make it a Sync resource)"
                )
    return errors


# --- waves --------------------------------------------------------------------------------------
def effective_wave(topo: render.Topology, obj: render.Obj) -> int:
    """The root wave an object is applied in; Argo CD's own chart is installed by
    cluster/bootstrap/install-argocd.sh before the root application exists."""
    if obj.app == render.BOOTSTRAP and obj.kind == "Namespace":
        return -102  # install-argocd.sh step 1
    if obj.app == "argo-cd":
        return -101  # install-argocd.sh: the chart first, then the AppProject and root app
    if obj.app == render.BOOTSTRAP:
        return -100
    if obj.app == "root":
        return -50
    return topo.app_wave(obj.app)


def _default_class(classes: list[render.Obj]) -> list[render.Obj]:
    return [
        c
        for c in classes
        if ((c.doc.get("metadata") or {}).get("annotations") or {}).get(
            "storageclass.kubernetes.io/is-default-class"
        )
        == "true"
    ]


def claims(obj: render.Obj) -> list[tuple[str, str | None]]:
    """(what, storageClassName or None for the default) of every volume claim an object makes."""
    doc, kind = obj.doc, obj.kind
    spec = doc.get("spec") or {}
    out: list[tuple[str, str | None]] = []
    if kind == "PersistentVolumeClaim":
        out.append(("volume claim", spec.get("storageClassName")))
    if kind == "StatefulSet":
        for tpl in spec.get("volumeClaimTemplates") or []:
            out.append(
                (
                    f"claim template {tpl['metadata']['name']}",
                    (tpl.get("spec") or {}).get("storageClassName"),
                )
            )
    if kind in ("Prometheus", "Alertmanager"):
        tpl = ((spec.get("storage") or {}).get("volumeClaimTemplate") or {}).get("spec")
        if tpl is not None:
            out.append(("storage claim", tpl.get("storageClassName")))
    if kind == "Cluster" and obj.doc.get("apiVersion", "").startswith("postgresql.cnpg.io"):
        out.append(("instance storage", (spec.get("storage") or {}).get("storageClass")))
    return out


@functools.lru_cache(maxsize=1)
def workflow_images() -> dict[str, dict]:
    """image name -> matrix entry of .github/workflows/images.yaml."""
    wf = yaml.safe_load((REPO / ".github/workflows/images.yaml").read_text(encoding="utf-8"))
    out = {}
    for job in wf.get("jobs", {}).values():
        for entry in ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []:
            out[entry["image"]] = entry
    return out


OUR_REGISTRY = "docker.io/realtor-mlops/"


def image_problems(image: str) -> list[str]:
    """Why an image of ours would never exist (empty when the images workflow builds it)."""
    if not image.startswith(OUR_REGISTRY):
        return []
    name, _, tag = image.removeprefix(OUR_REGISTRY).partition(":")
    entry = workflow_images().get(name)
    if entry is None:
        return [f"image {image}: .github/workflows/images.yaml builds no image {name!r}"]
    dockerfile = REPO / entry["file"]
    if not dockerfile.is_file():
        return [f"image {image}: the workflow builds it from {entry['file']}, which does not exist"]
    stages = re.findall(
        r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text(encoding="utf-8"), re.M | re.I
    )
    target = entry.get("target")
    if len(stages) > 1 and not target:
        return [
            f"image {image}: {entry['file']} has stages {stages} and the workflow sets no "
            f"target, so it pushes the last one ({stages[-1]})"
        ]
    if target and target not in stages:
        return [f"image {image}: workflow target {target!r} is not a stage of {entry['file']}"]
    if not re.fullmatch(r"[0-9a-f]{40}", tag):
        return [f"image {image}: the workflow tags images with the commit SHA only"]
    return []


def all_images(obj: render.Obj) -> list[str]:
    spec = pod_spec(obj.doc)
    out = [c.get("image", "") for c in containers(spec)] if spec else []
    if obj.kind == "Cluster" and obj.doc.get("spec", {}).get("imageName"):
        out.append(obj.doc["spec"]["imageName"])
    return out


def secrets_made_by(obj: render.Obj) -> set[str]:
    """Secrets an object makes at run time: a cert-manager Certificate's secretName; or a
    name a controller or hook Job is told in its args or env values (metallb's memberlist,
    Argo CD's redis-secret-init, the Prometheus admission job)."""
    if obj.kind == "Certificate":
        return {str((obj.doc.get("spec") or {}).get("secretName", ""))}
    spec = pod_spec(obj.doc)
    if spec is None:
        return set()
    words: set[str] = set()
    for c in containers(spec):
        for text in list(c.get("args") or []) + list(c.get("command") or []):
            words.update(re.findall(r"[a-z0-9][a-z0-9.-]*", str(text)))
        for env in c.get("env") or []:
            if "value" in env:
                words.update(re.findall(r"[a-z0-9][a-z0-9.-]*", str(env["value"])))
    for secret, command_word in IMPLIED_SECRETS.items():
        if command_word in words:
            words.add(secret)
    return words


# Secrets a command makes under a fixed name it is not told: `argocd admin
# redis-initial-password` (the argo-cd chart's PreSync Job) writes argocd-redis.
IMPLIED_SECRETS = {"argocd-redis": "redis-initial-password"}


def requested_ips(doc: dict) -> list[str]:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    ips = [i.strip() for i in str(annotations.get("metallb.io/loadBalancerIPs", "")).split(",")]
    ips.append(str((doc.get("spec") or {}).get("loadBalancerIP", "")))
    return [i for i in ips if i]


def in_pool(ip: str, pool: dict) -> bool:
    address = ipaddress.ip_address(ip)
    for item in (pool.get("spec") or {}).get("addresses") or []:
        if "-" in item:
            first, last = (ipaddress.ip_address(p.strip()) for p in item.split("-", 1))
            if first <= address <= last:
                return True
        elif address in ipaddress.ip_network(item, strict=False):
            return True
    return False


K3S_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


def check_waves(topo: render.Topology) -> list[str]:
    objs = list(applied(topo))
    crd_by_kind: dict[tuple[str, str], list[render.Obj]] = {}
    for o in objs:
        if o.kind == "CustomResourceDefinition":
            s = o.doc["spec"]
            for v in s.get("versions", []):
                crd_by_kind.setdefault(
                    (f"{s['group']}/{v['name']}", s["names"]["kind"]), []
                ).append(o)
    classes = [o for o in objs if o.kind == "StorageClass"]
    pools = [o for o in objs if o.kind == "IPAddressPool"]
    adverts = [o for o in objs if o.kind in ("L2Advertisement", "BGPAdvertisement")]
    namespaces: dict[str, list[render.Obj]] = {}
    for o in objs:
        if o.kind == "Namespace":
            namespaces.setdefault(o.name, []).append(o)
    errors = []

    def later(obj: render.Obj, deps: list[render.Obj], what: str, strict_order: bool) -> None:
        wave = effective_wave(topo, obj)
        ok = [
            d
            for d in deps
            if d.app == obj.app
            or effective_wave(topo, d) < wave
            or (not strict_order and effective_wave(topo, d) == wave)
        ]
        if deps and not ok:
            first = min(deps, key=lambda d: effective_wave(topo, d))
            errors.append(
                f"{obj.ref()} (wave {wave}) needs {what}, which comes in wave "
                f"{effective_wave(topo, first)} ([{first.app}]): Argo CD starts a wave only when "
                "the earlier ones are healthy, so the sync stalls; move one of them"
            )
        elif not deps:
            errors.append(f"{obj.ref()} needs {what}, which nothing in this topology creates")

    plurals = {
        (o.doc["spec"]["group"], o.doc["spec"]["names"]["kind"]): o.doc["spec"]["names"]["plural"]
        for o in objs
        if o.kind == "CustomResourceDefinition"
    }
    webhooks = [
        (o, hook)
        for o in objs
        if o.kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for hook in o.doc.get("webhooks") or []
        if hook.get("failurePolicy", "Fail") == "Fail"
    ]
    for obj in objs:
        api, kind = obj.doc.get("apiVersion", ""), obj.kind
        group = api.split("/")[0] if "/" in api else ""
        plural = plurals.get((group, kind), kind.lower() + "s")
        for config, hook in webhooks:
            if config.app == obj.app:
                continue
            for rule in hook.get("rules") or []:
                groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
                if (group in groups or "*" in groups) and (
                    plural in resources or "*" in resources or "*/*" in resources
                ):
                    later(
                        obj,
                        [config],
                        f"the admission webhook {hook['name']} (failurePolicy Fail)",
                        True,
                    )
                    break
        if not is_builtin(api) and kind != "CustomResourceDefinition":
            later(obj, crd_by_kind.get((api, kind), []), f"the CRD of {api} {kind}", True)
        if obj.namespace and obj.kind != "Namespace" and obj.namespace not in K3S_NAMESPACES:
            ns = namespaces.get(obj.namespace)
            app = topo.applications.get(obj.app) or {}
            options = ((app.get("spec") or {}).get("syncPolicy") or {}).get("syncOptions") or []
            if ns is None and "CreateNamespace=true" in options:
                continue
            if ns is None:
                errors.append(
                    f"{obj.ref()}: namespace {obj.namespace} is created by nothing in this topology"
                )
            else:
                later(obj, ns, f"namespace {obj.namespace}", False)
        if kind == "Service" and (obj.doc.get("spec") or {}).get("type") == "LoadBalancer":
            later(obj, pools, "a MetalLB IPAddressPool to get an address", False)
            for ip in requested_ips(obj.doc):
                if pools and not any(in_pool(ip, p.doc) for p in pools):
                    errors.append(
                        f"{obj.ref()}: asks for address {ip}, which no IPAddressPool holds: "
                        "MetalLB never assigns it and the Service stays pending"
                    )
            later(obj, adverts, "a MetalLB L2Advertisement to announce it", False)
        for what, cls in claims(obj):
            deps = [c for c in classes if c.name == cls] if cls else _default_class(classes)
            label = f"StorageClass {cls}" if cls else "a default StorageClass"
            later(obj, deps, f"{label} for its {what}", False)
        for name, key in secret_key_refs(obj):
            keys = script_secret_keys().get((obj.namespace, name))
            if keys is not None and key not in keys:
                errors.append(
                    f"{obj.ref()} reads key {key!r} of Secret {obj.namespace}/{name}, which "
                    f"create-secrets.sh writes with keys {sorted(keys)}: the pod never starts"
                )
        for ref_kind, ref_name in sorted(set(pod_references(obj))):
            if ref_kind == "Secret" and (obj.namespace, ref_name) in script_secrets():
                continue  # cluster/secrets/create-secrets.sh, before the root application
            deps = [
                o
                for o in objs
                if o.namespace == obj.namespace
                and o is not obj
                and (
                    (o.kind == ref_kind and o.name == ref_name)
                    or (ref_kind == "Secret" and ref_name in secrets_made_by(o))
                )
            ]
            if not deps:
                errors.append(
                    f"{obj.ref()} needs {ref_kind} {obj.namespace}/{ref_name}, which neither this "
                    "topology nor cluster/secrets/create-secrets.sh creates: its pods never start"
                )
            elif all(d.app != obj.app for d in deps):
                later(obj, deps, f"{ref_kind} {ref_name}", False)
        for image in sorted(set(all_images(obj))):
            errors += [f"{obj.ref()}: {p}" for p in image_problems(image)]
    return errors


# --- values keys --------------------------------------------------------------------------------
def _subchart_values(folder: Path, name: str) -> tuple[Any, Path | None]:
    sub = folder / "charts" / name
    if (sub / "values.yaml").is_file():
        return yaml.safe_load((sub / "values.yaml").read_text(encoding="utf-8")) or {}, sub
    return None, None


@functools.cache
def _templates_text(folder: str) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in Path(folder).rglob("templates/**/*")
        if p.is_file()
    )


def _schema_has(schema: Any, path: list[str]) -> bool:
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return False
        props = node.get("properties") or {}
        if key in props:
            node = props[key]
            continue
        if node.get("additionalProperties") is not False or "patternProperties" in node:
            return True  # JSON Schema: extra keys are allowed unless the schema says false
        return bool("$ref" in node or "anyOf" in node or "oneOf" in node)
    return True


def _read_by_template(folder: Path, dotted: str) -> bool:
    return bool(
        re.search(r"\.Values\." + re.escape(dotted) + r"(?![\w])", _templates_text(str(folder)))
    )


def unknown_keys(ours: Any, defaults: Any, folder: Path, schema: Any, path: list[str]) -> list[str]:
    """Dotted paths of `ours` that the chart at `folder` has no value for."""
    if not isinstance(ours, dict):
        return []
    out = []
    for key, value in ours.items():
        here = [*path, key]
        dotted = ".".join(here)
        if not path and key == "global":
            continue
        if not path:
            sub_defaults, sub_folder = _subchart_values(folder, key)
            if sub_folder is not None:
                sub_schema_file = sub_folder / "values.schema.json"
                sub_schema = (
                    json.loads(sub_schema_file.read_text(encoding="utf-8"))
                    if sub_schema_file.is_file()
                    else None
                )
                parent = (defaults or {}).get(key) if isinstance(defaults, dict) else None
                merged = render.merge_values(sub_defaults or {}, parent or {})
                out += [
                    f"{key}.{k}" for k in unknown_keys(value, merged, sub_folder, sub_schema, [])
                ]
                continue
        if isinstance(defaults, dict) and key in defaults:
            if isinstance(defaults[key], dict) and defaults[key]:
                out += unknown_keys(value, defaults[key], folder, schema, here)
            continue
        if isinstance(defaults, dict) and not defaults and path:
            continue  # an empty map in the chart's values: free-form (labels, env, ...)
        if schema is not None and _schema_has(schema, here):
            continue
        if re.search(r'index \.Values "' + re.escape(here[0]) + '"', _templates_text(str(folder))):
            continue  # a map read whole by `index .Values "key"` (grafana.ini)
        if _read_by_template(folder, dotted):
            continue  # documented only in a comment, but a template reads it
        parent_path = ".".join(path)
        if parent_path and re.search(
            r"\.Values\." + re.escape(parent_path) + r"(?![\w.])", _templates_text(str(folder))
        ):
            continue  # the template reads the whole parent map (toYaml, range)
        out.append(dotted)
    return out


def check_values(topo: render.Topology) -> list[str]:
    errors = []
    seen = set()
    for chart in topo.charts:
        key = (chart.chart, tuple(chart.value_files))
        if key in seen:
            continue
        seen.add(key)
        folder = vendor.charts_dir() / chart.chart
        defaults = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8")) or {}
        schema_file = folder / "values.schema.json"
        schema = (
            json.loads(schema_file.read_text(encoding="utf-8")) if schema_file.is_file() else None
        )
        for dotted in unknown_keys(chart.values, defaults, folder, schema, []):
            errors.append(
                f"[{chart.app}] {', '.join(chart.value_files)}: `{dotted}` is not a value of chart "
                f"{chart.chart} (not in its values.yaml or schema, not read by a template): Helm "
                "ignores it silently; use the chart's key"
            )
    return errors


# --- resources ----------------------------------------------------------------------------------
def cpu_m(value: Any) -> int:
    text = str(value)
    return int(float(text[:-1])) if text.endswith("m") else int(float(text) * 1000)


def mem_mi(value: Any) -> int:
    text = str(value)
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "Ti": 1024 * 1024,
        "k": 1 / 1048.576,
        "M": 1000 / 1048.576,
        "G": 1000000 / 1048.576,
    }
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return round(float(text[: -len(suffix)]) * factor)
    return round(float(text) / 1048576)


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def dag_pods() -> list[tuple[str, list[dict]]]:
    """(task, containers with resources) of every pod the DAG's kubernetes runtime creates:
    the task's container (dags/realtor/specs.py) and the XCom sidecar
    (dags/realtor/kubernetes.py SIDECAR_RESOURCES)."""
    specs = _load_module("realtor_specs_for_checks", REPO / "dags/realtor/specs.py")
    source = (REPO / "dags/realtor/kubernetes.py").read_text(encoding="utf-8")
    sidecar = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "SIDECAR_RESOURCES" for t in node.targets
        ):
            sidecar = ast.literal_eval(node.value)
    out = []
    tasks = dict(specs.TASKS)
    default = getattr(specs, "DEFAULT_RESOURCES", None)
    for name, spec in sorted(tasks.items()):
        cs = [{"name": "base", "resources": spec.resources.as_k8s()}]
        cs.append(
            {"name": "airflow-xcom-sidecar", "resources": copy.deepcopy(sidecar) if sidecar else {}}
        )
        out.append((name, cs))
    if default is not None:
        out.append(
            (
                "(a task without a line in TASKS)",
                [
                    {"name": "base", "resources": default.as_k8s()},
                    {
                        "name": "airflow-xcom-sidecar",
                        "resources": copy.deepcopy(sidecar) if sidecar else {},
                    },
                ],
            )
        )
    return out


def with_limit_range(cs: list[dict], limit_ranges: list[dict]) -> tuple[list[dict], list[str]]:
    """Containers as admitted: the API server's defaulting (a limit without a request makes
    the request), then the LimitRanger (default limit, defaultRequest - or the default limit -
    as request); and what the LimitRange's min and max refuse."""
    conv = {"cpu": cpu_m, "memory": mem_mi}
    out, errors = [], []
    for c in copy.deepcopy(cs):
        res = c.setdefault("resources", {})
        limits = res.setdefault("limits", {})
        requests = res.setdefault("requests", {})
        for k, v in limits.items():
            requests.setdefault(k, v)
        for lr in limit_ranges:
            for item in (lr.get("spec") or {}).get("limits") or []:
                if item.get("type") != "Container":
                    continue
                for k, v in (item.get("default") or {}).items():
                    limits.setdefault(k, v)
                for k, v in (
                    (item.get("default") or {}) | (item.get("defaultRequest") or {})
                ).items():
                    requests.setdefault(k, v)
                for k, v in (item.get("max") or {}).items():
                    if k in conv and k in limits and conv[k](limits[k]) > conv[k](v):
                        errors.append(
                            f"container {c['name']} limit {k}={limits[k]} above the LimitRange max {v}"
                        )
                for k, v in (item.get("min") or {}).items():
                    if k in conv and k in requests and conv[k](requests[k]) < conv[k](v):
                        errors.append(
                            f"container {c['name']} request {k}={requests[k]} below the LimitRange min {v}"
                        )
        out.append(c)
    return out, errors


def pod_totals(cs: list[dict]) -> dict[str, int]:
    tot = {"requests.cpu": 0, "requests.memory": 0, "limits.cpu": 0, "limits.memory": 0}
    for c in cs:
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            vals = res.get(kind) or {}
            if "cpu" in vals:
                tot[f"{kind}.cpu"] += cpu_m(vals["cpu"])
            if "memory" in vals:
                tot[f"{kind}.memory"] += mem_mi(vals["memory"])
    return tot


def check_pipeline_quota(topo: render.Topology, namespace: str = "pipeline") -> list[str]:
    objs = [o for o in applied(topo) if o.namespace == namespace]
    quotas = [o.doc for o in objs if o.kind == "ResourceQuota"]
    ranges = [o.doc for o in objs if o.kind == "LimitRange"]
    errors = []
    for task, cs in dag_pods():
        filled, lr_errors = with_limit_range(cs, ranges)
        errors += [
            f"DAG task {task}: refused by the LimitRange of {namespace}: {e}" for e in lr_errors
        ]
        tot = pod_totals(filled)
        for quota in quotas:
            hard = quota["spec"].get("hard") or {}
            for key, used in tot.items():
                if key not in hard:
                    continue
                if any(key.startswith(k) for k in ("limits", "requests")):
                    missing = [
                        c["name"]
                        for c in filled
                        if key.split(".")[1] not in (c["resources"].get(key.split(".")[0]) or {})
                    ]
                    if missing:
                        errors.append(
                            f"DAG task {task}: quota {quota['metadata']['name']} tracks {key} but containers {missing} set none: the pod is refused"
                        )
                cap = cpu_m(hard[key]) if key.endswith("cpu") else mem_mi(hard[key])
                if used > cap:
                    errors.append(
                        f"DAG task {task}: its pod needs {key}={used}{'m' if key.endswith('cpu') else 'Mi'} "
                        f"(task + XCom sidecar, after the LimitRange), above the quota "
                        f"{quota['metadata']['name']} ({hard[key]}): the API server refuses the pod; "
                        "raise the quota in cluster/apps/pipeline or lower dags/realtor/specs.py"
                    )
    return errors


VM_CPU_M = 4000
VM_MEM_MI = 16 * 1024
MAX_CPU_SHARE = 0.85
MAX_MEM_SHARE = 0.75
# Pods no chart renders (created by operators or K3s itself): explicit estimates per node or
# per cluster, (name, cpu m, memory Mi, per node).
UNRENDERED = [
    ("k3s server + containerd + kubelet (measured)", 500, 1536, True),
    ("K3s CoreDNS + metrics-server", 200, 140, False),
    ("longhorn instance-manager (guaranteedInstanceManagerCPU 5%)", 200, 256, True),
    ("longhorn engine-image, CSI plugin and sidecars (operator-made)", 100, 320, True),
]


def budget_rows(topo: render.Topology) -> list[tuple[str, int, int, int]]:
    """(what, replicas, cpu m, memory Mi of one replica) of everything that requests resources."""
    rows = []
    for obj in applied(topo):
        spec = pod_spec(obj.doc)
        if spec is not None and obj.phase == "Sync" and obj.kind != "Job" and obj.kind != "CronJob":
            cs = list(spec.get("containers") or [])
            tot = pod_totals(cs)
            init = pod_totals(list(spec.get("initContainers") or []))
            cpu = max(tot["requests.cpu"], init["requests.cpu"])
            mem = max(tot["requests.memory"], init["requests.memory"])
            if obj.kind == "DaemonSet":
                replicas = topo.nodes
            elif obj.kind == "Pod":
                replicas = 1
            else:
                replicas = int((obj.doc.get("spec") or {}).get("replicas", 1) or 0)
            rows.append((f"[{obj.app}] {obj.kind} {obj.name}", replicas, cpu, mem))
        if obj.kind == "Cluster" and obj.doc.get("apiVersion", "").startswith("postgresql.cnpg.io"):
            spec_ = obj.doc["spec"]
            req = (spec_.get("resources") or {}).get("requests") or {}
            rows.append(
                (
                    f"[{obj.app}] postgres {obj.name}",
                    int(spec_.get("instances", 1)),
                    cpu_m(req.get("cpu", 0)),
                    mem_mi(req.get("memory", 0)),
                )
            )
        if obj.kind in ("Prometheus", "Alertmanager"):
            spec_ = obj.doc["spec"]
            req = (spec_.get("resources") or {}).get("requests") or {}
            rows.append(
                (
                    f"[{obj.app}] {obj.kind} {obj.name}",
                    int(spec_.get("replicas", 1)),
                    cpu_m(req.get("cpu", 0)),
                    mem_mi(req.get("memory", 0)),
                )
            )
        if obj.kind == "ResourceQuota":
            hard = obj.doc["spec"].get("hard") or {}
            if "requests.cpu" in hard:
                rows.append(
                    (
                        f"[{obj.app}] task pods (quota {obj.name} ceiling)",
                        1,
                        cpu_m(hard["requests.cpu"]),
                        mem_mi(hard.get("requests.memory", 0)),
                    )
                )
    for what, cpu, mem, per_node in UNRENDERED:
        rows.append((what + " (estimate)", topo.nodes if per_node else 1, cpu, mem))
    return rows


def check_node_budget(topo: render.Topology) -> list[str]:
    rows = budget_rows(topo)
    cpu = sum(r * c for _, r, c, _ in rows)
    mem = sum(r * m for _, r, _, m in rows)
    cap_cpu, cap_mem = VM_CPU_M * topo.nodes, VM_MEM_MI * topo.nodes
    errors = []
    if cpu > MAX_CPU_SHARE * cap_cpu or mem > MAX_MEM_SHARE * cap_mem:
        top = sorted(rows, key=lambda r: -r[1] * r[3])[:5]
        errors.append(
            f"requests {cpu}m CPU / {mem}Mi memory exceed {MAX_CPU_SHARE:.0%} / {MAX_MEM_SHARE:.0%} "
            f"of {topo.nodes} x 4 vCPU / 16 GiB; largest: "
            + ", ".join(f"{w} x{r} {c}m/{m}Mi" for w, r, c, m in top)
        )
    return errors


def check_resources(topo: render.Topology) -> list[str]:
    return check_pipeline_quota(topo) + check_node_budget(topo)


# --- database URLs ------------------------------------------------------------------------------
# SQLAlchemy 2.1 made psycopg (3) the default driver of postgresql://; before it, psycopg2.
DRIVERS = {
    "postgresql+psycopg": "psycopg",
    "postgresql+psycopg2": "psycopg2",
    "postgresql+asyncpg": "asyncpg",
    "postgresql+pg8000": "pg8000",
    "mysql+pymysql": "pymysql",
    "sqlite": None,
}


def url_consumers(topo: render.Topology, namespace: str, secret: str, key: str) -> set[str]:
    """Locks (images/<image>/requirements.txt) of the images that read key `key` of a
    Secret: the rendered pods that mount it as env (envFrom, secretKeyRef), and the DAG's
    task pods for the Secret they take env_from (dags/realtor/config.py's env_secret)."""
    out = set()
    for obj in applied(topo):
        spec = pod_spec(obj.doc)
        if spec is None or obj.namespace != namespace:
            continue
        for c in containers(spec):
            reads = any(
                (e.get("secretRef") or {}).get("name") == secret for e in c.get("envFrom") or []
            ) or any(
                ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret
                and e["valueFrom"]["secretKeyRef"].get("key") == key
                for e in c.get("env") or []
            )
            image = str(c.get("image", ""))
            if reads and image.startswith(OUR_REGISTRY):
                name = image.removeprefix(OUR_REGISTRY).split(":")[0]
                out.add(f"images/{name}/requirements.txt")
    if (namespace, secret) == ("pipeline", "pipeline-secrets"):
        specs = _load_module("realtor_specs_for_checks", REPO / "dags/realtor/specs.py")
        out |= {f"images/{spec.image}/requirements.txt" for spec in specs.TASKS.values()}
    return out


def lock_versions(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def driver_for(scheme: str, pins: dict[str, str]) -> str | None:
    if scheme in DRIVERS:
        return DRIVERS[scheme]
    if scheme in ("postgresql", "postgres"):
        version = pins.get("sqlalchemy", "0")
        major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
        return "psycopg" if major_minor >= (2, 1) else "psycopg2"
    return scheme.split("+", 1)[1] if "+" in scheme else None


def script_urls(text: str) -> list[tuple[str, str, str, str]]:
    """(namespace, secret, key, scheme) of every URL in an apply_secret line."""
    out = []
    joined = re.sub(r"\\\n\s*", " ", text)
    for m in re.finditer(r"^\s*apply_secret\s+(\S+)\s+(\S+)\s+\S+\s+(.*)$", joined, re.M):
        ns, name, rest = m.groups()
        for km in re.finditer(r'"?([A-Za-z_][A-Za-z0-9_-]*)=([a-z0-9+]+)://', rest):
            out.append((ns, name, km.group(1), km.group(2)))
    return out


def check_db_urls(topo: render.Topology, script: Path | None = None) -> list[str]:
    """Every database URL create-secrets.sh writes, against the lock of each image that reads it."""
    script = script or REPO / "cluster/secrets/create-secrets.sh"
    errors = []
    for ns, name, key, scheme in script_urls(script.read_text(encoding="utf-8")):
        if not scheme.startswith(("postgres", "mysql", "sqlite")):
            continue
        consumers = url_consumers(topo, ns, name, key)
        if not consumers:
            errors.append(
                f"{script.name}: secret {ns}/{name} key {key} holds a {scheme}:// URL that no "
                "image of ours reads: drop it, or its reader is missing from the tree"
            )
            continue
        for lock in sorted(consumers):
            path = REPO / lock
            if not path.is_file():
                continue  # the image is not in this tree yet: the waves check names it
            pins = lock_versions(path)
            driver = driver_for(scheme, pins)
            if driver and driver not in pins and f"{driver}-binary" not in pins:
                errors.append(
                    f"{script.name}: {ns}/{name} {key} is a {scheme}:// URL, which SQLAlchemy "
                    f"{pins.get('sqlalchemy', '?')} opens with {driver}, but {lock} does not "
                    f"install {driver}: write the scheme with the driver the lock has "
                    f"(e.g. postgresql+psycopg2:// or postgresql+psycopg://)"
                )
    return errors


# --- references between objects ----------------------------------------------------------------
def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_labels(obj: render.Obj) -> dict:
    doc, spec = obj.doc, obj.doc.get("spec") or {}
    if obj.kind == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}
    if obj.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def cluster_made_services(objs: list[render.Obj]) -> list[render.Obj]:
    """Services no manifest holds: the API server's (default/kubernetes) and the kubelet
    Service the Prometheus operator keeps when it runs with --kubelet-service=NS/NAME."""

    def service(namespace: str, name: str, labels: dict, ports: list[str]) -> render.Obj:
        doc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"ports": [{"name": p, "port": 0} for p in ports]},
        }
        return render.Obj(doc, "cluster", -100, "made by the cluster")

    out = [
        service(
            "default", "kubernetes", {"component": "apiserver", "provider": "kubernetes"}, ["https"]
        )
    ]
    for obj in objs:
        spec = pod_spec(obj.doc)
        for c in containers(spec) if spec else []:
            for arg in c.get("args") or []:
                m = re.match(r"--kubelet-service=([^/]+)/(\S+)", str(arg))
                if m:
                    labels = {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}
                    out.append(
                        service(
                            m.group(1),
                            m.group(2),
                            labels,
                            ["https-metrics", "http-metrics", "cadvisor"],
                        )
                    )
    return out


def check_refs(topo: render.Topology) -> list[str]:
    """Routes and scrapes that lead nowhere: an IngressRoute's Service or port that does not
    exist, a ServiceMonitor that selects no Service port, a Service of ours that selects no pod."""
    objs = [o for o in applied(topo)]
    services = [o for o in objs if o.kind == "Service"] + cluster_made_services(objs)
    workloads = [
        o for o in objs if pod_spec(o.doc) is not None and o.kind not in ("Job", "CronJob")
    ]
    errors = []
    for obj in objs:
        spec = obj.doc.get("spec") or {}
        if obj.kind == "IngressRoute":
            for route in spec.get("routes") or []:
                for svc in route.get("services") or []:
                    if svc.get("kind", "Service") != "Service":
                        continue
                    namespace = svc.get("namespace") or obj.namespace
                    found = [
                        s for s in services if s.name == svc["name"] and s.namespace == namespace
                    ]
                    ports = {
                        p.get("port") for s in found for p in s.doc["spec"].get("ports", [])
                    } | {p.get("name") for s in found for p in s.doc["spec"].get("ports", [])}
                    if not found:
                        errors.append(
                            f"{obj.ref()}: routes to Service {namespace}/{svc['name']}, which nothing renders"
                        )
                    elif svc.get("port") not in ports:
                        errors.append(
                            f"{obj.ref()}: routes to port {svc.get('port')} of Service "
                            f"{namespace}/{svc['name']}, which has {sorted(map(str, ports))}"
                        )
        if obj.kind == "ServiceMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            names = (spec.get("namespaceSelector") or {}).get("matchNames") or [obj.namespace]
            found = [
                s
                for s in services
                if s.namespace in names
                and _labels_match(selector, (s.doc.get("metadata") or {}).get("labels") or {})
            ]
            wanted = {e.get("port") for e in spec.get("endpoints") or [] if e.get("port")}
            have = {p.get("name") for s in found for p in s.doc["spec"].get("ports", [])}
            if not found:
                errors.append(
                    f"{obj.ref()}: selects no Service ({selector} in {names}): nothing is scraped"
                )
            elif wanted - have:
                errors.append(
                    f"{obj.ref()}: endpoint ports {sorted(wanted - have)} are not named on {[s.name for s in found]}"
                )
        if obj.kind == "Service" and not obj.from_chart and spec.get("selector"):
            pods = [
                w
                for w in workloads
                if w.namespace == obj.namespace and _labels_match(spec["selector"], _pod_labels(w))
            ]
            if not pods:
                errors.append(
                    f"{obj.ref()}: selector {spec['selector']} matches no pod template: no endpoints"
                )
    return errors


# --- Argo CD project -----------------------------------------------------------------------------
def _allowed(patterns: list[dict], group: str, kind: str) -> bool:
    return any(
        fnmatch.fnmatchcase(group, p.get("group", ""))
        and fnmatch.fnmatchcase(kind, p.get("kind", ""))
        for p in patterns
    )


def check_project(topo: render.Topology) -> list[str]:
    """What Argo CD refuses to sync under an AppProject: a source repository, a destination
    namespace, or a cluster-scoped kind the project does not permit, or a missing project."""
    projects = {o.name: o.doc for o in topo.objects if o.kind == "AppProject"}
    cluster_kinds = render.cluster_scoped_kinds(topo.objects)
    apps = dict(topo.applications)
    apps["root"] = render.root_application(topo.name)
    errors = []
    for name, app in sorted(apps.items()):
        spec = app["spec"]
        project = projects.get(spec.get("project", "default"))
        if project is None:
            errors.append(f"Application {name}: project {spec.get('project')!r} is not defined")
            continue
        pspec = project["spec"]
        repos = pspec.get("sourceRepos") or []
        for src in spec.get("sources") or [spec.get("source") or {}]:
            if not any(fnmatch.fnmatchcase(src.get("repoURL", ""), r) for r in repos):
                errors.append(
                    f"Application {name}: source {src.get('repoURL')} is not in project sourceRepos"
                )
        dests = pspec.get("destinations") or []

        def permitted(namespace: str, dests: list = dests) -> bool:
            return any(fnmatch.fnmatchcase(namespace, d.get("namespace", "")) for d in dests)

        if not permitted(spec["destination"].get("namespace", "")):
            errors.append(
                f"Application {name}: destination namespace {spec['destination'].get('namespace')} not permitted"
            )
        for obj in topo.objects:
            if obj.app != name or obj.phase not in APPLIED:
                continue
            api = obj.doc.get("apiVersion", "")
            group = api.split("/")[0] if "/" in api else ""
            if obj.kind in cluster_kinds:
                if not _allowed(pspec.get("clusterResourceWhitelist") or [], group, obj.kind):
                    errors.append(
                        f"{obj.ref()}: cluster-scoped {group or 'core'}/{obj.kind} is not in the "
                        f"clusterResourceWhitelist of project {spec.get('project')}: Argo CD refuses it"
                    )
            elif obj.namespace and not permitted(obj.namespace):
                errors.append(
                    f"{obj.ref()}: namespace {obj.namespace} is not a destination of project "
                    f"{spec.get('project')}: Argo CD refuses it"
                )
    return errors


# --- version labels -----------------------------------------------------------------------------
VERSION = re.compile(r"(chart )?\b(v?\d+(?:\.\d+){1,2}|v\d+)\b")


def _prefix_of(label: str, version: str) -> bool:
    want = label.lstrip("v").split(".")
    have = version.lstrip("v").split(".")
    return have[: len(want)] == want


def check_labels(topo: render.Topology) -> list[str]:
    """The versions our files name match what the pinned charts ship: the header of each
    values file (`chart X` = the chart version, any other version = a prefix of the chart's
    appVersion), and Airflow's airflowVersion = the Airflow our image's lock installs."""
    errors = []
    seen = set()
    for chart in topo.charts:
        meta = yaml.safe_load((vendor.charts_dir() / chart.chart / "Chart.yaml").read_text("utf-8"))
        version, app_version = str(meta["version"]), str(meta.get("appVersion", ""))
        for rel in chart.value_files[:1]:
            if rel in seen:
                continue
            seen.add(rel)
            header = []
            for line in (REPO / rel).read_text(encoding="utf-8").splitlines():
                if line.startswith("---"):
                    continue
                if not line.startswith("#"):
                    break
                header.append(line)
            text = re.sub(r"\d+\.\d+\.\d+\.\d+", "<ip>", "\n".join(header))
            for chart_word, label in VERSION.findall(text):
                ok = (
                    label.lstrip("v") == version.lstrip("v")
                    if chart_word
                    else (
                        _prefix_of(label, app_version) or label.lstrip("v") == version.lstrip("v")
                    )
                )
                if not ok:
                    errors.append(
                        f"{rel}: says {chart_word}{label}, but chart {chart.chart} ships "
                        f"{'version ' + version if chart_word else 'appVersion ' + app_version}"
                    )
        if chart.chart.startswith("airflow-") and "airflowVersion" in chart.values:
            pins = lock_versions(REPO / "images/airflow/requirements.txt")
            if str(chart.values["airflowVersion"]) != pins.get("apache-airflow"):
                errors.append(
                    f"{', '.join(chart.value_files)}: airflowVersion {chart.values['airflowVersion']} "
                    f"is not the Airflow of our image ({pins.get('apache-airflow')}, "
                    "images/airflow/requirements.txt): the chart picks commands by it"
                )
    return errors


CHECKS: dict[str, Check] = {
    "schemas": check_schemas,
    "psa": check_psa,
    "hooks": check_hooks,
    "waves": check_waves,
    "values": check_values,
    "resources": check_resources,
    "db-urls": check_db_urls,
    "labels": check_labels,
    "project": check_project,
    "refs": check_refs,
}
