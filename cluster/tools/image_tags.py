"""The tag of every image of ours in the tree: where each is written, read them, set them.

Our images (MLflow, serving, UI, data API, Airflow, the pipeline's tasks) are tagged with the
40-hex commit SHA the images workflow built them from; git holds them in four kinds of places
(PLACES). The all-zero tag is the placeholder git holds until a real SHA replaces it: nothing
ever pulls it. cluster/bootstrap/install-argocd.sh --image-tag SHA runs `set`.

Usage: python cluster/tools/image_tags.py show | set SHA | check SHA   (exit 1: check failed)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "0" * 40
SHA = re.compile(r"[0-9a-f]{40}")
# (files, pattern): group 2 is the tag
PLACES: list[tuple[str, re.Pattern[str]]] = [
    (
        "cluster/apps/*/base/*.yaml",
        re.compile(r"(docker\.io/realtor-mlops/[a-z-]+:)([0-9a-f]{40})"),
    ),
    ("cluster/apps/*/base/kustomization.yaml", re.compile(r'(newTag: ")([0-9a-f]{40})(")')),
    ("helm-values/airflow/values.yaml", re.compile(r'(defaultAirflowTag: ")([0-9a-f]{40})(")')),
    (
        "cluster/apps/pipeline/base/pipeline.env",
        re.compile(r"(?m)^(PIPELINE_IMAGE_TAG=)([0-9a-f]{40})$"),
    ),
]


def problem(tag: str) -> str | None:
    """Why a tag cannot be deployed, or None."""
    if not SHA.fullmatch(tag):
        return f"{tag!r} is not a 40-hex commit SHA (the images workflow tags with nothing else)"
    if tag == PLACEHOLDER:
        return "the all-zero tag is git's placeholder: no image has it"
    return None


def files(root: Path = REPO) -> list[Path]:
    return sorted({p for pattern, _ in PLACES for p in root.glob(pattern)})


def tags_in(text: str) -> list[str]:
    return [m.group(2) for _, pattern in PLACES for m in pattern.finditer(text)]


def with_tag(text: str, tag: str) -> str:
    for _, pattern in PLACES:
        text = pattern.sub(
            lambda m: m.group(1) + tag + (m.group(3) if m.lastindex == 3 else ""), text
        )
    return text


def tags(root: Path = REPO) -> dict[str, list[str]]:
    """{file: tags} of every file holding a tag of ours."""
    out = {}
    for path in files(root):
        found = tags_in(path.read_text(encoding="utf-8"))
        if found:
            out[str(path.relative_to(root))] = found
    return out


def set_tag(tag: str, root: Path = REPO) -> list[str]:
    """Write `tag` into every place; the files it changed."""
    changed = []
    for path in files(root):
        text = path.read_text(encoding="utf-8")
        new = with_tag(text, tag)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path.relative_to(root)))
    return changed


def main(argv: list[str]) -> int:
    if (
        not argv
        or argv[0] not in ("show", "set", "check")
        or (argv[0] != "show") != (len(argv) == 2)
    ):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    if argv[0] == "show":
        for name, found in tags().items():
            print(f"{name}: {' '.join(sorted(set(found)))}")
        return 0
    tag = argv[1]
    why = problem(tag)
    if why:
        print(
            f"image tag {tag}: {why}; pass the commit SHA whose images the workflow pushed",
            file=sys.stderr,
        )
        return 1
    if argv[0] == "set":
        for name in set_tag(tag):
            print(f"set {tag} in {name}")
        return 0
    other = {name: found for name, found in tags().items() if set(found) != {tag}}
    for name, found in other.items():
        print(f"{name}: holds {' '.join(sorted(set(found)))}, not {tag}")
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
