"""waves - sync waves against health: a custom resource needs its CRD in the same Application
or an earlier wave, and the failing-closed admission webhook that guards it in an earlier one;
a LoadBalancer Service needs a MetalLB pool, a volume claim its StorageClass, a pod its Secrets
and ConfigMaps (rendered, made by a producer, or written by create-secrets.sh with the keys it
reads), in the same or an earlier wave; an object needs its namespace; our images must be built
by the images workflow from the right stage."""

from __future__ import annotations

import ipaddress

import render

from . import images
from .common import applied
from .images import all_images
from .pod_refs import (
    pod_references,
    script_secret_keys,
    script_secrets,
    secret_key_refs,
    secrets_made_by,
)
from .schemas import is_builtin, sync_options


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


class _Waves:
    """The objects a topology applies, indexed for the wave checks, and the errors found."""

    def __init__(self, topo: render.Topology) -> None:
        self.topo = topo
        self.objs = list(applied(topo))
        objs = self.objs
        self.crd_by_kind: dict[tuple[str, str], list[render.Obj]] = {}
        for o in objs:
            if o.kind == "CustomResourceDefinition":
                s = o.doc["spec"]
                for v in s.get("versions", []):
                    key = (f"{s['group']}/{v['name']}", s["names"]["kind"])
                    self.crd_by_kind.setdefault(key, []).append(o)
        self.classes = [o for o in objs if o.kind == "StorageClass"]
        self.pools = [o for o in objs if o.kind == "IPAddressPool"]
        self.adverts = [o for o in objs if o.kind in ("L2Advertisement", "BGPAdvertisement")]
        self.namespaces: dict[str, list[render.Obj]] = {}
        for o in objs:
            if o.kind == "Namespace":
                self.namespaces.setdefault(o.name, []).append(o)
        self.plurals = {
            (o.doc["spec"]["group"], o.doc["spec"]["names"]["kind"]): o.doc["spec"]["names"][
                "plural"
            ]
            for o in objs
            if o.kind == "CustomResourceDefinition"
        }
        self.webhooks = [
            (o, hook)
            for o in objs
            if o.kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
            for hook in o.doc.get("webhooks") or []
            if hook.get("failurePolicy", "Fail") == "Fail"
        ]
        self.errors: list[str] = []

    def wave(self, obj: render.Obj) -> int:
        return effective_wave(self.topo, obj)

    def later(self, obj: render.Obj, deps: list[render.Obj], what: str, strict_order: bool) -> None:
        """An error unless one of `deps` is in obj's Application or comes in an earlier wave
        (or the same one, unless strict_order)."""
        wave = self.wave(obj)
        ok = [
            d
            for d in deps
            if d.app == obj.app
            or self.wave(d) < wave
            or (not strict_order and self.wave(d) == wave)
        ]
        if deps and not ok:
            first = min(deps, key=self.wave)
            self.errors.append(
                f"{obj.ref()} (wave {wave}) needs {what}, which comes in wave "
                f"{self.wave(first)} ([{first.app}]): Argo CD starts a wave only when "
                "the earlier ones are healthy, so the sync stalls; move one of them"
            )
        elif not deps:
            self.errors.append(f"{obj.ref()} needs {what}, which nothing in this topology creates")

    def admission_and_crd(self, obj: render.Obj) -> None:
        api, kind = obj.doc.get("apiVersion", ""), obj.kind
        group = api.split("/")[0] if "/" in api else ""
        plural = self.plurals.get((group, kind), kind.lower() + "s")
        for config, hook in self.webhooks:
            if config.app == obj.app:
                continue
            for rule in hook.get("rules") or []:
                groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
                if (group in groups or "*" in groups) and (
                    plural in resources or "*" in resources or "*/*" in resources
                ):
                    what = f"the admission webhook {hook['name']} (failurePolicy Fail)"
                    self.later(obj, [config], what, True)
                    break
        if not is_builtin(api) and kind != "CustomResourceDefinition":
            self.later(obj, self.crd_by_kind.get((api, kind), []), f"the CRD of {api} {kind}", True)

    def namespace(self, obj: render.Obj) -> None:
        if not obj.namespace or obj.kind == "Namespace" or obj.namespace in K3S_NAMESPACES:
            return
        ns = self.namespaces.get(obj.namespace)
        if ns is None and "CreateNamespace=true" in sync_options(self.topo, obj.app):
            return
        if ns is None:
            self.errors.append(
                f"{obj.ref()}: namespace {obj.namespace} is created by nothing in this topology"
            )
        else:
            self.later(obj, ns, f"namespace {obj.namespace}", False)

    def addresses_and_storage(self, obj: render.Obj) -> None:
        if obj.kind == "Service" and (obj.doc.get("spec") or {}).get("type") == "LoadBalancer":
            self.later(obj, self.pools, "a MetalLB IPAddressPool to get an address", False)
            for ip in requested_ips(obj.doc):
                if self.pools and not any(in_pool(ip, p.doc) for p in self.pools):
                    self.errors.append(
                        f"{obj.ref()}: asks for address {ip}, which no IPAddressPool holds: "
                        "MetalLB never assigns it and the Service stays pending"
                    )
            self.later(obj, self.adverts, "a MetalLB L2Advertisement to announce it", False)
        for what, cls in claims(obj):
            deps = (
                [c for c in self.classes if c.name == cls] if cls else _default_class(self.classes)
            )
            label = f"StorageClass {cls}" if cls else "a default StorageClass"
            self.later(obj, deps, f"{label} for its {what}", False)

    def pod_needs(self, obj: render.Obj) -> None:
        for name, key in secret_key_refs(obj):
            keys = script_secret_keys().get((obj.namespace, name))
            if keys is not None and key not in keys:
                self.errors.append(
                    f"{obj.ref()} reads key {key!r} of Secret {obj.namespace}/{name}, which "
                    f"create-secrets.sh writes with keys {sorted(keys)}: the pod never starts"
                )
        for ref_kind, ref_name in sorted(set(pod_references(obj))):
            if ref_kind == "Secret" and (obj.namespace, ref_name) in script_secrets():
                continue  # cluster/secrets/create-secrets.sh, before the root application
            deps = [
                o
                for o in self.objs
                if o.namespace == obj.namespace
                and o is not obj
                and (
                    (o.kind == ref_kind and o.name == ref_name)
                    or (ref_kind == "Secret" and ref_name in secrets_made_by(o))
                )
            ]
            if not deps:
                self.errors.append(
                    f"{obj.ref()} needs {ref_kind} {obj.namespace}/{ref_name}, which neither this "
                    "topology nor cluster/secrets/create-secrets.sh creates: its pods never start"
                )
            elif all(d.app != obj.app for d in deps):
                self.later(obj, deps, f"{ref_kind} {ref_name}", False)
        for image in sorted(set(all_images(obj))):
            self.errors += [f"{obj.ref()}: {p}" for p in images.image_problems(image)]


def check_waves(topo: render.Topology) -> list[str]:
    waves = _Waves(topo)
    for obj in waves.objs:
        waves.admission_and_crd(obj)
        waves.namespace(obj)
        waves.addresses_and_storage(obj)
        waves.pod_needs(obj)
    return waves.errors
