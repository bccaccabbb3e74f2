"""Training's OpenMP threads follow the data and the machine: one thread on small data or on a
busy machine (idle threads sleeping), the pod's CPUs on large data when the cores are free."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tasks.core import threads


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "cpu_limit", lambda: 2)


@pytest.fixture(autouse=True)
def nothing_chosen_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_chosen", None)


@pytest.fixture
def default_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(threads.WAIT_POLICY, raising=False)


@pytest.mark.usefixtures("two_cpus", "default_waits")
def test_small_data_trains_on_one_thread_and_large_data_on_the_cpu_limit() -> None:
    assert threads.training_threads(0, 1_200) == 1
    assert threads.training_threads(0, threads.MIN_ROWS_PER_EXTRA_THREAD - 1) == 1
    assert threads.training_threads(0, threads.MIN_ROWS_PER_EXTRA_THREAD) == 2
    assert threads.training_threads(0, 400_000) == 2
    assert threads.training_threads(0) == 2  # rows unknown: the CPU limit


@pytest.mark.usefixtures("two_cpus")
def test_passive_waits_train_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(threads.WAIT_POLICY, "passive")
    assert threads.training_threads(0, 400_000) == 1


@pytest.mark.usefixtures("two_cpus")
def test_train_threads_set_by_hand_win_whatever_the_rows_and_the_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(threads.WAIT_POLICY, "PASSIVE")
    assert threads.training_threads(2, 1_200) == 2
    assert threads.training_threads(1, 400_000) == 1


@pytest.mark.parametrize(
    ("load", "cpus", "busy"),
    [
        (0.0, 2, False),
        (1.9, 2, False),
        (2.0, 2, True),
        (4.0, 2, True),
        (3.9, 4, False),
        (4.1, 4, True),
    ],
)
def test_the_machine_is_busy_when_the_load_reaches_the_cpu_limit(
    load: float, cpus: int, busy: bool
) -> None:
    assert threads.machine_is_busy(load, cpus) is busy


def _policy_in_a_fresh_task(env: dict[str, str]) -> str:
    """OMP_WAIT_POLICY as a task process sees it after choose_waits (a real interpreter)."""
    code = "from tasks.core import threads; print(threads.choose_waits())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_an_operator_set_policy_is_never_overridden() -> None:
    env = {**os.environ, threads.WAIT_POLICY: "ACTIVE"}
    assert _policy_in_a_fresh_task(env) == "ACTIVE"


def test_choose_waits_sets_passive_exactly_when_the_machine_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(threads.WAIT_POLICY, raising=False)
    monkeypatch.setattr(threads, "cpu_limit", lambda: 2)
    for load, expected in ((0.2, "default"), (9.0, "PASSIVE")):
        monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, load, load))
        monkeypatch.setattr(threads, "_chosen", None)
        assert threads.choose_waits() == expected
        assert threads.waits_are_passive() is (expected == "PASSIVE")
        monkeypatch.delenv(threads.WAIT_POLICY, raising=False)


def test_the_first_choice_stands_for_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run forked from a launcher keeps the runtime the launcher loaded, whatever its own
    environment says: the choice made before the runtime loaded is the one that counts."""
    monkeypatch.delenv(threads.WAIT_POLICY, raising=False)
    monkeypatch.setattr(threads, "cpu_limit", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert threads.choose_waits() == "PASSIVE"
    monkeypatch.delenv(threads.WAIT_POLICY)  # the run's environment replaces the launcher's
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert threads.choose_waits() == "PASSIVE"
    assert threads.training_threads(0, 400_000) == 1
