"""The pinned upstream charts and schemas the cluster checks read, and `make vendor`.

Where they come from, in this order:
  1. $SHARED_DIR when set (a folder with charts/ and schemas/);
  2. .cache/vendor/ in the repository (git-ignored; written by `make vendor`);
  3. ../shared beside the repository (this team's machines and CI).
Without any of them the checks stop with one line saying to run `make vendor`.

`make vendor` (python cluster/tools/vendor.py download) fetches every chart the root
Applications pin (their repoURL, chart and targetRevision, through the repository's
index.yaml, as Argo CD does) and the schema files named in SCHEMA_SOURCES (the upstream
commits that ../shared/schemas/README.md records), then derives schemas/crds/ from
schemas/crds-raw/ the way that README describes (one JSON file per served version).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "vendor"
MISSING = (
    "the pinned Helm charts and schemas are missing (no $SHARED_DIR, .cache/vendor or "
    "../shared): run `make vendor` to download them"
)


class VendorMissing(SystemExit):
    """Raised (and printed as one line) when no vendored charts and schemas exist."""


#: written last by `make vendor`: a download cut short leaves no usable cache behind
COMPLETE = ".complete"


def _complete(folder: Path) -> bool:
    if folder == CACHE and not (folder / COMPLETE).is_file():
        return False
    return (folder / "charts").is_dir() and (folder / "schemas" / "crds").is_dir()


def root() -> Path:
    """The folder holding charts/ and schemas/, or VendorMissing."""
    explicit = os.environ.get("SHARED_DIR")
    candidates = [Path(explicit)] if explicit else [CACHE, REPO.parent / "shared"]
    for folder in candidates:
        if _complete(folder):
            return folder
    raise VendorMissing(MISSING)


def charts_dir() -> Path:
    return root() / "charts"


def schemas_dir() -> Path:
    return root() / "schemas"


# --- make vendor ---------------------------------------------------------------------------
RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
ARGO = ("argoproj/argo-cd", "109ca7ca71139e514114499d294a492e7910a965", "manifests/crds")
IMAGE_UPDATER = (
    "argoproj-labs/argocd-image-updater",
    "098b544f1c7d6d1368e89c3f8d92415ede353916",
    "config/crd/bases",
)
CNPG = (
    "cloudnative-pg/cloudnative-pg",
    "4b5e244a7d031f67e025c83c1555e7726ecbbfa1",
    "config/crd/bases",
)
BARMAN = (
    "cloudnative-pg/plugin-barman-cloud",
    "1e13020fe5f09fd8fc29ea03828f7b61375b3721",
    "config/crd/bases",
)
METALLB = ("metallb/metallb", "791dfcc63ced7a6b3e869131eae75e645150fff0", "config/crd/bases")
PROM = (
    "prometheus-operator/prometheus-operator",
    "f8fafd475f3d132e239432ae6172de60a6cb6516",
    "example/prometheus-operator-crd",
)
TRAEFIK = ("traefik/traefik-helm-chart", "a8a66d0098703627b2cf352c66b1725c196a734a", "traefik/crds")
COMPOSE = ("compose-spec/compose-spec", "170098ba07d9f53c383a41bfd4c5166b0a4529a6", "schema")


def _raw(src: tuple[str, str, str], name: str) -> str:
    repo, commit, folder = src
    return RAW.format(repo=repo, commit=commit, path=f"{folder}/{name}")


# (destination under schemas/, upstream URL): the files ../shared/schemas/README.md names.
SCHEMA_SOURCES: list[tuple[str, str]] = (
    [
        (f"crds-raw/argo-cd/{n}-crd.yaml", _raw(ARGO, f"{n}-crd.yaml"))
        for n in ("application", "applicationset", "appproject")
    ]
    + [
        (
            "crds-raw/argocd-image-updater/argocd-image-updater.argoproj.io_imageupdaters.yaml",
            _raw(IMAGE_UPDATER, "argocd-image-updater.argoproj.io_imageupdaters.yaml"),
        )
    ]
    + [
        (
            f"crds-raw/cloudnative-pg/postgresql.cnpg.io_{n}.yaml",
            _raw(CNPG, f"postgresql.cnpg.io_{n}.yaml"),
        )
        for n in ("backups", "clusters", "scheduledbackups")
    ]
    + [
        (
            "crds-raw/plugin-barman-cloud/barmancloud.cnpg.io_objectstores.yaml",
            _raw(BARMAN, "barmancloud.cnpg.io_objectstores.yaml"),
        )
    ]
    + [
        (f"crds-raw/metallb/metallb.io_{n}.yaml", _raw(METALLB, f"metallb.io_{n}.yaml"))
        for n in (
            "bfdprofiles",
            "bgpadvertisements",
            "bgppeers",
            "communities",
            "configurationstates",
            "ipaddresspools",
            "l2advertisements",
            "servicebgpstatuses",
            "servicel2statuses",
        )
    ]
    + [
        (
            f"crds-raw/prometheus-operator/monitoring.coreos.com_{n}.yaml",
            _raw(PROM, f"monitoring.coreos.com_{n}.yaml"),
        )
        for n in ("prometheusrules", "servicemonitors")
    ]
    + [
        (f"crds-raw/traefik/traefik.io_{n}.yaml", _raw(TRAEFIK, f"traefik.io_{n}.yaml"))
        for n in (
            "ingressroutes",
            "ingressroutetcps",
            "ingressrouteudps",
            "middlewares",
            "middlewaretcps",
            "serverstransports",
            "serverstransporttcps",
            "tlsoptions",
            "tlsstores",
            "traefikservices",
        )
    ]
    + [("compose-spec.json", _raw(COMPOSE, "compose-spec.json"))]
)
# Longhorn's RecurringJob and BackupTarget CRDs ship with the longhorn chart
# (templates/crds.yaml), which `make vendor` downloads: the checks read them from there.


def pinned_charts() -> list[tuple[str, str, str]]:
    """(repoURL, chart, version) of every Helm source of the root Applications."""
    out = []
    for path in sorted((REPO / "cluster/apps/root/base").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "Application":
                continue
            spec = doc["spec"]
            for src in spec.get("sources") or [spec.get("source") or {}]:
                if src.get("chart"):
                    out.append((src["repoURL"], src["chart"], str(src["targetRevision"])))
    return sorted(set(out))


def _get(url: str) -> bytes:
    if not url.startswith("https://"):
        raise ValueError(f"refusing a non-https URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "realtor-mlops make vendor"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (https only)
        return response.read()


def chart_url(repo_url: str, chart: str, version: str, index: dict) -> str:
    """The download URL of chart@version in a Helm repository index (relative URLs resolved)."""
    for entry in index.get("entries", {}).get(chart, []):
        if str(entry.get("version")) == version:
            url = entry["urls"][0]
            return urllib.parse.urljoin(repo_url.rstrip("/") + "/", url)
    raise LookupError(f"chart {chart} {version} is not in {repo_url}/index.yaml")


def unpack_chart(data: bytes, dest: Path) -> None:
    """Unpack a chart .tgz (top folder = chart name) into dest, refusing unsafe paths."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts[1:]
            if not parts or ".." in parts or member.name.startswith("/"):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            target = dest.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = archive.extractfile(member)
            assert handle is not None
            target.write_bytes(handle.read())


def crd_json_files(raw_yaml: str) -> dict[str, dict]:
    """schemas/crds/ files of one CRD YAML: {group/kind_version.json: openAPIV3Schema}."""
    out = {}
    for doc in yaml.safe_load_all(raw_yaml):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if version.get("served") and schema:
                name = f"{spec['group']}/{spec['names']['kind'].lower()}_{version['name']}.json"
                out[name] = schema
    return out


def download(dest: Path = CACHE, fetch=_get) -> list[str]:
    """Fill dest with charts/ and schemas/; return what was written (one line each)."""
    written = []
    indexes: dict[str, dict] = {}
    for repo_url, chart, version in pinned_charts():
        folder = dest / "charts" / f"{chart}-{version}"
        if (folder / "Chart.yaml").is_file():
            continue
        if repo_url not in indexes:
            indexes[repo_url] = yaml.safe_load(fetch(repo_url.rstrip("/") + "/index.yaml"))
        unpack_chart(fetch(chart_url(repo_url, chart, version, indexes[repo_url])), folder)
        written.append(f"charts/{chart}-{version}")
    schemas = dest / "schemas"
    for rel, url in SCHEMA_SOURCES:
        target = schemas / rel
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(fetch(url))
            written.append(f"schemas/{rel}")
    for raw in sorted((schemas / "crds-raw").rglob("*.yaml")):
        for name, schema in crd_json_files(raw.read_text(encoding="utf-8")).items():
            target = schemas / "crds" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    (dest / COMPLETE).write_text("written by cluster/tools/vendor.py download\n")
    return written


def ensure(fetch=_get) -> int:
    """`make test`'s first step: nothing when charts and schemas are found; else one line saying
    what it fetches and from where, then `make vendor`'s download. 1 (and one line) on failure."""
    try:
        print(f"charts and schemas: {root()}")
        return 0
    except VendorMissing:
        pass
    if os.environ.get("SHARED_DIR"):
        print(
            f"charts and schemas: SHARED_DIR={os.environ['SHARED_DIR']} has no charts/ and "
            "schemas/crds/: point it at a copy of the shared folder, or unset it",
            file=sys.stderr,
        )
        return 1
    charts = pinned_charts()
    hosts = sorted(
        {urllib.parse.urlparse(url).netloc for url, _, _ in charts}
        | {urllib.parse.urlparse(url).netloc for _, url in SCHEMA_SOURCES}
    )
    print(
        f"charts and schemas: none here (no $SHARED_DIR, .cache/vendor or ../shared): fetching "
        f"{len(charts)} pinned Helm charts and {len(SCHEMA_SOURCES)} schema files into "
        f"{CACHE.relative_to(REPO)} from {', '.join(hosts)}",
        flush=True,
    )
    try:
        download(CACHE, fetch=fetch)
    except (OSError, LookupError, ValueError) as exc:  # URLError is an OSError
        print(
            f"charts and schemas: the download failed ({exc.__class__.__name__}: {exc}). The "
            "cluster checks need them: run `make vendor` where those hosts answer, or put the "
            "shared folder at ../shared or in SHARED_DIR",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["download"]:
        for line in download():
            print("vendored: " + line)
        print(f"charts and schemas in {CACHE.relative_to(REPO)}")
        return 0
    if argv[:1] == ["ensure"]:
        return ensure()
    if argv[:1] == ["where"]:
        try:
            print(root())
        except VendorMissing as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    print("usage: vendor.py download|ensure|where", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
