"""The labels check (cluster/tools/checks/labels.py)."""

from __future__ import annotations

from check_helpers import checks, render, topology


def test_labels_flag_a_version_the_chart_does_not_ship(tmp_path, monkeypatch):
    values = tmp_path / "values.yaml"
    values.write_text("---\n# Longhorn v1.12 (chart 1.12.1) on 10.43.100.95\nx: 1\n")
    monkeypatch.setattr(checks.labels, "REPO", tmp_path)
    chart = render.ChartRender("longhorn", "longhorn-1.12.1", "longhorn", "ns", ["values.yaml"], {})
    assert checks.check_labels(topology([], charts=[chart])) == []
    values.write_text("---\n# Longhorn v1.13 (chart 1.12.0)\nx: 1\n")
    errors = checks.check_labels(topology([], charts=[chart]))
    assert len(errors) == 2 and "appVersion v1.12.1" in errors[0]
    assert "version 1.12.1" in errors[1]


def test_labels_flag_an_airflow_version_other_than_the_image(tmp_path, monkeypatch):
    (tmp_path / "images/airflow").mkdir(parents=True)
    (tmp_path / "images/airflow/requirements.txt").write_text("apache-airflow==3.3.2\n")
    (tmp_path / "values.yaml").write_text("airflowVersion: '3.1.7'\n")
    monkeypatch.setattr(checks.labels, "REPO", tmp_path)
    chart = render.ChartRender(
        "airflow",
        "airflow-1.19.0",
        "airflow",
        "airflow",
        ["values.yaml"],
        {"airflowVersion": "3.1.7"},
    )
    assert "3.3.2" in checks.check_labels(topology([], charts=[chart]))[0]
    chart.values["airflowVersion"] = "3.3.2"
    assert checks.check_labels(topology([], charts=[chart])) == []
