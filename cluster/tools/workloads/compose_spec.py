"""docker-compose.yaml read as Compose reads it, pure functions: ${VAR} interpolation from a
.env (${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$), YAML anchors and
merge keys; each service that builds one of our images becomes a container spec with
Kubernetes' shape (compose `entrypoint` -> command, `command` -> args: both replace the
image's, as in Kubernetes), its `environment` as env, its healthcheck as an exec probe, its
published ports' container side as containerPorts, its volumes as mounts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


class ComposeError(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$$"  # kept for the container (compose unescapes $$ to $ itself, below)
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset:
            return interpolate(arg, env)
        if op in (":?", "?") and unset:
            raise ComposeError(f"{name}: {arg or 'required'}")
        return value or ""

    return _VAR.sub(one, text).replace("$$", "$")


def load(path: Path, env: dict[str, str]) -> dict:
    return yaml.safe_load(interpolate(path.read_text(encoding="utf-8"), env))


def _words(value) -> list[str]:
    """A string is split into words as a shell would, without a shell (Compose's rule)."""
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(value)


def _env(environment) -> list[dict]:
    if isinstance(environment, list):
        pairs = [item.split("=", 1) for item in environment]
        return [{"name": k, "value": v} for k, v in pairs]
    return [
        {"name": k, "value": "" if v is None else str(v)} for k, v in (environment or {}).items()
    ]


def _healthcheck(check: dict | None) -> dict | None:
    if not check or check.get("disable"):
        return None
    test = check["test"]
    if isinstance(test, str):
        command = ["/bin/sh", "-c", test]
    elif test[0] == "CMD":
        command = test[1:]
    elif test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", test[1]]
    else:
        return None
    return {"exec": {"command": command}, "timeoutSeconds": 5, "periodSeconds": 1}


def _container_port(entry) -> int:
    if isinstance(entry, dict):
        return int(entry["target"])
    return int(str(entry).split(":")[-1].split("/")[0])


def container(name: str, service: dict) -> tuple[dict, dict, dict[str, str]]:
    """(container, pod, bind mounts target -> source) of one service: Kubernetes' shape, named
    volumes as emptyDirs."""
    c: dict = {"name": name, "env": _env(service.get("environment"))}
    if service.get("entrypoint") is not None:
        c["command"] = _words(service["entrypoint"])
    if service.get("command") is not None:
        c["args"] = _words(service["command"])
    ports = [_container_port(p) for p in service.get("ports") or []]
    c["ports"] = [{"containerPort": p, "name": f"p{p}"} for p in ports]
    check = _healthcheck(service.get("healthcheck"))
    if check:
        c["x-healthcheck"] = check
    volumes, mounts, binds = [], [], {}
    for i, volume in enumerate(service.get("volumes") or []):
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source.startswith((".", "/")):
            binds[target] = source
        else:
            volumes.append({"name": f"v{i}", "emptyDir": {}})
            mounts.append({"name": f"v{i}", "mountPath": target})
    c["volumeMounts"] = mounts
    return c, {"volumes": volumes}, binds
