"""One virtualenv per lock file, built by uv, cached under .cache/workload-venvs keyed by the
lock's hash: identical locks share one venv, and a changed lock gets a new one.

What an image's `pip install --no-deps -r requirements.txt` installs, nothing more: the venv
holds exactly the lock (uv pip sync), byte-compiled once (the images set
PYTHONDONTWRITEBYTECODE, so nothing would write .pyc files at run time).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CACHE = REPO / ".cache" / "workload-venvs"
PYTHON_VERSION = "3.11"


class VenvError(RuntimeError):
    pass


def uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise VenvError("uv not found: run `make setup` (it installs uv into .tools/)")
    return found


def lock_key(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16]


def venv_for(lock: Path) -> Path:
    """The venv of ``lock`` (built on first use; concurrent callers wait for one build)."""
    lock = lock.resolve()
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / lock_key(lock)
    done = target / ".synced"
    if done.is_file():
        return target
    with (CACHE / f"{target.name}.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if done.is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        env = {**os.environ, "VIRTUAL_ENV": str(target)}
        for command in (
            [uv(), "venv", "--quiet", "--python", PYTHON_VERSION, str(target)],
            [uv(), "pip", "sync", "--quiet", "--compile-bytecode", str(lock)],
        ):
            proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise VenvError(
                    f"{' '.join(command)} failed for {lock.relative_to(REPO)}:\n"
                    f"{proc.stderr.strip()[-2000:]}\nFix the lock (make lock) or uv's access to PyPI."
                )
        (target / "lock.txt").write_text(str(lock.relative_to(REPO)) + "\n")
        done.touch()
    return target
