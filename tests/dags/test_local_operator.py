"""The local runtime's operator: the same command-line contract as a pod, in a subprocess.

A fake task package in a temporary folder stands in for ``tasks.*`` (the tasks' own
virtualenv is exercised end to end by tests/e2e): it writes its result to XCOM_RETURN_PATH,
prints a summary on stdout and logs on stderr, and fails on demand.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from realtor.local import LocalTaskOperator, task_environment

FAKE_TASK = textwrap.dedent(
    """
    import json, os, sys, time
    args = sys.argv[1:]
    mode = os.environ.get("FAKE_MODE", "ok")
    for i in range(3):
        print(f"log line {i}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if mode == "fail":
        print("tasks.fake failed: the store is unreachable", file=sys.stderr)
        sys.exit(1)
    if mode == "bad-args":
        print("tasks.fake: invalid input", file=sys.stderr)
        sys.exit(2)
    if mode == "no-result":
        sys.exit(0)
    result = {
        "args": args,
        "cwd": os.getcwd(),
        "task_env": os.environ.get("TASK_ONLY"),
        "airflow_private": sorted(k for k in os.environ if k.startswith("AIRFLOW__")),
        "inherited": os.environ.get("INHERITED_SETTING"),
    }
    with open(os.environ["XCOM_RETURN_PATH"], "w") as handle:
        json.dump(result, handle)
    print("fake: done")
    """
)


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    package = tmp_path / "faketasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fake.py").write_text(FAKE_TASK)
    return tmp_path


def _operator(repo: Path, **kwargs) -> LocalTaskOperator:
    return LocalTaskOperator(
        task_id="fake",
        module="faketasks.fake",
        python=sys.executable,
        cwd=repo,
        **kwargs,
    )


class _Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def info(self, message: str, *args) -> None:
        self.lines.append((time.monotonic(), message % args))

    warning = error = debug = info


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> _Lines:
    lines = _Lines()
    monkeypatch.setattr(LocalTaskOperator, "log", lines, raising=False)
    return lines


def test_runs_the_command_and_returns_its_result(fake_repo, monkeypatch, captured) -> None:
    monkeypatch.setenv("INHERITED_SETTING", "from-airflow-env")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:///secret.db")
    operator = _operator(fake_repo, arguments=["--batch-id", "42"], env_vars={"TASK_ONLY": "1"})
    result = operator.execute(context={})
    assert result["args"] == ["--batch-id", "42"]
    assert result["cwd"] == str(fake_repo)
    assert result["task_env"] == "1"
    assert result["inherited"] == "from-airflow-env"
    assert result["airflow_private"] == []  # Airflow's own settings stay out of the task
    text = [line for _, line in captured.lines]
    assert "log line 0" in text
    assert "[stdout] fake: done" in text


def test_streams_lines_as_they_come(fake_repo, monkeypatch, captured) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "0.4")
    _operator(fake_repo).execute(context={})
    stamps = {line: stamp for stamp, line in captured.lines}
    assert stamps["log line 2"] - stamps["log line 0"] > 0.5, "lines arrive while it runs"


def test_failure_carries_the_last_lines_of_stderr(fake_repo, monkeypatch, captured) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(AirflowException, match="exited with 1") as failure:
        _operator(fake_repo).execute(context={})
    assert "the store is unreachable" in str(failure.value)
    assert not isinstance(failure.value, AirflowFailException)  # retried


def test_bad_arguments_fail_without_retry(fake_repo, monkeypatch, captured) -> None:
    monkeypatch.setenv("FAKE_MODE", "bad-args")
    with pytest.raises(AirflowFailException, match="invalid input"):
        _operator(fake_repo).execute(context={})


def test_a_task_that_writes_no_result_fails(fake_repo, monkeypatch, captured) -> None:
    monkeypatch.setenv("FAKE_MODE", "no-result")
    with pytest.raises(AirflowException, match="wrote no result"):
        _operator(fake_repo).execute(context={})


def test_a_missing_interpreter_says_what_to_do(fake_repo, captured) -> None:
    operator = LocalTaskOperator(
        task_id="fake", module="faketasks.fake", python=fake_repo / "nope", cwd=fake_repo
    )
    with pytest.raises(AirflowFailException, match="PIPELINE_TASKS_PYTHON"):
        operator.execute(context={})


def test_task_environment_points_xcom_at_the_given_file(tmp_path: Path) -> None:
    env = task_environment(
        {"PATH": "/bin", "AIRFLOW__CORE__FERNET_KEY": "x", "AIRFLOW_CONN_X": "y"},
        {"LOG_FORMAT": "json"},
        tmp_path / "return.json",
    )
    assert env == {
        "PATH": "/bin",
        "LOG_FORMAT": "json",
        "XCOM_RETURN_PATH": str(tmp_path / "return.json"),
        "PYTHONUNBUFFERED": "1",
    }
    json.dumps(env)
