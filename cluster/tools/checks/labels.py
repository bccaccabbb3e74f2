"""labels - the versions our values files name are those the pinned charts ship, and
Airflow's airflowVersion is the Airflow of our image."""

from __future__ import annotations

import re

import render
import vendor
import yaml

from .common import REPO, lock_versions

VERSION = re.compile(r"(chart )?\b(v?\d+(?:\.\d+){1,2}|v\d+)\b")


def _prefix_of(label: str, version: str) -> bool:
    want = label.lstrip("v").split(".")
    have = version.lstrip("v").split(".")
    return have[: len(want)] == want


def check_labels(topo: render.Topology) -> list[str]:
    """The versions our files name match what the pinned charts ship: the header of each
    values file (`chart X` = the chart version, any other version = a prefix of the chart's
    appVersion), and Airflow's airflowVersion = the Airflow our image's lock installs."""
    errors = []
    seen = set()
    for chart in topo.charts:
        meta = yaml.safe_load((vendor.charts_dir() / chart.chart / "Chart.yaml").read_text("utf-8"))
        version, app_version = str(meta["version"]), str(meta.get("appVersion", ""))
        for rel in chart.value_files[:1]:
            if rel in seen:
                continue
            seen.add(rel)
            header = []
            for line in (REPO / rel).read_text(encoding="utf-8").splitlines():
                if line.startswith("---"):
                    continue
                if not line.startswith("#"):
                    break
                header.append(line)
            text = re.sub(r"\d+\.\d+\.\d+\.\d+", "<ip>", "\n".join(header))
            for chart_word, label in VERSION.findall(text):
                ok = (
                    label.lstrip("v") == version.lstrip("v")
                    if chart_word
                    else (
                        _prefix_of(label, app_version) or label.lstrip("v") == version.lstrip("v")
                    )
                )
                if not ok:
                    errors.append(
                        f"{rel}: says {chart_word}{label}, but chart {chart.chart} ships "
                        f"{'version ' + version if chart_word else 'appVersion ' + app_version}"
                    )
        if chart.chart.startswith("airflow-") and "airflowVersion" in chart.values:
            pins = lock_versions(REPO / "images/airflow/requirements.txt")
            if str(chart.values["airflowVersion"]) != pins.get("apache-airflow"):
                errors.append(
                    f"{', '.join(chart.value_files)}: airflowVersion {chart.values['airflowVersion']} "
                    f"is not the Airflow of our image ({pins.get('apache-airflow')}, "
                    "images/airflow/requirements.txt): the chart picks commands by it"
                )
    return errors
