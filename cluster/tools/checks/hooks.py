"""hooks - Helm hooks as Argo CD runs them: a PreSync hook runs before the Sync phase creates
anything, so what it mounts or runs as must exist already; a Sync resource must not need
something only a PostSync hook creates."""

from __future__ import annotations

import render

from .common import applied
from .pod_refs import pod_references, script_secrets

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
