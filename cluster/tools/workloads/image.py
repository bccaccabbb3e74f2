"""What an image would run, read from its Dockerfile with a real parser (dockerfile-parse):
ENTRYPOINT, CMD, WORKDIR, USER, ENV of the stage that is shipped, and the files its COPY
instructions put in it, staged into a folder exactly as they are copied.

Build arguments come from the images workflow (.github/workflows/images.yaml: IMAGE, TASK,
target) as CI passes them. An official base image that we do not build (apache/airflow) brings
its own ENTRYPOINT, WORKDIR, USER and ENV: those are in :data:`BASE_IMAGES`, from its
documentation, since no Docker engine here can inspect it.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]  # relative to the build context (the repository)
    dest: str  # absolute, in the image


@dataclass
class ImageSpec:
    dockerfile: str
    target: str | None
    base: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "0"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)  # `pip install DIR` of a copied DIR
    lock: str | None = None  # the lock `pip install -r` installs into the image's Python
    venvs: dict[str, str] = field(default_factory=dict)  # `python -m venv DIR` -> its lock
    files: dict[str, str] = field(default_factory=dict)  # path -> content, from a base image
    healthcheck: list[str] | None = None  # HEALTHCHECK CMD (what compose runs by default)


# The official apache/airflow image (docs: "Docker Image for Apache Airflow", entrypoint):
# ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"], CMD [], WORKDIR /opt/airflow,
# USER 50000, AIRFLOW_HOME=/opt/airflow. /entrypoint is emulated by process.py.
BASE_IMAGES: dict[str, dict] = {
    "apache/airflow": {
        "entrypoint": ["/usr/bin/dumb-init", "--", "/entrypoint"],
        "cmd": [],
        "workdir": "/opt/airflow",
        "user": "50000",
        "env": {"AIRFLOW_HOME": "/opt/airflow", "AIRFLOW_USER_HOME_DIR": "/home/airflow"},
        # stand-ins for the base image's programs the chart calls, with the documented behaviour
        "files": {
            "/usr/bin/dumb-init": '#!/bin/sh\n[ "$1" = "--" ] && shift\nexec "$@"\n',
            "/entrypoint": (
                "#!/usr/bin/env bash\n"
                "# apache/airflow's /entrypoint: bash and python run as given, a leading\n"
                "# 'airflow' is dropped, anything else is an airflow command\n"
                "if [[ $# -eq 0 ]]; then exec airflow; fi\n"
                'case "$1" in bash|python) exec "$@" ;; airflow) shift ;; esac\n'
                'exec airflow "$@"\n'
            ),
        },
    },
}

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, values: dict[str, str]) -> str:
    """Docker's variable substitution of ${VAR} and $VAR (unset: empty)."""
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        return [str(v) for v in json.loads(value)]
    return ["/bin/sh", "-c", value]


def _base_defaults(base: str) -> dict:
    name = base.split("@")[0].rsplit(":", 1)[0] if ":" in base.split("/")[-1] else base
    return BASE_IMAGES.get(name.removeprefix("docker.io/"), {})


def read_image(
    dockerfile: Path, build_args: dict[str, str] | None = None, target: str | None = None
) -> ImageSpec:
    """The spec of stage ``target`` (default: the last stage) of ``dockerfile``."""
    parser = DockerfileParser(path=str(dockerfile), build_args=dict(build_args or {}))
    stages: dict[str, ImageSpec] = {}
    spec: ImageSpec | None = None
    for line, context in zip(parser.structure, parser.context_structure, strict=True):
        instruction, value = line["instruction"], line["value"]
        values = {**context.args, **context.envs}
        if instruction == "FROM":
            words = value.split()
            base = words[0]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            if base in stages:  # FROM an earlier stage: start from a copy of it
                spec = copy.deepcopy(stages[base])
                spec.target = alias
            else:
                defaults = _base_defaults(base)
                spec = ImageSpec(
                    str(dockerfile),
                    alias,
                    base,
                    list(defaults.get("entrypoint", [])),
                    list(defaults.get("cmd", [])),
                    defaults.get("workdir", "/"),
                    defaults.get("user", "0"),
                    dict(defaults.get("env", {})),
                    files=dict(defaults.get("files", {})),
                )
            if alias:
                stages[alias] = spec
            continue
        if spec is None:
            continue
        if instruction == "ENV":
            spec.env.update({k: substitute(v, values) for k, v in context.line_envs.items()})
        elif instruction == "WORKDIR":
            spec.workdir = str(Path(spec.workdir) / substitute(value, values))
        elif instruction == "USER":
            spec.user = substitute(value, values)
        elif instruction == "ENTRYPOINT":
            spec.entrypoint, spec.cmd = _exec_form(value), []  # ENTRYPOINT resets CMD
        elif instruction == "CMD":
            spec.cmd = _exec_form(value)
        elif instruction == "HEALTHCHECK":
            _, _, command = value.partition("CMD")
            spec.healthcheck = _exec_form(command) if command.strip() else None
        elif instruction == "RUN" and "pip install" in value:
            _read_install(spec, value)
        elif instruction in ("COPY", "ADD"):
            words = [w for w in shlex.split(substitute(value, values)) if not w.startswith("--")]
            if any(w.startswith("--from") for w in shlex.split(value)):
                continue  # from another stage: not from the repository
            dest = words[-1]
            if not dest.startswith("/"):
                dest = str(Path(spec.workdir) / dest) + ("/" if dest.endswith("/") else "")
            spec.copies.append(Copy(tuple(words[:-1]), dest))
    if spec is None:
        raise ValueError(f"{dockerfile}: no FROM instruction")
    if target is not None:
        if target not in stages:
            raise ValueError(f"{dockerfile}: no stage named {target!r} (stages: {sorted(stages)})")
        return stages[target]
    return spec


def _read_install(spec: ImageSpec, value: str) -> None:
    """What a RUN's `pip install` installs: a lock (`-r FILE`, FILE a copied lock), a copied
    folder (`pip install DIR`), into the image's Python or a `python -m venv DIR`."""
    words = value.split()
    folders = {c.dest.rstrip("/") for c in spec.copies if c.dest.endswith("/")}
    sources = {c.dest: c.sources[0] for c in spec.copies if len(c.sources) == 1}
    venv = words[words.index("venv") + 1] if "-m" in words and "venv" in words else None
    for i, word in enumerate(words):
        if word == "-r" and i + 1 < len(words) and words[i + 1] in sources:
            if venv:
                spec.venvs[venv] = sources[words[i + 1]]
            else:
                spec.lock = sources[words[i + 1]]
        elif word.rstrip("/") in folders and word not in spec.installed:
            spec.installed.append(word)


def stage_files(spec: ImageSpec, root: Path) -> list[str]:
    """Copy what the image's COPY instructions copy into ``root`` (the image's / remapped),
    with Docker's rules: a folder's contents go into the destination; several sources or a
    destination ending in / make it a folder. Returns the destinations written."""
    written = []
    for path, content in spec.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o755)
    for item in spec.copies:
        dest = root / item.dest.lstrip("/")
        as_dir = item.dest.endswith("/") or len(item.sources) > 1
        for source in item.sources:
            src = REPO / source
            if not src.exists():
                raise FileNotFoundError(
                    f"{spec.dockerfile}: COPY {source} {item.dest}: {source} does not exist in "
                    "the build context (the repository)"
                )
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True, ignore=_ignore)
            else:
                target = dest / src.name if as_dir else dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
                if src.stat().st_mode & 0o111:
                    target.chmod(0o755)
        written.append(item.dest)
    return written


def _ignore(_folder: str, names: list[str]) -> set[str]:
    """What .dockerignore leaves out of the build context (caches)."""
    return {n for n in names if n in ("__pycache__", ".pytest_cache") or n.endswith(".pyc")}
