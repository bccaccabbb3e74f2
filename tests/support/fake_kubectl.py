"""A stand-in for the few kubectl calls cluster/secrets/create-secrets.sh makes, so the real
script (real openssl, real values) can run without a cluster and its Secrets can be read back.

Handled: ``get secret NAME [-o jsonpath={.data.KEY}]`` (exit 1 when absent, like kubectl),
``create namespace|secret generic ... --dry-run=client -o yaml`` (prints the manifest kubectl
would print: data base64-encoded), ``apply -f -`` (stores the manifest), ``label`` (no-op).
Anything else fails loudly. State: one JSON file per object under $FAKE_KUBECTL_STATE.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import yaml


def _state() -> Path:
    return Path(os.environ["FAKE_KUBECTL_STATE"])


def _path(kind: str, namespace: str | None, name: str) -> Path:
    return _state() / f"{kind}.{namespace or '_'}.{name}.json"


def read_object(state: Path, kind: str, namespace: str | None, name: str) -> dict | None:
    path = state / f"{kind}.{namespace or '_'}.{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def secret_values(state: Path, namespace: str, name: str) -> dict[str, str]:
    """The decoded data of a stored Secret (KeyError when absent)."""
    secret = read_object(state, "Secret", namespace, name)
    if secret is None:
        raise KeyError(f"no Secret {namespace}/{name}")
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def _split(argv: list[str]) -> tuple[str | None, list[str]]:
    namespace, rest, i = None, [], 0
    while i < len(argv):
        if argv[i] in ("-n", "--namespace"):
            namespace = argv[i + 1]
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    return namespace, rest


def main(argv: list[str]) -> int:
    namespace, args = _split(argv)
    if args[:2] == ["get", "secret"]:
        obj = read_object(_state(), "Secret", namespace, args[2])
        if obj is None:
            print(f'Error from server (NotFound): secrets "{args[2]}" not found', file=sys.stderr)
            return 1
        for arg in args[3:]:
            match = re.fullmatch(r"jsonpath=\{\.data\.([A-Za-z0-9_.-]+)\}", arg)
            if match:
                sys.stdout.write(obj["data"].get(match.group(1), ""))
        return 0
    if args[:2] == ["create", "namespace"]:
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args[2]}}
        sys.stdout.write(yaml.safe_dump(doc))
        return 0
    if args[:3] == ["create", "secret", "generic"]:
        name, data, kind = args[3], {}, "Opaque"
        for arg in args[4:]:
            if arg.startswith("--from-literal="):
                key, _, value = arg[len("--from-literal=") :].partition("=")
                if key in data:
                    print(
                        f"error: cannot add key {key}, another key by that name exists",
                        file=sys.stderr,
                    )
                    return 1
                data[key] = base64.b64encode(value.encode()).decode()
            elif arg.startswith("--type="):
                kind = arg[len("--type=") :]
            elif arg not in ("--dry-run=client", "-o", "yaml"):
                print(f"fake kubectl: unsupported argument {arg}", file=sys.stderr)
                return 2
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": kind,
            "data": data,
        }
        sys.stdout.write(yaml.safe_dump(doc))
        return 0
    if args[:2] == ["apply", "-f"] and args[2] == "-":
        for doc in yaml.safe_load_all(sys.stdin.read()):
            if doc:
                meta = doc["metadata"]
                path = _path(doc["kind"], meta.get("namespace"), meta["name"])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(doc))
        return 0
    if args[:1] == ["label"]:
        return 0
    print(f"fake kubectl: unsupported call {argv}", file=sys.stderr)
    return 2


def install(bin_dir: Path, state_dir: Path) -> dict[str, str]:
    """Write a ``kubectl`` into ``bin_dir``; the environment that puts it first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    stub = bin_dir / "kubectl"
    stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    stub.chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_KUBECTL_STATE": str(state_dir),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
