"""The local runtime's operator: the same command-line contract as a pod, in a subprocess.

A fake package of steps (``<step>/step.py`` and ``<step>/__main__.py``) in a temporary folder stands in for ``tasks.*`` (the tasks' own
virtualenv is exercised end to end by tests/e2e): it writes its result to XCOM_RETURN_PATH,
prints a summary on stdout and logs on stderr, and fails on demand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from realtor.local import LocalTaskOperator, close_launchers, task_environment

FAKE_TASK = textwrap.dedent(
    """
    import json, os, sys, time

    def main():
        args = sys.argv[1:]
        mode = os.environ.get("FAKE_MODE", "ok")
        held = b"x" * (int(os.environ.get("FAKE_ALLOC_MIB", "0")) << 20)  # touched pages
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
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "pgid": os.getpgid(0),
            "name": __name__,
        }
        with open(os.environ["XCOM_RETURN_PATH"], "w") as handle:
            json.dump(result, handle)
        print("fake: done")

    if __name__ == "__main__":
        main()
    """
)
LAUNCHER_SCRIPT = Path(__file__).resolve().parents[2] / "dags" / "realtor" / "launcher.py"
BROKEN_TASK = "raise ImportError('a library this task needs is missing')\n"


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    package = tmp_path / "faketasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for step, module, main in (
        ("fake", "", FAKE_TASK),  # a step without a STEP: nothing to preload
        ("broken", BROKEN_TASK, "from faketasks.broken import step  # noqa: F401\n"),
    ):
        (package / step).mkdir()
        (package / step / "__init__.py").write_text("")
        (package / step / "step.py").write_text(module)
        (package / step / "__main__.py").write_text(main)
    return tmp_path


@pytest.fixture(params=[False, True], ids=["fresh-interpreter", "preloaded-launcher"])
def preload(request: pytest.FixtureRequest) -> Iterator[bool]:
    yield request.param
    close_launchers()


def _operator(repo: Path, preload: bool = False, **kwargs) -> LocalTaskOperator:
    return LocalTaskOperator(
        task_id=kwargs.pop("task_id", "fake"),
        module=kwargs.pop("module", "faketasks.fake"),
        python=sys.executable,
        cwd=repo,
        preload=preload,
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


def test_runs_the_command_and_returns_its_result(fake_repo, monkeypatch, captured, preload) -> None:
    monkeypatch.setenv("INHERITED_SETTING", "from-airflow-env")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:///secret.db")
    operator = _operator(
        fake_repo, preload, arguments=["--batch-id", "42"], env_vars={"TASK_ONLY": "1"}
    )
    result = operator.execute(context={})
    assert result["args"] == ["--batch-id", "42"]
    assert result["cwd"] == str(fake_repo)
    assert result["task_env"] == "1"
    assert result["inherited"] == "from-airflow-env"
    assert result["airflow_private"] == []  # Airflow's own settings stay out of the task
    text = [line for _, line in captured.lines]
    assert "log line 0" in text
    assert "[stdout] fake: done" in text
    assert result["name"] == "__main__"
    assert result["pgid"] == result["pid"]  # its own process group, for on_kill
    assert operator.peak_rss_mib > 0


def test_a_fresh_task_reports_its_own_peak_not_the_airflow_process_s(
    fake_repo, monkeypatch, captured
) -> None:
    """Linux carries the parent's high-water mark into the child across exec: a task smaller
    than the Airflow process would report the Airflow process's size from wait4 alone."""
    import resource

    big = b"y" * (600 << 20)  # this (the parent) process peaks above 600 MiB...
    del big
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 600 << 10
    monkeypatch.setenv("FAKE_ALLOC_MIB", "64")  # ...the task holds 64 MiB for 0.6 s
    monkeypatch.setenv("FAKE_SLEEP", "0.2")
    operator = _operator(fake_repo, preload=False)
    operator.execute(context={})
    assert 64 <= operator.peak_rss_mib < 300


def test_streams_lines_as_they_come(fake_repo, monkeypatch, captured, preload) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "0.4")
    _operator(fake_repo, preload).execute(context={})
    stamps = {line: stamp for stamp, line in captured.lines}
    assert stamps["log line 2"] - stamps["log line 0"] > 0.5, "lines arrive while it runs"


def test_failure_carries_the_last_lines_of_stderr(
    fake_repo, monkeypatch, captured, preload
) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(AirflowException, match="exited with 1") as failure:
        _operator(fake_repo, preload).execute(context={})
    assert "the store is unreachable" in str(failure.value)
    assert not isinstance(failure.value, AirflowFailException)  # retried


def test_bad_arguments_fail_without_retry(fake_repo, monkeypatch, captured, preload) -> None:
    monkeypatch.setenv("FAKE_MODE", "bad-args")
    with pytest.raises(AirflowFailException, match="invalid input"):
        _operator(fake_repo, preload).execute(context={})


def test_a_task_that_writes_no_result_fails(fake_repo, monkeypatch, captured, preload) -> None:
    monkeypatch.setenv("FAKE_MODE", "no-result")
    with pytest.raises(AirflowException, match="wrote no result"):
        _operator(fake_repo, preload).execute(context={})


def test_a_missing_interpreter_says_what_to_do(fake_repo, captured) -> None:
    operator = LocalTaskOperator(
        task_id="fake", module="faketasks.fake", python=fake_repo / "nope", cwd=fake_repo
    )
    with pytest.raises(AirflowFailException, match="PIPELINE_TASKS_PYTHON"):
        operator.execute(context={})


def test_preloaded_runs_are_forked_from_one_launcher_per_module(fake_repo, captured) -> None:
    try:
        first = _operator(fake_repo, True).execute(context={})
        second = _operator(fake_repo, True, arguments=["again"]).execute(context={})
    finally:
        close_launchers()
    assert first["pid"] != second["pid"]
    assert first["ppid"] == second["ppid"] != os.getpid()  # the same launcher forked both
    assert second["args"] == ["again"]


def test_a_launcher_another_process_serves_is_used_and_left_running(fake_repo, captured) -> None:
    """PIPELINE_LOCAL_LAUNCHERS: a task forks from the launcher serving in that folder (its
    owner's), starts none of its own, and leaves it running when this process closes its own."""
    folder = Path(tempfile.mkdtemp(prefix="shared-", dir="/tmp"))  # a socket path is short
    launcher = LAUNCHER_SCRIPT
    owner = subprocess.Popen(
        [sys.executable, str(launcher), "--socket", str(folder / "faketasks.fake.socket"),
         "faketasks.fake"],
        cwd=fake_repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert owner.stdout.readline().strip() == b"ready"
        first = _operator(fake_repo, True, shared_launchers=folder).execute(context={})
        second = _operator(fake_repo, True, shared_launchers=folder).execute(context={})
        close_launchers()
        assert first["ppid"] == second["ppid"] == owner.pid  # forked by the shared launcher
        assert owner.poll() is None  # not this process's to stop
        # no launcher serves the other module there: the task starts its own, as without it
        own = _operator(
            fake_repo, True, shared_launchers=folder, module="faketasks.fake", task_id="own"
        )
        (folder / "faketasks.fake.socket").unlink()
        third = own.execute(context={})
        assert third["ppid"] not in (owner.pid, os.getpid())
    finally:
        close_launchers()
        owner.stdin.close()
        owner.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("idle", [True, False], ids=["a-core-idle", "busy"])
def test_the_first_task_of_a_dag_starts_the_launchers_of_the_others_when_a_core_is_idle(
    fake_repo, captured, monkeypatch, idle
) -> None:
    """Their imports run while the first task runs, not when each task's turn comes; on a busy
    machine each launcher waits for its task's first run."""
    from airflow.sdk import DAG
    from realtor.local import pool

    monkeypatch.setattr(pool, "a_core_is_idle", lambda: idle)

    shutil.copytree(fake_repo / "faketasks" / "fake", fake_repo / "faketasks" / "second")
    with DAG("warm", schedule=None):
        first = _operator(fake_repo, True)
        later = _operator(fake_repo, True, task_id="second", module="faketasks.second")
        first >> later
    try:
        first.execute(context={})
        started = {module for (_, module, _) in pool._launchers}
        if not idle:
            assert started == {"faketasks.fake"}
            return
        assert started == {"faketasks.fake", "faketasks.second"}
        waiting = pool._launchers[(later.python, later.module, later.cwd)]
        result = later.execute(context={})
        assert result["ppid"] == waiting.process.pid  # forked by the launcher started early
    finally:
        close_launchers()


def test_a_launcher_that_cannot_import_its_task_fails_loudly(fake_repo, captured) -> None:
    try:
        with pytest.raises(AirflowException, match="a library this task needs is missing"):
            _operator(fake_repo, True, module="faketasks.broken").execute(context={})
    finally:
        close_launchers()


def test_on_kill_stops_the_running_task(fake_repo, monkeypatch, captured, preload) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "5")
    operator = _operator(fake_repo, preload)
    failures: list[BaseException] = []

    def execute() -> None:
        try:
            operator.execute(context={})
        except BaseException as exc:
            failures.append(exc)

    runner = threading.Thread(target=execute)
    started = time.monotonic()
    runner.start()
    while not any(line == "log line 0" for _, line in captured.lines):
        assert time.monotonic() - started < 60, "the task never logged"
        time.sleep(0.05)
    operator.on_kill()
    runner.join(30)
    assert not runner.is_alive()
    assert time.monotonic() - started < 12, "stopped, not run to its end (15 s)"
    assert failures and "exited with -15" in str(failures[0])


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
