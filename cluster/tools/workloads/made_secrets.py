"""The cluster's Secrets as cluster/secrets/create-secrets.sh makes them: the real script (real
openssl, its own formats and generated values) run against a stand-in kubectl
(tests/support/fake_kubectl.py) that keeps each Secret in a folder, then read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "cluster" / "secrets" / "create-secrets.sh"

Secrets = dict[tuple[str, str], dict[str, str]]  # (namespace, name) -> decoded data


def create_secrets(workdir: Path) -> Secrets:
    """Run create-secrets.sh once into ``workdir``; every Secret it created, decoded."""
    sys.path.insert(0, str(REPO))
    from tests.support import fake_kubectl

    state = workdir / "state"
    env = {**os.environ, **fake_kubectl.install(workdir / "bin", state)}
    for name in ("DRY_RUN", "ROTATE", "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"):
        env.pop(name, None)
    proc = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"create-secrets.sh failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n"
            f"{proc.stderr[-1500:]}"
        )
    out: Secrets = {}
    for path in sorted(state.glob("Secret.*.json")):
        _, namespace, name = path.stem.split(".", 2)
        out[(namespace, name)] = fake_kubectl.secret_values(state, namespace, name)
    return out
