"""A small kustomize renderer for the subset cluster/apps uses (no kustomize binary here).

Supported kustomization fields: resources (files and directories), patches (inline JSON
6902 lists or strategic-merge maps, selected by kind/name), images (newName/newTag on
pod templates), namespace, configMapGenerator (files, envs, literals, namespace,
options.disableNameSuffixHash/labels/annotations). Any other field is an error, so a
kustomization that would need real kustomize fails loudly instead of rendering wrong.
Like Argo CD with --load-restrictor LoadRestrictionsNone, files may sit outside the root.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "patches",
    "images",
    "namespace",
    "configMapGenerator",
}
CLUSTER_SCOPED = {
    "Namespace",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
}


class RenderError(Exception):
    pass


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _json_pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def apply_json6902(doc: dict, ops: list[dict]) -> None:
    for op in ops:
        parts = _json_pointer(op["path"])
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, op["value"])
            elif kind == "replace":
                parent[index] = op["value"]
            elif kind == "remove":
                del parent[index]
            else:
                raise RenderError(f"unsupported JSON patch op {kind}")
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise RenderError("replace of missing path {}".format(op["path"]))
                parent[last] = op["value"]
            elif kind == "remove":
                del parent[last]
            else:
                raise RenderError(f"unsupported JSON patch op {kind}")


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, simplified: maps merge recursively, lists and scalars replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base.get(key), value) if key in base else value
        return out
    return copy.deepcopy(patch)


def _matches(doc: dict, target: dict) -> bool:
    if "kind" in target and doc.get("kind") != target["kind"]:
        return False
    if "name" in target and doc.get("metadata", {}).get("name") != target["name"]:
        return False
    return (
        "namespace" not in target or doc.get("metadata", {}).get("namespace") == target["namespace"]
    )


def _pod_specs(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    if doc.get("kind") == "Pod":
        return [spec]
    template = spec.get("template", {}).get("spec")
    return [template] if template else []


def apply_images(docs: list[dict], images: list[dict]) -> None:
    for doc in docs:
        for pod in _pod_specs(doc):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                ref = container["image"]
                name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
                for image in images:
                    if image["name"] == name:
                        container["image"] = "{}:{}".format(
                            image.get("newName", name),
                            image.get("newTag", tag),
                        )


def _config_map(gen: dict, root: Path) -> dict:
    data: dict[str, str] = {}
    for entry in gen.get("files", []):
        key, _, rel = entry.rpartition("=") if "=" in entry else ("", "", entry)
        path = (root / rel).resolve()
        data[key or path.name] = path.read_text(encoding="utf-8")
    for rel in gen.get("envs", []):
        for line in (root / rel).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                data[k] = v
    for literal in gen.get("literals", []):
        k, _, v = literal.partition("=")
        data[k] = v
    options = gen.get("options", {})
    if not options.get("disableNameSuffixHash"):
        raise RenderError(
            "configMapGenerator {}: set options.disableNameSuffixHash "
            "(hash suffixes are not reproduced here)".format(gen["name"])
        )
    meta: dict[str, Any] = {"name": gen["name"]}
    if gen.get("namespace"):
        meta["namespace"] = gen["namespace"]
    if options.get("labels"):
        meta["labels"] = dict(options["labels"])
    if options.get("annotations"):
        meta["annotations"] = dict(options["annotations"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def render(directory: Path) -> list[dict]:
    """Render the kustomization in `directory` to a list of manifests."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise RenderError(f"{directory} has no kustomization.yaml")
    docs = load_yaml_docs(kfile)
    if len(docs) != 1:
        raise RenderError(f"{kfile}: expected one document")
    kust = docs[0]
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise RenderError(f"{kfile}: unsupported fields {sorted(unknown)}")
    out: list[dict] = []
    for res in kust.get("resources", []):
        path = (directory / res).resolve()
        out += render(path) if path.is_dir() else load_yaml_docs(path)
    for gen in kust.get("configMapGenerator", []):
        out.append(_config_map(gen, directory))
    for patch in kust.get("patches", []):
        body = (
            yaml.safe_load(patch["patch"])
            if "patch" in patch
            else load_yaml_docs(directory / patch["path"])[0]
        )
        target = patch.get("target")
        if target is None:
            if not isinstance(body, dict):
                raise RenderError(f"{kfile}: a JSON 6902 patch needs a target")
            target = {"kind": body["kind"], "name": body["metadata"]["name"]}
        hits = [d for d in out if _matches(d, target)]
        if not hits:
            raise RenderError(f"{kfile}: patch target {target} matches nothing")
        for i, doc in enumerate(out):
            if doc in hits:
                if isinstance(body, list):
                    apply_json6902(doc, body)
                else:
                    out[i] = merge(doc, body)
    if kust.get("images"):
        apply_images(out, kust["images"])
    if kust.get("namespace"):
        for doc in out:
            if doc.get("kind") not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = kust["namespace"]
    return out


def main(argv: list[str]) -> int:
    for arg in argv or ["."]:
        sys.stdout.write(yaml.safe_dump_all(render(Path(arg)), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
