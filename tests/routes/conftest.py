"""Fixtures of the route tests: the Secrets the real create-secrets.sh makes, read back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import fake_kubectl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run cluster/secrets/create-secrets.sh for real (real openssl, random values) against a
    stand-in kubectl; the directory where its Secrets were applied."""
    tmp = tmp_path_factory.mktemp("create-secrets")
    env = {**os.environ, **fake_kubectl.install(tmp / "bin", tmp / "state")}
    for var in ("DRY_RUN", "ROTATE", "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "GIT_USERNAME"):
        env.pop(var, None)
    done = subprocess.run(
        [str(REPO / "cluster/secrets/create-secrets.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp / "output.txt").write_text(done.stdout)
    return tmp / "state"
