"""The pipeline's shape: tasks, dependencies, the short-circuit, the branch, trigger rules,
params and schedule from the environment, and the decisions of the two Python callables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk import TriggerRule

from tests.dags.conftest import SHA

PIPELINE_TASKS = {
    "fetch",
    "batch_available",
    "validate",
    "drift_check",
    "decide",
    "train",
    "promote",
    "skip_training",
    "record",
}
EDGES = {
    ("fetch", "batch_available"),
    ("batch_available", "validate"),
    ("validate", "drift_check"),
    ("drift_check", "decide"),
    ("decide", "train"),
    ("decide", "skip_training"),
    ("train", "promote"),
    ("promote", "record"),
    ("skip_training", "record"),
}
BATCH_ARGS = ["--batch-id", "{{ ti.xcom_pull(task_ids='fetch')['batch_id'] }}"]


@pytest.fixture
def pipeline(load_dags):
    return load_dags(PIPELINE_RUNTIME="local").dags["realtor_pipeline"]


def test_tasks_and_dependencies(pipeline) -> None:
    assert set(pipeline.task_ids) == PIPELINE_TASKS
    edges = {(t.task_id, d) for t in pipeline.tasks for d in t.downstream_task_ids}
    assert edges == EDGES


def test_exhausted_short_circuits_everything_downstream(pipeline) -> None:
    gate = pipeline.get_task("batch_available")
    assert gate.ignore_downstream_trigger_rules is True  # record is skipped too
    callable_ = gate.python_callable
    assert callable_({"status": "exhausted"}) is False
    assert callable_({"status": "stored", "batch_id": 1}) is True
    assert callable_({"status": "duplicate", "batch_id": 1}) is True
    with pytest.raises(ValueError, match="unknown status"):
        callable_({"status": "weird"})


def test_branch_follows_the_drift_decision(pipeline) -> None:
    decide = pipeline.get_task("decide").python_callable
    assert decide({"decision": "train", "reasons": ["first model"]}) == "train"
    assert decide({"decision": "skip", "reasons": ["batch quarantined: x"]}) == "skip_training"
    with pytest.raises(ValueError, match="unknown decision"):
        decide({"decision": None, "reasons": []})  # never a silent default


def test_trigger_rules(pipeline) -> None:
    rules = {t.task_id: t.trigger_rule for t in pipeline.tasks}
    assert rules.pop("record") == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert set(rules.values()) == {TriggerRule.ALL_SUCCESS}


def test_task_command_lines(pipeline) -> None:
    fetch = pipeline.get_task("fetch")
    assert fetch.module == "tasks.fetch"
    assert fetch.arguments == [
        "--group-number",
        "{{ params.group_number }}",
        "--day",
        "{{ params.day }}",
    ]
    for name in ("validate", "drift_check", "train", "promote", "record"):
        task = pipeline.get_task(name)
        assert task.module == f"tasks.{name}"
        assert task.arguments == BATCH_ARGS
        assert task.do_xcom_push


def test_timeouts_per_task(pipeline) -> None:
    timeouts = {t.task_id: t.execution_timeout for t in pipeline.tasks}
    assert timeouts["train"] == timedelta(minutes=60)
    assert timeouts["record"] < timeouts["validate"] < timeouts["train"]


def test_params_and_schedule_from_the_environment(load_dags) -> None:
    bag = load_dags(
        PIPELINE_RUNTIME="local", GROUP_NUMBER="7", DAY="Wednesday", PIPELINE_SCHEDULE="none"
    )
    dag = bag.dags["realtor_pipeline"]
    assert dag.params["group_number"] == 7
    assert dag.params["day"] == "Wednesday"
    timetable = dag.timetable  # no cron: the live-drift event (and manual triggers) only
    assert type(timetable).__name__ == "AssetTriggeredTimetable"
    assert "realtor://live-drift" in str(timetable.asset_condition)
    default = load_dags(GROUP_NUMBER="1", DAY="Tuesday", PIPELINE_SCHEDULE="*/5 * * * *")
    timetable = default.dags["realtor_pipeline"].timetable  # its cron, or a live-drift event
    assert type(timetable).__name__ == "AssetOrTimeSchedule"
    assert timetable.timetable.expression == "*/5 * * * *"
    assert "realtor://live-drift" in str(timetable.asset_condition)
    assert default.dags["realtor_pipeline"].params["group_number"] == 1


def test_local_runtime_settings(load_dags, tmp_path) -> None:
    python = tmp_path / "python"
    bag = load_dags(PIPELINE_RUNTIME="local", PIPELINE_TASKS_PYTHON=str(python))
    fetch = bag.dags["realtor_pipeline"].get_task("fetch")
    assert fetch.python == str(python)
    default = load_dags(PIPELINE_TASKS_PYTHON="")
    fetch = default.dags["realtor_pipeline"].get_task("fetch")
    repo = fetch.cwd
    assert fetch.python == f"{repo}/.venv/bin/python"


def test_replay_dag(load_dags) -> None:
    dag = load_dags(PIPELINE_RUNTIME="kubernetes", PIPELINE_IMAGE_TAG=SHA).dags["realtor_replay"]
    assert dag.task_ids == ["replay"]
    replay = dag.get_task("replay")
    assert replay.cmds == ["python", "-m", "tasks.replay"]  # runs in the fetch image
    assert replay.image.endswith(f"/fetch:{SHA}")
    assert type(dag.timetable).__name__ == "NullTimetable"


def test_a_step_not_in_the_table_is_refused_with_what_to_do(k8s_env) -> None:
    from realtor.config import load_config
    from realtor.factory import BATCH_ID, pipeline_task
    from realtor.specs import UnknownStepError

    for env in ({}, k8s_env):
        with pytest.raises(UnknownStepError, match=r"'explain' is not in dags/realtor/specs.py"):
            pipeline_task("explain", ["--batch-id", BATCH_ID], config=load_config(env))
    with pytest.raises(UnknownStepError, match=r"Add a step.*known steps: fetch, validate"):
        pipeline_task("Explain-It", config=load_config({}))


def test_local_preload_is_on_unless_turned_off_and_reaches_the_operator() -> None:
    from realtor.config import PipelineConfigError, load_config
    from realtor.factory import pipeline_task

    assert load_config({}).local_preload is True  # start-up paid once per task module
    assert pipeline_task("record", config=load_config({})).preload is True
    fresh = load_config({"PIPELINE_LOCAL_PRELOAD": "0"})  # a fresh interpreter per task
    assert fresh.local_preload is False
    assert pipeline_task("record", config=fresh).preload is False
    assert load_config({"PIPELINE_LOCAL_PRELOAD": "no"}).local_preload is False
    with pytest.raises(PipelineConfigError, match="PIPELINE_LOCAL_PRELOAD"):
        load_config({"PIPELINE_LOCAL_PRELOAD": "maybe"})
