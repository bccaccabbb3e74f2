"""Schema checks for everything under cluster/ and helm-values/, offline.

* every Kubernetes manifest file and every rendered overlay (cluster/apps/*/overlays/*):
  built-in kinds against the Kubernetes schemas of the pinned K3s minor
  (kubernetes-validate, strict: unknown fields fail), custom resources against the CRD
  JSON schemas in ${SHARED_DIR:-<repo>/../shared}/schemas/crds; a kind with no schema fails;
* every helm-values file against the chart's values.schema.json where the chart ships one.

Usage: python cluster/tools/validate_manifests.py [--quiet]   (exit 1 on any error)
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
HELM_VALUES = REPO / "helm-values"
TOPOLOGIES = ("single-node", "two-node", "three-node")

# Charts whose values schema ships in shared/schemas/helm: helm-values dir -> file.
HELM_SCHEMAS = {
    "airflow": "airflow-1.19.0.values.schema.json",
    "traefik": "traefik-41.3.0.values.schema.json",
}
NOT_MANIFESTS = {"kustomization.yaml", "public-routes.yaml"}  # the latter: route_auth.py


def schemas_dir() -> Path:
    shared = os.environ.get("SHARED_DIR") or str(REPO.parent / "shared")
    return Path(shared) / "schemas"


def k8s_version() -> str:
    text = (CLUSTER / "bootstrap" / "versions.env").read_text(encoding="utf-8")
    match = re.search(r'^KUBERNETES_SCHEMA_VERSION="([0-9.]+)"', text, re.M)
    if not match:
        raise SystemExit("KUBERNETES_SCHEMA_VERSION missing from versions.env")
    return match.group(1)


@dataclass
class Report:
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


_crd_cache: dict[Path, Any] = {}


def crd_schema(api_version: str, kind: str) -> Any | None:
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    if "." not in group or group.endswith(".k8s.io"):
        return None
    path = schemas_dir() / "crds" / group / (f"{kind.lower()}_{version}.json")
    if not path.is_file():
        raise LookupError(f"no CRD schema {path} for {api_version} {kind}")
    if path not in _crd_cache:
        _crd_cache[path] = json.loads(path.read_text(encoding="utf-8"))
    return _crd_cache[path]


def validate_doc(doc: dict, version: str) -> list[str]:
    """Errors of one manifest (empty list when valid)."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return ["not a Kubernetes object (apiVersion/kind missing)"]
    if not doc.get("metadata", {}).get("name"):
        return ["metadata.name missing"]
    try:
        schema = crd_schema(doc["apiVersion"], doc["kind"])
    except LookupError as exc:
        return [str(exc)]
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [
            "{}: {}".format("/".join(map(str, e.absolute_path)) or "<root>", e.message)
            for e in validator.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return ["{}: {}".format("/".join(map(str, exc.absolute_path)) or "<root>", exc.message)]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def _check(report: Report, where: str, docs: list[dict], version: str) -> None:
    for doc in docs:
        report.checked += 1
        key = "{} {}".format(doc.get("apiVersion"), doc.get("kind"))
        report.kinds[key] = report.kinds.get(key, 0) + 1
        name = doc.get("metadata", {}).get("name", "?") if isinstance(doc, dict) else "?"
        for err in validate_doc(doc, version):
            report.errors.append("{}: {}/{}: {}".format(where, doc.get("kind"), name, err))


def manifest_files() -> list[Path]:
    """Every YAML file under cluster/ that holds Kubernetes objects."""
    files = []
    for path in sorted(CLUSTER.rglob("*.yaml")):
        if path.name in NOT_MANIFESTS or path.name.startswith("."):
            continue
        files.append(path)
    return files


def overlay_dirs() -> list[Path]:
    return sorted(p for p in CLUSTER.glob("apps/*/overlays/*") if p.is_dir())


def validate_manifests(version: str | None = None) -> tuple[Report, Report]:
    version = version or k8s_version()
    files, rendered = Report(), Report()
    for path in manifest_files():
        _check(files, str(path.relative_to(REPO)), render.load_yaml_docs(path), version)
    for directory in overlay_dirs():
        try:
            docs = render.render(directory)
        except (render.RenderError, OSError, KeyError, yaml.YAMLError) as exc:
            rendered.errors.append(f"{directory.relative_to(REPO)}: render failed: {exc}")
            continue
        _check(rendered, str(directory.relative_to(REPO)), docs, version)
    return files, rendered


def validate_helm_values() -> Report:
    report = Report()
    for chart_dir in sorted(p for p in HELM_VALUES.iterdir() if p.is_dir()):
        for values in sorted(chart_dir.glob("*.yaml")):
            data = yaml.safe_load(values.read_text(encoding="utf-8")) or {}
            report.checked += 1
            if not isinstance(data, dict):
                report.errors.append(f"{values.relative_to(REPO)}: not a mapping")
                continue
            schema_name = HELM_SCHEMAS.get(chart_dir.name)
            if not schema_name:
                continue
            schema = json.loads((schemas_dir() / "helm" / schema_name).read_text("utf-8"))
            cls = jsonschema.validators.validator_for(schema)
            for err in cls(schema).iter_errors(data):
                report.errors.append(
                    "{}: {}: {}".format(
                        values.relative_to(REPO), "/".join(map(str, err.absolute_path)), err.message
                    )
                )
    return report


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    if not schemas_dir().is_dir():
        print(f"schemas not found at {schemas_dir()} (set SHARED_DIR)", file=sys.stderr)
        return 1
    version = k8s_version()
    files, rendered = validate_manifests(version)
    helm = validate_helm_values()
    errors = files.errors + rendered.errors + helm.errors
    for err in errors:
        print("INVALID " + err, file=sys.stderr)
    if not quiet:
        kinds = {}
        for rep in (files, rendered):
            for k, n in rep.kinds.items():
                kinds[k] = kinds.get(k, 0) + n
        for k in sorted(kinds):
            print(f"  {kinds[k]:4d}  {k}")
    print(f"schemas: Kubernetes {version} (strict) + CRDs from {schemas_dir()}")
    n_schema = sum(1 for p in HELM_VALUES.glob("*/*.yaml") if p.parent.name in HELM_SCHEMAS)
    print(
        f"manifest files: {files.checked} objects; rendered overlays: {rendered.checked} "
        f"objects in {len(overlay_dirs())} overlays; helm values files: {helm.checked} "
        f"({n_schema} with a chart schema); errors: {len(errors)}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
