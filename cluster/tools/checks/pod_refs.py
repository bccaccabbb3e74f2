"""What a pod template needs to start (ServiceAccount, ConfigMaps, Secrets, claims), which
Secrets cluster/secrets/create-secrets.sh writes with which keys and URLs, and which Secrets an
object makes at run time."""

from __future__ import annotations

import functools
import re

import render
from pod_security import containers

from .common import REPO, pod_spec


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


def script_urls(text: str) -> list[tuple[str, str, str, str]]:
    """(namespace, secret, key, scheme) of every URL in an apply_secret line."""
    out = []
    joined = re.sub(r"\\\n\s*", " ", text)
    for m in re.finditer(r"^\s*apply_secret\s+(\S+)\s+(\S+)\s+\S+\s+(.*)$", joined, re.M):
        ns, name, rest = m.groups()
        for km in re.finditer(r'"?([A-Za-z_][A-Za-z0-9_-]*)=([a-z0-9+]+)://', rest):
            out.append((ns, name, km.group(1), km.group(2)))
    return out
