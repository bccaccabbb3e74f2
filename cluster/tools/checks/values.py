"""values - every key we set in helm-values exists in the chart's values (or its schema, or
is read whole by a template), so a silently ignored setting fails.

A map that a template copies whole (range, toYaml) into a ConfigMap or arguments takes any
key, but the program reading it takes only its own: where the chart documents those keys
(its values.yaml lists them under the map), a key we set there must be one of them. Maps that
hold another program's settings are checked against that program's reference where one is
installed here (Airflow's `config`: the options of the Airflow and providers installed in
.venv-airflow, whose apache-airflow must be the version the image locks; a provider only the
image installs, such as amazon, is unknown to it), else listed in PASSTHROUGH with the reason.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path
from typing import Any

import render
import vendor
import yaml

from .common import REPO, lock_versions


def _subchart_values(folder: Path, name: str) -> tuple[Any, Path | None]:
    sub = folder / "charts" / name
    if (sub / "values.yaml").is_file():
        return yaml.safe_load((sub / "values.yaml").read_text(encoding="utf-8")) or {}, sub
    return None, None


@functools.cache
def _templates_text(folder: str) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in Path(folder).rglob("templates/**/*")
        if p.is_file()
    )


def _schema_has(schema: Any, path: list[str]) -> bool:
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return False
        props = node.get("properties") or {}
        if key in props:
            node = props[key]
            continue
        if node.get("additionalProperties") is not False or "patternProperties" in node:
            return True  # JSON Schema: extra keys are allowed unless the schema says false
        return bool("$ref" in node or "anyOf" in node or "oneOf" in node)
    return True


def _read_by_template(folder: Path, dotted: str) -> bool:
    return bool(
        re.search(r"\.Values\." + re.escape(dotted) + r"(?![\w])", _templates_text(str(folder)))
    )


def unknown_keys(ours: Any, defaults: Any, folder: Path, schema: Any, path: list[str]) -> list[str]:
    """Dotted paths of `ours` that the chart at `folder` has no value for."""
    if not isinstance(ours, dict):
        return []
    out = []
    for key, value in ours.items():
        here = [*path, key]
        dotted = ".".join(here)
        if not path and key == "global":
            continue
        if not path:
            sub_defaults, sub_folder = _subchart_values(folder, key)
            if sub_folder is not None:
                sub_schema_file = sub_folder / "values.schema.json"
                sub_schema = (
                    json.loads(sub_schema_file.read_text(encoding="utf-8"))
                    if sub_schema_file.is_file()
                    else None
                )
                parent = (defaults or {}).get(key) if isinstance(defaults, dict) else None
                merged = render.merge_values(sub_defaults or {}, parent or {})
                out += [
                    f"{key}.{k}" for k in unknown_keys(value, merged, sub_folder, sub_schema, [])
                ]
                continue
        if isinstance(defaults, dict) and key in defaults:
            if isinstance(defaults[key], dict) and defaults[key]:
                out += unknown_keys(value, defaults[key], folder, schema, here)
            continue
        if isinstance(defaults, dict) and not defaults and path:
            continue  # an empty map in the chart's values: free-form (labels, env, ...)
        if schema is not None and _schema_has(schema, here):
            continue
        if re.search(r'index \.Values "' + re.escape(here[0]) + '"', _templates_text(str(folder))):
            continue  # a map read whole by `index .Values "key"` (grafana.ini)
        if _read_by_template(folder, dotted):
            continue  # documented only in a comment, but a template reads it
        parent_path = ".".join(path)
        if parent_path and re.search(
            r"\.Values\." + re.escape(parent_path) + r"(?![\w.])", _templates_text(str(folder))
        ):
            continue  # the template reads the whole parent map (toYaml, range)
        out.append(dotted)
    return out


# (chart name, map): settings of the program, not the chart; the chart lists a few examples.
PASSTHROUGH = {
    ("argo-cd", "configs.params"): "argocd-cmd-params-cm keys of Argo CD",
    ("argo-cd", "configs.cm"): "argocd-cm keys of Argo CD",
    ("airflow", "config"): "airflow.cfg, checked against Airflow's own options",
    ("traefik", "service.spec"): "the Service's spec, checked strictly by the schemas check",
}
AIRFLOW_SITE = REPO / ".venv-airflow/lib"


def _reads_whole(folder: Path, dotted: str) -> bool:
    pattern = r"\.Values\." + re.escape(dotted) + r"(?![\w.])"
    return bool(re.search(pattern, _templates_text(str(folder))))


def copied_keys(ours: Any, defaults: Any, folder: Path, path: list[str]) -> list[tuple[str, list]]:
    """(dotted key, the keys the chart documents there) of each key we set under a map that
    a template copies whole, where the chart's values list other keys for it."""
    if not isinstance(ours, dict) or not isinstance(defaults, dict):
        return []
    out = []
    for key, value in ours.items():
        here = [*path, key]
        if key in defaults:
            out += copied_keys(value, defaults[key], folder, here)
        elif (
            path
            and defaults
            and not _read_by_template(folder, ".".join(here))
            and any(_reads_whole(folder, ".".join(path[:n])) for n in range(1, len(path) + 1))
        ):
            leaves = [f"{key}.{k}" for k in value] if isinstance(value, dict) else [key]
            out += [(".".join([*path, leaf]), sorted(defaults)) for leaf in leaves]
    return out


@functools.cache
def airflow_options() -> dict[str, frozenset[str]]:
    """{section: options} of the Airflow our image locks and its providers, from the
    installed packages (config.yml; each provider's get_provider_info())."""
    sites = sorted(AIRFLOW_SITE.glob("python3*/site-packages/airflow"))
    if not sites:
        raise SystemExit(
            f"{AIRFLOW_SITE}: no Airflow installed to check config.* against: run make setup"
        )
    installed = sorted(sites[0].parent.glob("apache_airflow-*.dist-info"))
    locked = lock_versions(REPO / "images/airflow/requirements.txt").get("apache-airflow")
    if not installed or not installed[0].name.startswith(f"apache_airflow-{locked}.dist-info"):
        raise SystemExit(
            f"{sites[0]}: not the Airflow {locked} of images/airflow/requirements.txt "
            f"({[p.name for p in installed]}): run make setup"
        )
    config = yaml.safe_load((sites[0] / "config_templates/config.yml").read_text("utf-8"))
    out = {s: set((body or {}).get("options") or {}) for s, body in config.items()}
    for info in sites[0].glob("providers/**/get_provider_info.py"):
        tree = ast.parse(info.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
                provided = ast.literal_eval(node.value)
                for s, body in (provided.get("config") or {}).items():
                    out.setdefault(s, set()).update((body or {}).get("options") or {})
    return {s: frozenset(o) for s, o in out.items()}


def check_copied_keys(chart: render.ChartRender, defaults: Any, folder: Path) -> list[str]:
    name = chart.chart.rsplit("-", 1)[0]
    errors = []
    for dotted, documented in copied_keys(chart.values, defaults, folder, []):
        where = next(
            (m for (c, m) in PASSTHROUGH if c == name and dotted.startswith(m + ".")), None
        )
        if where is None:
            errors.append(
                f"[{chart.app}] {', '.join(chart.value_files)}: `{dotted}` is copied as is by a "
                f"template of chart {chart.chart}, whose values document the keys {documented} "
                "there: the program never reads it; use its key"
            )
        elif (name, where) == ("airflow", "config"):
            section, _, option = dotted.removeprefix("config.").partition(".")
            if option not in airflow_options().get(section, frozenset()):
                errors.append(
                    f"[{chart.app}] {', '.join(chart.value_files)}: `{dotted}`: Airflow has no "
                    f"option {option!r} in section [{section}] (its config.yml and providers)"
                )
    return errors


def check_values(topo: render.Topology) -> list[str]:
    errors = []
    seen = set()
    for chart in topo.charts:
        key = (chart.chart, tuple(chart.value_files))
        if key in seen:
            continue
        seen.add(key)
        folder = vendor.charts_dir() / chart.chart
        defaults = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8")) or {}
        schema_file = folder / "values.schema.json"
        schema = (
            json.loads(schema_file.read_text(encoding="utf-8")) if schema_file.is_file() else None
        )
        for dotted in unknown_keys(chart.values, defaults, folder, schema, []):
            errors.append(
                f"[{chart.app}] {', '.join(chart.value_files)}: `{dotted}` is not a value of chart "
                f"{chart.chart} (not in its values.yaml or schema, not read by a template): Helm "
                "ignores it silently; use the chart's key"
            )
        errors += check_copied_keys(chart, defaults, folder)
    return errors
