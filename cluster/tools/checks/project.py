"""project - the AppProject permits every Application's sources, its destination and every
object's namespace or cluster-scoped kind (Argo CD refuses the rest)."""

from __future__ import annotations

import fnmatch

import render

from .common import APPLIED


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
