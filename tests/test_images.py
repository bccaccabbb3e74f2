"""Images and compose, checked statically (no Docker engine here): lint, pins, locks, schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted(REPO.glob("images/**/Dockerfile")) + sorted(REPO.glob("images/*.Dockerfile"))
LOCKS = sorted(REPO.glob("images/*/requirements*.txt")) + sorted(REPO.glob("requirements/*.txt"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfiles_pass_hadolint(dockerfile: Path):
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_images_are_pinned_and_run_as_non_root(dockerfile: Path):
    text = dockerfile.read_text()
    for base in re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE):
        assert ":" in base or base in re.findall(r"AS\s+(\S+)", text), f"unpinned base {base}"
        assert not base.endswith(":latest")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "no USER: the image would run as root"
    assert users[-1] not in ("0", "root")


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_lock_pins_exact_versions(lock: Path):
    requirements = [
        line.split("#")[0].strip()
        for line in lock.read_text().splitlines()
        if line.strip() and not line.startswith(("#", " ", "-"))
    ]
    if lock.name == "constraints.txt":
        return
    assert requirements, f"{lock} is empty"
    loose = [r for r in requirements if "==" not in r]
    assert loose == [], f"unpinned in {lock}: {loose}"


def test_every_image_folder_has_its_lock():
    for folder in sorted(p for p in (REPO / "images").iterdir() if p.is_dir()):
        assert (folder / "requirements.in").is_file(), folder
        assert (folder / "requirements.txt").is_file(), folder


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification():
    sys.path.insert(0, str(REPO / "cluster" / "tools"))
    import vendor  # the vendored schemas: $SHARED_DIR, .cache/vendor (make vendor) or ../shared

    try:
        schema_path = vendor.schemas_dir() / "compose-spec.json"
    except vendor.VendorMissing as missing:
        pytest.fail(str(missing))
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(compose(), schema)


def test_compose_pins_images_and_keeps_secrets_out():
    services = compose()["services"]
    for name, service in services.items():
        if "image" in service:
            assert ":" in service["image"], name
            assert not service["image"].endswith(":latest"), name
        else:
            assert (REPO / service["build"]["dockerfile"]).is_file(), name
    text = (REPO / "docker-compose.yaml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text  # required from .env, no default password
    assert "${AWS_SECRET_ACCESS_KEY:?" in text
