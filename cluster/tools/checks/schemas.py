"""schemas - strict schema of every object, and none too large for a client-side apply.

Built-in kinds against the Kubernetes schemas of the pinned K3s minor (kubernetes-validate,
unknown fields fail); custom resources against the CRDs the charts render (else
../shared/schemas/crds), made strict (unknown fields fail unless the CRD preserves unknown
fields); no schema = error."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import render
import vendor

from .common import k8s_version


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
