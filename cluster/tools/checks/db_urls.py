"""db-urls - every database URL create-secrets.sh writes names a driver that the lock of each
image reading it (rendered pods, the DAG's task pods) installs."""

from __future__ import annotations

import re
from pathlib import Path

import render
from pod_security import containers

from .common import OUR_REGISTRY, REPO, applied, load_module, lock_versions, pod_spec
from .pod_refs import script_urls

# SQLAlchemy 2.1 made psycopg (3) the default driver of postgresql://; before it, psycopg2.
DRIVERS = {
    "postgresql+psycopg": "psycopg",
    "postgresql+psycopg2": "psycopg2",
    "postgresql+asyncpg": "asyncpg",
    "postgresql+pg8000": "pg8000",
    "mysql+pymysql": "pymysql",
    "sqlite": None,
}


def url_consumers(topo: render.Topology, namespace: str, secret: str, key: str) -> set[str]:
    """Locks (images/<image>/requirements.txt) of the images that read key `key` of a
    Secret: the rendered pods that mount it as env (envFrom, secretKeyRef), and the DAG's
    task pods for the Secret they take env_from (dags/realtor/config.py's env_secret)."""
    out = set()
    for obj in applied(topo):
        spec = pod_spec(obj.doc)
        if spec is None or obj.namespace != namespace:
            continue
        for c in containers(spec):
            reads = any(
                (e.get("secretRef") or {}).get("name") == secret for e in c.get("envFrom") or []
            ) or any(
                ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret
                and e["valueFrom"]["secretKeyRef"].get("key") == key
                for e in c.get("env") or []
            )
            image = str(c.get("image", ""))
            if reads and image.startswith(OUR_REGISTRY):
                name = image.removeprefix(OUR_REGISTRY).split(":")[0]
                out.add(f"images/{name}/requirements.txt")
    if (namespace, secret) == ("pipeline", "pipeline-secrets"):
        specs = load_module("realtor_specs_for_checks", REPO / "dags/realtor/specs.py")
        out |= {f"images/{spec.image}/requirements.txt" for spec in specs.TASKS.values()}
    return out


def driver_for(scheme: str, pins: dict[str, str]) -> str | None:
    if scheme in DRIVERS:
        return DRIVERS[scheme]
    if scheme in ("postgresql", "postgres"):
        version = pins.get("sqlalchemy", "0")
        major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
        return "psycopg" if major_minor >= (2, 1) else "psycopg2"
    return scheme.split("+", 1)[1] if "+" in scheme else None


def check_db_urls(topo: render.Topology, script: Path | None = None) -> list[str]:
    """Every database URL create-secrets.sh writes, against the lock of each image that reads it."""
    script = script or REPO / "cluster/secrets/create-secrets.sh"
    errors = []
    for ns, name, key, scheme in script_urls(script.read_text(encoding="utf-8")):
        if not scheme.startswith(("postgres", "mysql", "sqlite")):
            continue
        consumers = url_consumers(topo, ns, name, key)
        if not consumers:
            errors.append(
                f"{script.name}: secret {ns}/{name} key {key} holds a {scheme}:// URL that no "
                "image of ours reads: drop it, or its reader is missing from the tree"
            )
            continue
        for lock in sorted(consumers):
            path = REPO / lock
            if not path.is_file():
                continue  # the image is not in this tree yet: the waves check names it
            pins = lock_versions(path)
            driver = driver_for(scheme, pins)
            if driver and driver not in pins and f"{driver}-binary" not in pins:
                errors.append(
                    f"{script.name}: {ns}/{name} {key} is a {scheme}:// URL, which SQLAlchemy "
                    f"{pins.get('sqlalchemy', '?')} opens with {driver}, but {lock} does not "
                    f"install {driver}: write the scheme with the driver the lock has "
                    f"(e.g. postgresql+psycopg2:// or postgresql+psycopg://)"
                )
    return errors
