"""Training's OpenMP threads follow the data: one on small data, the pod's CPUs on large."""

from __future__ import annotations

import pytest

from tasks import train
from tasks.settings import TaskSettings


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train, "cpu_limit", lambda: 2)


@pytest.mark.usefixtures("two_cpus")
def test_small_data_trains_on_one_thread_and_large_data_on_the_cpu_limit() -> None:
    settings = TaskSettings(train_threads=0)
    assert train.training_threads(settings, 1_200) == 1
    assert train.training_threads(settings, train.MIN_ROWS_PER_EXTRA_THREAD - 1) == 1
    assert train.training_threads(settings, train.MIN_ROWS_PER_EXTRA_THREAD) == 2
    assert train.training_threads(settings, 400_000) == 2
    assert train.training_threads(settings) == 2  # rows unknown: the CPU limit


@pytest.mark.usefixtures("two_cpus")
def test_train_threads_set_by_hand_win_whatever_the_rows() -> None:
    assert train.training_threads(TaskSettings(train_threads=2), 1_200) == 2
    assert train.training_threads(TaskSettings(train_threads=1), 400_000) == 1
