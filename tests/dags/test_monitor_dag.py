"""realtor_monitor's shape: monitor -> a short-circuit on `drifted` -> the live-drift Asset,
its schedule from the environment, and the Asset that realtor_pipeline is scheduled on."""

from __future__ import annotations

import pytest

from tests.dags.conftest import SHA


@pytest.fixture
def monitor_dag(load_dags):
    return load_dags(PIPELINE_RUNTIME="local").dags["realtor_monitor"]


def test_tasks_and_dependencies(monitor_dag) -> None:
    edges = {(t.task_id, d) for t in monitor_dag.tasks for d in t.downstream_task_ids}
    assert edges == {
        ("monitor", "live_drift_detected"),
        ("monitor", "emit_live_drift"),
        ("live_drift_detected", "emit_live_drift"),
    }
    task = monitor_dag.get_task("monitor")
    assert task.module == "tasks.monitor"
    assert task.arguments == ["--until", "{{ data_interval_end.isoformat() }}"]


def test_only_a_drifted_window_emits_the_asset(monitor_dag) -> None:
    gate = monitor_dag.get_task("live_drift_detected").python_callable
    assert gate({"decision": "drifted", "reasons": ["live drift share 0.67 >= 0.50"]}) is True
    assert gate({"decision": "stable", "reasons": []}) is False
    assert gate({"decision": "too_few_rows", "reasons": []}) is False
    with pytest.raises(ValueError, match="unknown decision"):
        gate({"decision": None})
    [outlet] = monitor_dag.get_task("emit_live_drift").outlets
    assert outlet.uri.rstrip("/") == "realtor://live-drift"  # Airflow normalises the URI


def test_schedule_from_the_environment(load_dags) -> None:
    hourly = load_dags(PIPELINE_RUNTIME="local").dags["realtor_monitor"]
    assert hourly.schedule == "@hourly"
    manual = load_dags(PIPELINE_RUNTIME="local", MONITOR_SCHEDULE="none")
    assert type(manual.dags["realtor_monitor"].timetable).__name__ == "NullTimetable"


def test_the_monitor_pod_runs_in_its_image(load_dags) -> None:
    dag = load_dags(PIPELINE_RUNTIME="kubernetes", PIPELINE_IMAGE_TAG=SHA).dags["realtor_monitor"]
    task = dag.get_task("monitor")
    assert task.image.endswith(f"/monitor:{SHA}")
