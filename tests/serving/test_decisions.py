"""The service's decisions, branch by branch: load or not, fast path or not, ready or not."""

from __future__ import annotations

import datetime as dt

import pytest

from serving.decisions import (
    PARITY_TOLERANCE,
    decide_load,
    fast_path_status,
    no_model_message,
    readiness,
)
from serving.state import LoadFailure, RegistryStatus

NOW = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
UP = RegistryStatus().succeeded(NOW, "3")
DOWN = UP.failed(NOW + dt.timedelta(seconds=30), "ConnectionError: refused")


def served(version: str = "3", fast: bool = True) -> dict:
    return {
        "name": "m",
        "version": version,
        "fast_path": {"enabled": fast, "reason": None if fast else "refused: X"},
    }


def decide(served_v, target, *, failure=None, force=False, now=NOW):
    return decide_load(
        served_v,
        target,
        "production",
        last_failure=failure,
        now=now,
        retry_after_seconds=60,
        force=force,
    )


def test_first_model_is_loaded():
    decision = decide(None, "1")
    assert (decision.action, decision.version) == ("load", "1")
    assert "first model" in decision.reason


def test_nothing_to_load_before_the_alias_exists():
    decision = decide(None, None)
    assert decision.action == "wait" and "no version carries the alias" in decision.reason


def test_alias_gone_keeps_the_served_model():
    decision = decide("2", None)
    assert (decision.action, decision.version) == ("keep", "2")
    assert "gone" in decision.reason


def test_same_version_is_kept_unless_forced():
    assert decide("2", "2").action == "keep"
    forced = decide("2", "2", force=True)
    assert forced.action == "load" and "reloaded on request" in forced.reason


def test_moved_alias_loads_the_new_version():
    decision = decide("2", "3")
    assert (decision.action, decision.version) == ("load", "3")
    assert "moved from v2 to v3" in decision.reason


def test_a_failed_version_waits_for_the_retry_delay():
    failure = LoadFailure("3", NOW, "OSError: disk full")
    kept = decide("2", "3", failure=failure, now=NOW + dt.timedelta(seconds=59))
    assert kept.action == "keep" and kept.version == "2" and "disk full" in kept.reason
    waiting = decide(None, "3", failure=failure, now=NOW + dt.timedelta(seconds=10))
    assert waiting.action == "wait" and "nothing to serve" in waiting.reason
    assert decide("2", "3", failure=failure, now=NOW + dt.timedelta(seconds=61)).action == "load"
    assert decide("2", "3", failure=failure, force=True).action == "load"


def test_a_failure_of_another_version_does_not_block():
    failure = LoadFailure("3", NOW, "boom")
    assert decide("3", "4", failure=failure).action == "load"


def test_fast_path_on_when_compiled_and_equal():
    status = fast_path_status(None, 0.0, None)
    assert status.enabled and status.explain_enabled and status.reason is None


@pytest.mark.parametrize(
    ("compile_error", "parity", "expected"),
    [
        ("UnsupportedPipelineError: step 'x' is a KNNImputer", None, "refused the pipeline"),
        (None, None, "not checked"),
        (None, 10 * PARITY_TOLERANCE, "disagrees"),
        (None, float("nan"), "disagrees"),
    ],
)
def test_fast_path_off_says_why(compile_error, parity, expected):
    status = fast_path_status(compile_error, parity, None)
    assert not status.enabled and expected in status.reason
    assert not status.explain_enabled and "need the fast path" in status.explain_reason


def test_explainer_failure_turns_off_explanations_only():
    status = fast_path_status(None, 0.0, "ImportError: shap")
    assert status.enabled and not status.explain_enabled
    assert "shap" in status.explain_reason


def test_not_ready_before_the_first_poll_and_before_the_first_model():
    first = readiness(None, RegistryStatus(), "production", loading=None, last_failure=None)
    assert first.status_code == 503 and first.body["status"] == "not_ready"
    assert any("first poll" in p for p in first.body["problems"])
    loading = readiness(None, UP, "production", loading="3", last_failure=None)
    assert loading.status_code == 503 and "loading v3 in the background" in loading.body["problems"]
    empty = readiness(
        None, RegistryStatus().succeeded(NOW, None), "production", loading=None, last_failure=None
    )
    assert empty.status_code == 503
    assert any("no version carries the alias" in p for p in empty.body["problems"])


def test_ready_with_a_model():
    answer = readiness(served(), UP, "production", loading=None, last_failure=None)
    assert answer.status_code == 200
    assert answer.body["status"] == "ready" and answer.body["problems"] == []
    assert answer.body["registry"]["reachable"] is True


def test_registry_down_is_degraded_but_ready():
    answer = readiness(served(), DOWN, "production", loading=None, last_failure=None)
    assert answer.status_code == 200 and answer.body["status"] == "degraded"
    assert answer.body["registry"]["reachable"] is False
    [problem] = answer.body["problems"]
    assert "registry unreachable" in problem and "serving the last good model v3" in problem
    assert "ConnectionError" in problem


def test_registry_down_without_a_model_is_not_ready():
    answer = readiness(None, DOWN, "production", loading=None, last_failure=None)
    assert answer.status_code == 503 and "no model to serve" in answer.body["problems"][0]


def test_stale_version_and_failed_load_are_reported():
    behind = RegistryStatus().succeeded(NOW, "4")
    failure = LoadFailure("4", NOW, "OSError: no space")
    answer = readiness(served("3"), behind, "production", loading=None, last_failure=failure)
    assert answer.status_code == 200 and answer.body["status"] == "degraded"
    text = " | ".join(answer.body["problems"])
    assert "v4 failed to load: OSError: no space" in text
    assert "'production' is on v4; v3 served" in text


def test_slow_path_is_reported():
    answer = readiness(served(fast=False), UP, "production", loading=None, last_failure=None)
    assert answer.status_code == 200 and answer.body["status"] == "degraded"
    assert answer.body["problems"] == ["slow path: refused: X"]


def test_no_model_messages_say_what_to_do():
    assert "is loading" in no_model_message("production", "m", UP, "3")
    assert "MLFLOW_TRACKING_URI" in no_model_message("production", "m", DOWN, None)
    assert "train and promote" in no_model_message("production", "m", UP, None)
