"""secrets - every Secret a rendered object names exists on a first sync: the tree renders it,
an object makes it at run time, or cluster/secrets/create-secrets.sh creates it on every run;
else the reference is optional.

A Secret the script creates only under a condition (Docker Hub or git credentials given)
counts as missing for a required reference: the platform must come up without them. What
names a Secret: a pod's volumes, envFrom and secretKeyRef (optional ones excepted; an
imagePullSecret is optional by Kubernetes' own rule, the kubelet pulls without it), and an
Argo CD Image Updater credential string (`pullsecret:NS/NAME`, `secret:NS/NAME#key`) in
any rendered object.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import render

from .common import REPO, applied
from .pod_refs import pod_references, secrets_made_by

SCRIPT = REPO / "cluster/secrets/create-secrets.sh"
CREDENTIAL = re.compile(r"\b(?:pullsecret|secret):([a-z0-9-]+)/([a-z0-9.-]+)")


def script_creates(path: Path = SCRIPT) -> dict[tuple[str, str], str | None]:
    """{(namespace, name): None if created on every run, else the condition's `if` line} of
    the Secrets the script creates (apply_secret, route_login, kubectl create secret)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], str | None] = {}
    conditions: list[str] = []
    loop_namespaces: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"(if|elif)\s", stripped) and not re.match(r"^[a-z_]+\(\)", stripped):
            conditions.append(stripped)
        elif re.match(r"fi\b", stripped) and conditions:
            conditions.pop()
        loop = re.match(r"for ns in ([a-z0-9 -]+); do", stripped)
        if loop:
            loop_namespaces = loop.group(1).split()
        # a dry run prints what the other branch runs: not a condition of creating it
        condition = next((c for c in conditions if "is_dry_run" not in c), None)
        for m in re.finditer(r"^\s*apply_secret\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s", line):
            out.setdefault((m.group(1), m.group(2)), condition)
        for m in re.finditer(r"^\s*route_login\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s", line):
            for suffix in ("-login", "-basic-auth"):
                out.setdefault((m.group(1), m.group(2) + suffix), condition)
        m = re.search(r'kubectl -n "\$\{ns\}" create secret \S+ ([a-z0-9-]+)', line)
        if m:
            for ns in loop_namespaces:
                out.setdefault((ns, m.group(1)), condition)
    return out


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def named_secrets(obj: render.Obj) -> list[tuple[str, str, str]]:
    """(namespace, name, how) of every Secret an object needs."""
    out = [
        (obj.namespace, name, "its pods mount or read it")
        for kind, name in pod_references(obj)
        if kind == "Secret"
    ]
    for text in _strings(obj.doc):
        for ns, name in CREDENTIAL.findall(text):
            out.append((ns, name, f"its registry credentials ({ns}/{name})"))
    return out


def check_secrets(topo: render.Topology, script: Path = SCRIPT) -> list[str]:
    objs = list(applied(topo))
    rendered = {(o.namespace, o.name) for o in objs if o.kind == "Secret"}
    created = script_creates(script)
    errors = []
    for obj in objs:
        for ns, name, how in sorted(set(named_secrets(obj))):
            if (ns, name) in rendered or created.get((ns, name), "absent") is None:
                continue
            if any(o.namespace == ns and name in secrets_made_by(o) for o in objs if o is not obj):
                continue
            condition = created.get((ns, name), "absent")
            why = (
                "which nothing creates"
                if condition == "absent"
                else f"which {script.name} creates only under `{condition}`"
            )
            errors.append(
                f"{obj.ref()}: needs Secret {ns}/{name} ({how}), {why}: create it on every "
                "run of the script, or make the reference optional"
            )
    return errors
