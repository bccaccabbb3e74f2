"""Every DAG parses offline without errors, fast, with tags, an owner, retries and docs,
and without importing the ML stack (STYLE items 4 and 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.dags.conftest import DAGS, SHA

EXPECTED_DAGS = {"realtor_pipeline", "realtor_replay", "realtor_monitor"}
FORBIDDEN = ("pandas", "numpy", "sklearn", "mlflow", "tasks", "pyarrow", "evidently", "shap")
PARSE_SECONDS_BOUND = 2.0

# Parses the DAG file the way the DAG processor does: Airflow and the modules the file imports
# from airflow.* are already imported (parsing_pre_import_modules), then the file is executed.
_PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.file import iter_airflow_imports
    import importlib
    path = sys.argv[1]
    started = time.perf_counter()
    for module in iter_airflow_imports(path):
        importlib.import_module(module)
    pre_import = time.perf_counter() - started
    started = time.perf_counter()
    bag = DagBag(dag_folder=path)
    parse = time.perf_counter() - started
    print(json.dumps({
        "pre_import_seconds": pre_import,
        "parse_seconds": parse,
        "errors": bag.import_errors,
        "dags": sorted(bag.dags),
        "modules": sorted({m.split(".")[0] for m in sys.modules}),
    }))
    """
)


@pytest.mark.parametrize("runtime", ["local", "kubernetes"])
def test_no_import_errors(load_dags, runtime: str) -> None:
    bag = load_dags(PIPELINE_RUNTIME=runtime, PIPELINE_IMAGE_TAG=SHA)
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_conventions(load_dags, dag_id: str) -> None:
    dag = load_dags(PIPELINE_RUNTIME="local").dags[dag_id]
    assert dag.tags, "tags help people find the DAG"
    assert dag.doc_md, "the DAG explains itself (its module docstring)"
    assert len(dag.doc_md) > 200
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == "realtor-mlops", task.task_id
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id
        assert task.execution_timeout is not None, task.task_id
        assert task.doc_md, f"{task.task_id} has no doc_md"


@pytest.mark.parametrize("dag_file", ["realtor_pipeline.py", "realtor_replay.py"])
@pytest.mark.parametrize("runtime", ["local", "kubernetes"])
def test_parses_fast_without_the_ml_stack(dag_file: str, runtime: str) -> None:
    env = {**os.environ, "PIPELINE_RUNTIME": runtime, "PIPELINE_IMAGE_TAG": SHA}
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(DAGS / dag_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["dags"]
    loaded = sorted(set(result["modules"]) & set(FORBIDDEN))
    assert not loaded, f"{dag_file} imports {loaded} at parse time"
    print(
        f"\n{dag_file} ({runtime}): parse {result['parse_seconds']:.3f} s "
        f"(after pre-importing its airflow.* modules: {result['pre_import_seconds']:.2f} s)"
    )
    assert result["parse_seconds"] < PARSE_SECONDS_BOUND
