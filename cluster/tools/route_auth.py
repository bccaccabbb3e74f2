"""No route into the cluster without authentication, unless it is public on purpose.

What the cluster would apply, per topology: the root Application (cluster/bootstrap/root),
every Application it renders, and for each of those its kustomize overlay (rendered) or its
Helm chart's effective values (the chart's own defaults from ${SHARED_DIR}/charts, then our
value files, in order). In that, every way in from outside must be authenticated or listed in
cluster/public-routes.yaml with a reason:

* IngressRoute: every route carries a middleware that resolves (same namespace: Traefik runs
  with allowCrossNamespace=false; chains followed) to a Middleware with basicAuth or
  digestAuth (a Secret named) or forwardAuth (an address); a basicAuth/digestAuth Secret must
  be one cluster/secrets/create-secrets.sh makes in that namespace;
* Ingress: the same, through the annotation traefik.ingress.kubernetes.io/router.middlewares
  (<namespace>-<name>@kubernetescrd); HTTPRoute: through an ExtensionRef filter;
* IngressRouteTCP/UDP, TCPRoute, TLSRoute, UDPRoute, GRPCRoute, Services of type
  LoadBalancer or NodePort, and Helm values that switch on a chart's ingress, route or
  LoadBalancer/NodePort service: no HTTP auth is possible there, so they must be listed.

A listed entry that matches nothing, or a listed route that is in fact authenticated, is an
error too, so the list stays true. Usage:

    python cluster/tools/route_auth.py [--topology T] [--quiet]   (exit 1 on any problem)
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render
import vendor

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
PUBLIC_LIST = CLUSTER / "public-routes.yaml"
CREATE_SECRETS = CLUSTER / "secrets" / "create-secrets.sh"
TOPOLOGIES = ("single-node", "two-node", "three-node")

NO_HTTP_AUTH = {
    "IngressRouteTCP",
    "IngressRouteUDP",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "GRPCRoute",
}
AUTH_TYPES = ("basicAuth", "digestAuth", "forwardAuth")
MIDDLEWARE_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares"
# Helm values: a mapping with `enabled: true` under one of these keys publishes something...
EXPOSING_KEY = re.compile(r"ingress|route", re.I)
# ...except these, which configure a controller or a policy, not an exposure of the chart's app
# (a chart's Gateway is a listener: what it publishes are routes, checked as manifests)
NOT_EXPOSING = {"providers", "ingressClass", "ingressClassResource", "networkPolicy"}


def charts_dir() -> Path:
    """The pinned charts: .cache/vendor (`make vendor`) or ../shared (cluster/tools/vendor.py)."""
    return vendor.charts_dir()


@dataclass(frozen=True)
class Exposure:
    """One way in: what publishes it, where, which hosts, and how it authenticates."""

    key: str  # e.g. "IngressRoute mlflow/mlflow" or "helm kube-prometheus-stack grafana.ingress"
    hosts: tuple[str, ...]
    auth: str  # "" when unauthenticated, else e.g. "basicAuth mlflow/mlflow-auth (Secret ...)"
    source: str  # the Application (or file) it comes from


@dataclass
class Result:
    exposures: list[Exposure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    applications: int = 0
    objects: int = 0


# --- what the cluster would apply ----------------------------------------------------------


def _sources(app: dict) -> list[dict]:
    spec = app.get("spec", {})
    return [spec["source"]] if "source" in spec else list(spec.get("sources", []))


def deep_merge(base: Any, over: Any) -> Any:
    """Helm's merge of values: maps merge recursively, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def chart_values(source: dict, errors: list[str]) -> tuple[dict, list[str]]:
    """Effective values of a chart source: chart defaults (if vendored), then our files."""
    used: list[str] = []
    values: dict = {}
    chart_dir = charts_dir() / "{}-{}".format(source["chart"], source.get("targetRevision"))
    if (chart_dir / "values.yaml").is_file():
        values = yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8")) or {}
        used.append(str(chart_dir.name) + "/values.yaml")
    helm = source.get("helm", {})
    for ref in helm.get("valueFiles", []):
        path = REPO / ref.removeprefix("$values/")
        if not path.is_file():
            errors.append(f"chart {source['chart']}: value file {ref} not found")
            continue
        values = deep_merge(values, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        used.append(ref.removeprefix("$values/"))
    inline = helm.get("valuesObject") or (
        yaml.safe_load(helm["values"]) if "values" in helm else None
    )
    if inline:
        values = deep_merge(values, inline)
        used.append("inline values")
    return values, used


def helm_exposures(values: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths of the value blocks that would publish something."""
    found: list[str] = []
    if not isinstance(values, dict):
        return found
    here = ".".join(path)
    in_scope = any(EXPOSING_KEY.search(p) for p in path) and not NOT_EXPOSING & set(path)
    if in_scope and values.get("enabled") is True:
        found.append(here)
    service = (
        any(re.search(r"service", part, re.I) for part in path)
        and values.get("type") in ("LoadBalancer", "NodePort")
        and values.get("enabled", True) is not False
    )
    if service:
        found.append(f"{here}.type={values['type']}")
    for key, value in values.items():
        inner = helm_exposures(value, (*path, str(key)))
        # one Service, one entry: Traefik's chart also says service.spec.type
        found += [x for x in inner if not (service and x.endswith(".type=" + values["type"]))]
    return found


def render_source(directory: Path) -> list[dict]:
    """A git source as Argo CD sees it: kustomize if there is a kustomization, else the
    directory's YAML files (Argo CD's plain directory source, not recursive)."""
    if (directory / "kustomization.yaml").is_file():
        return render.render(directory)
    docs: list[dict] = []
    for path in sorted(directory.glob("*.y*ml")):
        docs += render.load_yaml_docs(path)
    return docs


def applied(
    topology: str,
) -> tuple[dict[str, list[dict]], dict[str, tuple[dict, list[str]]], list[str]]:
    """(rendered objects per Application, effective chart values per Application, errors)."""
    errors: list[str] = []
    root_file = CLUSTER / "bootstrap" / "root" / f"{topology}.yaml"
    (root,) = render.load_yaml_docs(root_file)
    manifests: dict[str, list[dict]] = {}
    charts: dict[str, tuple[dict, list[str]]] = {}
    pending = [("root", root)]
    while pending:
        name, app = pending.pop()
        for src in _sources(app):
            if "chart" in src:
                charts[name] = chart_values(src, errors)
            elif "path" in src:
                try:
                    docs = render_source(REPO / src["path"])
                except (render.RenderError, OSError, KeyError, yaml.YAMLError) as exc:
                    errors.append(f"{name}: cannot render {src['path']}: {exc}")
                    continue
                manifests[name] = docs
                for doc in docs:
                    if doc.get("kind") == "Application":
                        pending.append((doc["metadata"]["name"], doc))
    return manifests, charts, errors


# --- authentication of one object ------------------------------------------------------------


def _hosts(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"Host(?:SNI)?\(`([^`]+)`\)", text or ""))


def created_secrets(script: Path | None = None) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret create-secrets.sh makes."""
    text = (script or CREATE_SECRETS).read_text(encoding="utf-8")
    found = set(re.findall(r"^\s*apply_secret\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s", text, re.M))
    # route_login NS NAME USER makes NAME-login and NAME-basic-auth
    for ns, name in re.findall(r"^\s*route_login\s+([a-z0-9-]+)\s+([a-z0-9-]+)\s", text, re.M):
        found |= {(ns, f"{name}-login"), (ns, f"{name}-basic-auth")}
    return found


class Resolver:
    """Finds Middlewares among everything one topology applies."""

    def __init__(self, docs: list[dict], secrets: set[tuple[str, str]]):
        self.middlewares = {
            (d["metadata"].get("namespace"), d["metadata"]["name"]): d
            for d in docs
            if d.get("kind") == "Middleware"
        }
        self.secrets = secrets

    def auth_of(self, namespace: str, name: str, seen: frozenset = frozenset()) -> tuple[str, str]:
        """(description of the auth, problem): at most one of them is non-empty."""
        if "@" in name:
            return "", f"middleware {name}: from another provider, cannot be checked"
        if (namespace, name) in seen:
            return "", f"middleware {namespace}/{name}: chain loop"
        mw = self.middlewares.get((namespace, name))
        if mw is None:
            return "", f"middleware {namespace}/{name} not found in what the cluster applies"
        spec = mw.get("spec", {})
        for kind in AUTH_TYPES:
            if kind not in spec:
                continue
            conf = spec[kind] or {}
            if kind == "forwardAuth":
                if not conf.get("address"):
                    return "", f"middleware {namespace}/{name}: forwardAuth without address"
                return f"forwardAuth {namespace}/{name} ({conf['address']})", ""
            secret = conf.get("secret")
            if not secret:
                return "", f"middleware {namespace}/{name}: {kind} without a Secret"
            if (namespace, secret) not in self.secrets:
                return "", (
                    f"middleware {namespace}/{name}: Secret {namespace}/{secret} is not made by "
                    "cluster/secrets/create-secrets.sh"
                )
            return f"{kind} {namespace}/{name} (Secret {secret})", ""
        if "chain" in spec:
            problems = []
            for link in spec["chain"].get("middlewares", []):
                ns = link.get("namespace", namespace)
                if ns != namespace:
                    problems.append(f"chain {namespace}/{name}: cross-namespace link {ns}")
                    continue
                auth, problem = self.auth_of(ns, link["name"], seen | {(namespace, name)})
                if auth:
                    return f"{auth} via chain {name}", ""
                if problem:
                    problems.append(problem)
            return "", "; ".join(problems)
        return "", ""

    def first_auth(self, namespace: str, refs: list[dict]) -> tuple[str, list[str]]:
        problems: list[str] = []
        for ref in refs:
            ns = ref.get("namespace") or namespace
            if ns != namespace:
                problems.append(f"middleware {ns}/{ref['name']}: cross-namespace (not allowed)")
                continue
            auth, problem = self.auth_of(ns, ref["name"])
            if auth:
                return auth, problems
            if problem:
                problems.append(problem)
        return "", problems


def exposures_of(doc: dict, resolver: Resolver, source: str) -> tuple[list[Exposure], list[str]]:
    kind = doc.get("kind")
    meta = doc.get("metadata", {})
    ns, name = meta.get("namespace"), meta.get("name")
    key = f"{kind} {ns}/{name}"
    spec = doc.get("spec", {}) or {}
    problems: list[str] = []
    if kind == "IngressRoute":
        hosts: list[str] = []
        auths: list[str] = []
        for route in spec.get("routes", []):
            hosts += _hosts(route.get("match", ""))
            auth, why = resolver.first_auth(ns, route.get("middlewares", []))
            auths.append(auth)
            problems += [f"{key}: {p}" for p in why]
        auth = auths[0] if auths and all(auths) else ""
        return [Exposure(key, tuple(dict.fromkeys(hosts)), auth, source)], problems
    if kind == "Ingress":
        hosts = [r.get("host", "*") for r in spec.get("rules", [])] or ["*"]
        refs = []
        for item in (meta.get("annotations") or {}).get(MIDDLEWARE_ANNOTATION, "").split(","):
            item = item.strip()
            if not item:
                continue
            if not item.endswith("@kubernetescrd"):
                problems.append(f"{key}: middleware {item} is not a kubernetescrd one")
                continue
            prefix = f"{ns}-"
            if not item.startswith(prefix):
                problems.append(f"{key}: middleware {item} is in another namespace")
                continue
            refs.append({"name": item[len(prefix) : -len("@kubernetescrd")]})
        auth, why = resolver.first_auth(ns, refs)
        problems += [f"{key}: {p}" for p in why]
        return [Exposure(key, tuple(hosts), auth, source)], problems
    if kind == "HTTPRoute":
        auths = []
        for rule in spec.get("rules", []) or [{}]:
            refs = [
                {"name": f["extensionRef"]["name"]}
                for f in rule.get("filters", [])
                if f.get("type") == "ExtensionRef"
                and f.get("extensionRef", {}).get("kind") == "Middleware"
            ]
            auth, why = resolver.first_auth(ns, refs)
            auths.append(auth)
            problems += [f"{key}: {p}" for p in why]
        auth = auths[0] if auths and all(auths) else ""
        return [Exposure(key, tuple(spec.get("hostnames", ["*"])), auth, source)], problems
    if kind in NO_HTTP_AUTH:
        hosts = []
        for route in spec.get("routes", []):
            hosts += _hosts(route.get("match", ""))
        return [Exposure(key, tuple(hosts or spec.get("hostnames", ["*"])), "", source)], []
    if kind == "Service" and spec.get("type") in ("LoadBalancer", "NodePort"):
        return [Exposure(key, ("*",), "", source)], []
    return [], []


# --- the check -------------------------------------------------------------------------------


def load_public_list(path: Path | None = None) -> dict[str, dict]:
    path = path or PUBLIC_LIST
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries: dict[str, dict] = {}
    for entry in doc.get("exposures", []):
        missing = {"key", "access", "reason"} - set(entry)
        if missing:
            raise ValueError(f"{path.name}: entry {entry} lacks {sorted(missing)}")
        if entry["access"] not in ("public", "app-login"):
            raise ValueError(f"{path.name}: {entry['key']}: access must be public or app-login")
        if len(str(entry["reason"]).split()) < 5:
            raise ValueError(f"{path.name}: {entry['key']}: give a reason (a sentence)")
        entries[entry["key"]] = entry
    return entries


def check_docs(
    docs_by_source: dict[str, list[dict]],
    helm_by_source: dict[str, tuple[dict, list[str]]],
    public: dict[str, dict],
    secrets: set[tuple[str, str]],
) -> Result:
    result = Result()
    everything = [d for docs in docs_by_source.values() for d in docs]
    resolver = Resolver(everything, secrets)
    for source, docs in sorted(docs_by_source.items()):
        for doc in docs:
            result.objects += 1
            found, problems = exposures_of(doc, resolver, source)
            result.exposures += found
            result.errors += problems
    for source, (values, files) in sorted(helm_by_source.items()):
        for where in helm_exposures(values):
            result.exposures.append(
                Exposure(f"helm {source} {where}", ("*",), "", f"{source} ({', '.join(files)})")
            )
    seen: set[str] = set()
    for exp in result.exposures:
        seen.add(exp.key)
        entry = public.get(exp.key)
        if exp.auth and entry:
            result.errors.append(
                f"{exp.key} is authenticated ({exp.auth}) but listed in public-routes.yaml"
            )
        elif not exp.auth and not entry:
            result.errors.append(
                f"{exp.key} (hosts {', '.join(exp.hosts)}; from {exp.source}) has no auth "
                "middleware and is not listed in cluster/public-routes.yaml"
            )
        elif entry and entry.get("host") and entry["host"] not in exp.hosts:
            result.errors.append(f"{exp.key}: listed for host {entry['host']}, serves {exp.hosts}")
        if entry:
            for ref in entry.get("credentials", []):
                ns, _, name = str(ref).partition("/")
                if (ns, name) not in secrets:
                    result.errors.append(
                        f"{exp.key}: credentials {ref} are not made by create-secrets.sh"
                    )
    return result


def value_checks(public: dict[str, dict], charts: dict[str, tuple[dict, list[str]]]) -> list[str]:
    """The `checks` of the listed entries: effective Helm values an app's login depends on."""
    errors = []
    missing = object()
    for key, entry in sorted(public.items()):
        for rule in entry.get("checks", []):
            app, path = rule["values"]
            if app not in charts:
                errors.append(f"{key}: check on {app}, which is not a chart the cluster applies")
                continue
            value: Any = charts[app][0]
            for part in path:
                value = value.get(part, missing) if isinstance(value, dict) else missing
            value = None if value is missing else value
            where = "{} {}".format(app, ".".join(path))
            if "not" in rule and str(value).lower() == str(rule["not"]).lower():
                errors.append(f"{key}: {where} is {value!r}, which the login must not rely on")
            if "equals" in rule and value != rule["equals"]:
                errors.append(f"{key}: {where} is {value!r}, expected {rule['equals']!r}")
    return errors


def check(topology: str, public: dict[str, dict] | None = None) -> Result:
    public = load_public_list() if public is None else public
    manifests, charts, errors = applied(topology)
    result = check_docs(manifests, charts, public, created_secrets())
    result.errors = errors + result.errors
    result.applications = len(manifests) + len(charts)
    result.errors += value_checks(public, charts)
    stale = set(public) - {e.key for e in result.exposures}
    result.errors += [
        f"public-routes.yaml lists {k}, which {topology} does not publish" for k in sorted(stale)
    ]
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", choices=TOPOLOGIES, action="append")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    public = load_public_list()
    failed = False
    for topology in args.topology or TOPOLOGIES:
        start = time.perf_counter()
        result = check(topology, public)
        took = time.perf_counter() - start
        if not args.quiet:
            for exp in sorted(result.exposures, key=lambda e: e.key):
                how = exp.auth or "{} ({})".format(
                    public.get(exp.key, {}).get("access", "NOT LISTED"),
                    "cluster/public-routes.yaml",
                )
                print(f"{topology:11} {exp.key:45} {','.join(exp.hosts):34} {how}")
        for error in result.errors:
            print(f"{topology}: ERROR {error}", file=sys.stderr)
        authed = sum(1 for e in result.exposures if e.auth)
        print(
            f"{topology}: {len(result.exposures)} ways in ({authed} authenticated, "
            f"{len(result.exposures) - authed} listed) in {result.objects} objects of "
            f"{result.applications} applications; {len(result.errors)} problems ({took:.2f}s)"
        )
        failed = failed or bool(result.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
