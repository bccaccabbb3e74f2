"""A container's environment and command line as Kubernetes builds them, pure functions:

* the image's ENV, then `envFrom` (ConfigMaps and Secrets, in order, with their prefix), then
  `env` (value with $(VAR) expansion, or valueFrom secretKeyRef / configMapKeyRef), later
  entries winning; $(VAR) refers only to variables the manifest defined before it.
* `command` replaces the image's ENTRYPOINT and `args` its CMD; a `command` without `args`
  drops CMD. $(VAR) is expanded in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Store = dict[tuple[str, str], dict[str, str]]  # (namespace, name) -> data

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(ValueError):
    pass


def expand(text: str, defined: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names replaced, unknown kept, $$ escapes."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return defined.get(match.group(1), match.group(0))

    return _REF.sub(one, text)


@dataclass(frozen=True)
class Sources:
    namespace: str
    config_maps: Store
    secrets: Store

    def _get(self, kind: str, name: str, key: str | None, optional: bool) -> dict | str | None:
        store = self.secrets if kind == "Secret" else self.config_maps
        data = store.get((self.namespace, name))
        if data is None or (key is not None and key not in data):
            if optional:
                return None
            what = f"{kind} {self.namespace}/{name}" + (f" key {key}" if key else "")
            raise EnvError(
                f"{what} does not exist: the pod would not start (CreateContainerConfigError)"
            )
        return data if key is None else data[key]


def container_env(container: dict, image_env: dict[str, str], sources: Sources) -> dict[str, str]:
    """The environment the process sees (image ENV overlaid by the manifest's)."""
    defined: dict[str, str] = {}
    for item in container.get("envFrom") or []:
        prefix = item.get("prefix", "")
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in item:
                data = sources._get(kind, item[ref]["name"], None, item[ref].get("optional", False))
                defined.update({prefix + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" in item:
            source = item["valueFrom"]
            for kind, ref in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if ref in source:
                    spec = source[ref]
                    value = sources._get(
                        kind, spec["name"], spec["key"], spec.get("optional", False)
                    )
                    if value is not None:
                        defined[name] = str(value)
                    break
            else:
                raise EnvError(f"env {name}: valueFrom {sorted(source)} is not supported here")
        else:
            defined[name] = expand(str(item.get("value", "")), defined)
    return {**image_env, **defined}


def manifest_env(container: dict, env: dict[str, str], image_env: dict[str, str]) -> dict[str, str]:
    """The variables the manifest defined (what $(VAR) may refer to)."""
    return {k: v for k, v in env.items() if k not in image_env or image_env[k] != v}


def argv(
    container: dict, entrypoint: list[str], cmd: list[str], defined: dict[str, str]
) -> list[str]:
    """command+args over ENTRYPOINT+CMD, with Kubernetes' semantics and $(VAR) expansion."""
    command = container.get("command")
    args = container.get("args")
    if command:
        head, tail = list(command), list(args or [])
    else:
        head, tail = list(entrypoint), list(args) if args is not None else list(cmd)
    out = [expand(str(a), defined) for a in head + tail]
    if not out:
        raise EnvError("no command: the image has no ENTRYPOINT/CMD and the manifest none")
    return out
