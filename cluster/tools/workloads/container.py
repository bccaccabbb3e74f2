"""One container made runnable here: the image's files staged, the manifest's volumes mounted
as files, its environment and command line resolved (environment.py), service names and its
own ports mapped (network.py), every absolute path the container uses moved into a folder of
its own, and the program found in the image's venv.

Paths: the container's filesystem is ROOT = <run dir>/<workload>/fs. Every absolute path under
a folder the container owns (/tmp, its WORKDIR, each COPY destination and mountPath, a base
image's programs) is rewritten to ROOT/<path> wherever the container names it: its command
line, env values and the contents of mounted files. The image's own Python is the venv of its
lock (venvs.py); `pip install /app` becomes PYTHONPATH=ROOT/app. The process runs as this
machine's user, not the image's USER, on a writable ROOT (readOnlyRootFilesystem is not
enforced here).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from workloads import environment, network
from workloads.image import ImageSpec, stage_files
from workloads.venvs import venv_for

REPO = Path(__file__).resolve().parents[3]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Workload:
    """One container of one of our images, as a manifest or the compose file declares it."""

    name: str  # what the output calls it
    source: str  # "cluster", "dag" or "compose"
    namespace: str
    image: str  # our image's name (mlflow, airflow, fetch, ...)
    kind: str  # Deployment, StatefulSet, Job, CronJob, Pod, compose service
    container: dict
    pod: dict = field(default_factory=dict)  # the pod spec (volumes, sibling containers)
    spec: ImageSpec | None = None
    labels: dict = field(default_factory=dict)  # the pod's labels (Services select on them)
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> local port
    links: dict[str, Path] = field(default_factory=dict)  # path in the container -> real path


@dataclass
class Prepared:
    workload: Workload
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    root: Path
    ports: dict[int, int]  # containerPort -> local port
    named_ports: dict[str, int]  # port name -> containerPort


def _roots(workload: Workload) -> list[str]:
    spec = workload.spec
    assert spec is not None
    roots = {"/tmp", spec.workdir}  # noqa: S108 - the container's /tmp, moved into ROOT
    roots |= {c.dest.rstrip("/") for c in spec.copies}
    roots |= set(spec.files) | set(spec.venvs) | set(workload.links)
    roots |= {m["mountPath"].rstrip("/") for m in workload.container.get("volumeMounts") or []}
    for root in list(roots):  # a folder that holds one of them, e.g. /opt/realtor for tasks/
        parents = [str(p) for p in Path(root).parents if len(p.parts) > 2]
        roots |= {p for p in parents if not p.startswith("/usr")}
    return sorted((r for r in roots if r not in ("", "/")), key=len, reverse=True)


def remapper(root: Path, roots: list[str]):
    """A function that moves every path under ``roots`` into ``root`` in a text."""
    if not roots:
        return lambda text: text
    pattern = re.compile(
        r"(?<![\w.:/@-])(" + "|".join(re.escape(r) for r in roots) + r")(?=$|[/\s\"',;:=)\]])"
    )
    return lambda text: pattern.sub(lambda m: str(root) + m.group(1), text)


def _mount(workload: Workload, root: Path, sources: environment.Sources, fix) -> None:
    volumes = {v["name"]: v for v in workload.pod.get("volumes") or []}
    for mount in workload.container.get("volumeMounts") or []:
        target = root / mount["mountPath"].lstrip("/")
        volume = volumes.get(mount["name"], {"emptyDir": {}})
        if "configMap" in volume or "secret" in volume:
            kind = "ConfigMap" if "configMap" in volume else "Secret"
            ref = volume.get("configMap") or volume.get("secret") or {}
            name = ref.get("name") or ref.get("secretName")
            data = sources._get(kind, name, None, ref.get("optional", False)) or {}
            items = {i["key"]: i["path"] for i in ref.get("items") or []} or {k: k for k in data}
            files = {path: data[key] for key, path in items.items() if key in data}
            if "subPath" in mount:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(fix(files[mount["subPath"]]))
            else:
                target.mkdir(parents=True, exist_ok=True)
                for path, content in files.items():
                    (target / path).parent.mkdir(parents=True, exist_ok=True)
                    (target / path).write_text(fix(content))
        else:  # emptyDir, and what git-sync fills (below)
            target.mkdir(parents=True, exist_ok=True)
            _git_sync(workload, mount["name"], target)


def _git_sync(workload: Workload, volume: str, target: Path) -> None:
    """A volume that a git-sync container of the pod fills: its link names this repository's
    checkout (the commit under test stands in for the branch git-sync would pull)."""
    for sibling in (workload.pod.get("containers") or []) + (
        workload.pod.get("initContainers") or []
    ):
        if "git-sync" not in sibling.get("image", ""):
            continue
        if not any(m["name"] == volume for m in sibling.get("volumeMounts") or []):
            continue
        env = {e["name"]: e.get("value", "") for e in sibling.get("env") or []}
        link = env.get("GITSYNC_LINK") or env.get("GIT_SYNC_DEST") or "repo"
        if not (target / link).exists():
            (target / link).symlink_to(REPO, target_is_directory=True)
        return


def _program(word: str, paths: list[Path]) -> str:
    if word.startswith("/"):
        return word
    for folder in paths:
        if (folder / word).is_file():
            return str(folder / word)
    found = shutil.which(word, path=SYSTEM_PATH)
    if not found:
        raise FileNotFoundError(f"{word}: not in the image's venv nor on this machine's PATH")
    return found


def prepare(
    workload: Workload,
    run_dir: Path,
    sources: environment.Sources,
    net: network.Network,
    extra_env: dict[str, str] | None = None,
) -> Prepared:
    spec = workload.spec
    if spec is None or spec.lock is None:
        raise ValueError(f"{workload.name}: the image's Dockerfile installs no lock")
    root = run_dir / re.sub(r"[^\w.-]+", "_", workload.name) / "fs"
    shutil.rmtree(root.parent, ignore_errors=True)
    root.mkdir(parents=True)
    stage_files(spec, root)
    for folder, lock in spec.venvs.items():
        (root / folder.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / folder.lstrip("/")).symlink_to(venv_for(REPO / lock), target_is_directory=True)
    fix_paths = remapper(root, _roots(workload))

    def fix(text: str) -> str:
        return net.rewrite(fix_paths(text), workload.namespace)

    _mount(workload, root, sources, fix)
    for path, real in workload.links.items():
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(real, target_is_directory=real.is_dir())
    env = environment.container_env(workload.container, spec.env, sources)
    env.update(extra_env or {})
    defined = environment.manifest_env(workload.container, env, spec.env)
    words = environment.argv(workload.container, spec.entrypoint, spec.cmd, defined)
    declared = workload.container.get("ports") or []
    ports = workload.ports or {int(p["containerPort"]): network.free_port() for p in declared}
    named = {p["name"]: int(p["containerPort"]) for p in declared if p.get("name")}
    network.move_ports(words, env, ports)
    words = [fix(w) for w in words]
    env = {k: fix(v) for k, v in env.items()}
    venv = venv_for(REPO / spec.lock)
    bins = [venv / "bin", root / "usr/local/bin"]
    words[0] = _program(words[0], bins)
    env["PATH"] = os.pathsep.join([*(str(b) for b in bins), SYSTEM_PATH])
    env.setdefault("LANG", "C.UTF-8")
    if spec.installed:
        env["PYTHONPATH"] = os.pathsep.join(fix_paths(d.rstrip("/")) for d in spec.installed)
    cwd = Path(fix_paths(spec.workdir))
    cwd.mkdir(parents=True, exist_ok=True)
    return Prepared(workload, words, env, cwd, root, ports, named)


def remap_command(prepared: Prepared, command: list[str]) -> list[str]:
    """A probe's or healthcheck's command, with the container's paths, names and ports."""
    fix_paths = remapper(prepared.root, _roots(prepared.workload))
    words = [fix_paths(prepared_net_rewrite(prepared, str(w))) for w in command]
    network.move_ports(words, {}, prepared.ports)
    bins = [Path(p) for p in prepared.env["PATH"].split(os.pathsep)[:2]]
    words[0] = _program(words[0], bins)
    return words


def prepared_net_rewrite(prepared: Prepared, text: str) -> str:
    for port, local in prepared.ports.items():
        text = re.sub(rf"(127\.0\.0\.1|localhost):{port}\b", f"127.0.0.1:{local}", text)
    return text
