"""values - every key we set in helm-values exists in the chart's values (or its schema, or
is read whole by a template), so a silently ignored setting fails."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import render
import vendor
import yaml


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
    return errors
