"""The values check (cluster/tools/checks/values.py)."""

from __future__ import annotations

import copy

from check_helpers import checks, render, topology, vendor


def test_values_flag_a_key_the_chart_does_not_have():
    folder = vendor.charts_dir() / "longhorn-1.12.1"
    good = render.ChartRender(
        "longhorn",
        folder.name,
        "longhorn",
        "longhorn-system",
        ["v.yaml"],
        {"persistence": {"defaultClass": False}},
    )
    assert checks.check_values(topology([], charts=[good])) == []
    bad = copy.deepcopy(good)
    bad.values = {"persistence": {"defaultClas": False}}  # misspelt: Helm would ignore it
    errors = checks.check_values(topology([], charts=[bad]))
    assert errors and "persistence.defaultClas" in errors[0]


def test_values_flag_a_key_under_a_map_copied_whole_that_the_program_never_reads():
    def chart(name: str, values: dict) -> render.ChartRender:
        folder = vendor.charts_dir() / name
        return render.ChartRender("x", folder.name, "x", "x", ["v.yaml"], values)

    updater = "argocd-image-updater-1.2.4"  # copies config.* into its ConfigMap (range)
    good = chart(updater, {"config": {"git.user": "bot", "git.email": "bot@example.com"}})
    assert checks.check_values(topology([], charts=[good])) == []
    bad = chart(updater, {"config": {"gitCommitUser": "bot"}})
    errors = checks.check_values(topology([], charts=[bad]))
    assert len(errors) == 1 and "`config.gitCommitUser` is copied as is" in errors[0], errors
    assert "git.user" in errors[0]
    airflow = "airflow-1.19.0"  # config.* becomes airflow.cfg: Airflow's own options
    good = chart(airflow, {"config": {"logging": {"remote_logging": "True"}}})
    assert checks.check_values(topology([], charts=[good])) == []
    for values in (
        {"config": {"logging": {"remote_loging": "True"}}},
        {"config": {"kubernetes_executr": {"delete_worker_pods": "True"}}},
    ):
        errors = checks.check_values(topology([], charts=[chart(airflow, values)]))
        assert len(errors) == 1 and "Airflow has no option" in errors[0], errors
