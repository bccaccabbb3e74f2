"""tasks.core.cli.run_task collects garbage less often, and spares the exit its last collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.core.cli import GC_THRESHOLDS, TaskInputs, run_task
from tasks.core.settings import get_settings


class NoInputs(TaskInputs):
    pass


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    xcom = tmp_path / "return.json"
    monkeypatch.setenv("XCOM_RETURN_PATH", str(xcom))
    get_settings.cache_clear()
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield xcom
    gc.unfreeze()  # this process goes on: let the collector see everything again
    gc.set_threshold(*thresholds)
    get_settings.cache_clear()


def succeed(_inputs: TaskInputs, _settings: Any) -> dict[str, Any]:
    return {"status": "done"}


def fail(_inputs: TaskInputs, _settings: Any) -> dict[str, Any]:
    raise RuntimeError("the store is unreachable")


@pytest.mark.parametrize(("run", "code"), [(succeed, 0), (fail, 1)])
def test_the_objects_are_frozen_once_the_outcome_is_out(settings_env: Path, run, code) -> None:
    assert gc.get_freeze_count() == 0
    assert run_task("fake", NoInputs, run, [], summary=lambda r: r["status"]) == code
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert settings_env.exists() == (code == 0)  # the result was written before
