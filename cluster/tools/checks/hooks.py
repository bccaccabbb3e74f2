"""hooks - Helm hooks as Argo CD runs them: a PreSync hook runs before the Sync phase creates
anything, so what it mounts or runs as must exist already; a Sync resource must not need
something only a PostSync hook creates; within a phase, a Job that needs a migration's result
(it reads the same database) comes in a later wave than the migration."""

from __future__ import annotations

import re

import render
from pod_security import containers

from .common import applied, pod_spec
from .pod_refs import pod_references, script_secrets, secret_key_refs

PHASE_ORDER = {"PreSync": 0, "Sync": 1, "PostSync": 2}


def check_hooks(topo: render.Topology) -> list[str]:
    return check_hook_needs(topo) + check_hook_order(topo)


def check_hook_needs(topo: render.Topology) -> list[str]:
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


# A Job whose command migrates a database schema; a Job in the same phase and wave that reads
# the same database (a shared Secret) starts at the same time and finds no tables.
MIGRATION = re.compile(r"\b(db (migrate|upgrade)|alembic upgrade|migrate)\b")


def _command_text(obj: render.Obj) -> str:
    spec = pod_spec(obj.doc) or {}
    return " ".join(
        str(part)
        for c in containers(spec)
        for part in [*(c.get("command") or []), *(c.get("args") or [])]
    )


def check_hook_order(topo: render.Topology) -> list[str]:
    """Within a phase, Argo CD starts every hook of one wave together and waits for a wave
    before the next: a Job that needs what a migration Job writes (they read one database
    Secret) must come in a later wave or phase than the migration."""
    jobs = [o for o in applied(topo) if o.kind == "Job"]
    errors = []
    for migration in [j for j in jobs if MIGRATION.search(_command_text(j))]:
        secrets = {n for k, n in pod_references(migration) if k == "Secret"}
        secrets |= {n for n, _ in secret_key_refs(migration)}
        for job in jobs:
            if job is migration or job.app != migration.app or MIGRATION.search(_command_text(job)):
                continue
            shared = secrets & (
                {n for k, n in pod_references(job) if k == "Secret"}
                | {n for n, _ in secret_key_refs(job)}
            )
            order = (PHASE_ORDER[job.phase], job.wave)
            if shared and order <= (PHASE_ORDER[migration.phase], migration.wave):
                errors.append(
                    f"{job.ref()}: runs in {job.phase} wave {job.wave}, not after "
                    f"{migration.kind} {migration.name} ({migration.phase} wave {migration.wave}), "
                    f"which migrates the database they share (Secrets {', '.join(sorted(shared))}): it "
                    "races the migration; give it a later argocd.argoproj.io/sync-wave"
                )
    return errors
