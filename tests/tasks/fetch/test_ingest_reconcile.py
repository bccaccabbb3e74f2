"""Every behaviour of the course's API, replayed over real HTTP, reconciled row by row.

A recording proxy in front of the real simulator counts what was served; the fetch task
stores it (file:// lake, SQLite ledger); :func:`tests.tasks.fetch.reconcile.reconcile` checks rows
served = rows in the raw zone = rows in the ledger, per delivery and in total, with the
rejected, redelivered, duplicate and gap deliveries accounted for by outcome and reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasks.core.api_client import ApiError, RetryPolicy, fetch_batch
from tasks.core.ledger import BatchRecord, Ledger
from tasks.core.lifecycle_ledger import record_batch_record
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tasks.fetch.ingest import DeliveryRefusedError
from tasks.fetch.step import FetchBlockedError, FetchInputs, run
from tasks.replay import step as replay
from tests.data_api.server import running_data_api
from tests.support.recording_proxy import RecordingProxy, recording_proxy
from tests.tasks.fetch.reconcile import reconcile

SCALE = 0.002
FIGURES: dict[str, Any] = {}
COURSE = {
    "DATA_API_FIRST_BATCH_NUMBER": "0",
    "DATA_API_END_OF_DATA_MESSAGE": "Ya se recolectó toda la información minima necesaria",
    "DATA_API_INVALID_GROUP_STATUS": "400",
    "DATA_API_RESTART_ANSWER": "ok_list",
}


@contextmanager
def api(env: dict[str, str] | None = None) -> Iterator[RecordingProxy]:
    with running_data_api(scale=SCALE, seed=5, env=env) as url, recording_proxy(url) as proxy:
        yield proxy


def settings_for(proxy_url: str, tmp_path: Path, **extra: Any) -> TaskSettings:
    return TaskSettings(
        _env_file=None,
        data_api_url=proxy_url,
        group_number=1,
        day="Tuesday",
        storage_url=f"file://{tmp_path / 'lake'}",
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        xcom_return_path=tmp_path / "return.json",
        fetch_attempts=3,
        fetch_backoff_initial_seconds=0.01,
        fetch_backoff_max_seconds=0.05,
        fetch_persist_seconds=2,
        **extra,
    )


def fetch(settings: TaskSettings, **inputs: Any) -> dict[str, Any] | Exception:
    try:
        return run(FetchInputs(**inputs), settings)
    except Exception as exc:
        return exc


def fetch_until_exhausted(settings: TaskSettings, limit: int = 12) -> list[dict[str, Any]]:
    results = []
    for _ in range(limit):
        result = fetch(settings)
        assert isinstance(result, dict), result
        results.append(result)
        if result["status"] == "exhausted":
            return results
    raise AssertionError(f"never exhausted: {results}")


def check(name: str, proxy: RecordingProxy, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.open(settings.ledger_url)
    figure = reconcile(proxy.data_answers(), ledger, open_store(settings.storage_url))
    FIGURES[name] = figure
    print(f"\nRECONCILE {name}: {json.dumps(figure)}")
    return figure


def test_per_call_cursor_then_a_replay_of_duplicates(tmp_path: Path):
    with api() as proxy:
        settings = settings_for(proxy.url, tmp_path)
        first = fetch_until_exhausted(settings)
        assert [r["batch_number"] for r in first[:-1]] == [1, 2, 3, 4, 5, 6]
        assert {r["status"] for r in first[:-1]} == {"stored"}
        replayed = replay.run(replay.ReplayInputs(), settings)
        assert replayed["api"]["ok"] is True
        again = fetch_until_exhausted(settings)
        assert [r["status"] for r in again[:-1]] == ["duplicate"] * 6
        assert [r["batch_id"] for r in again[:-1]] == [r["batch_id"] for r in first[:-1]]
        figure = check("per_call_with_replay", proxy, settings)
    assert figure["by_outcome"]["stored"]["deliveries"] == 6
    assert figure["by_outcome"]["duplicate"]["deliveries"] == 6


def test_course_variant_batches_from_zero_accentless_end_400_group_ok_restart(tmp_path: Path):
    with api(COURSE) as proxy:
        settings = settings_for(proxy.url, tmp_path)
        results = fetch_until_exhausted(settings)
        assert [r["batch_number"] for r in results[:-1]] == [0, 1, 2, 3, 4, 5]
        assert results[-1]["detail"].endswith("minima necesaria")
        with pytest.raises(ApiError, match=r"refused group 11.*Número de grupo inválido") as err:
            fetch_batch(
                proxy.url, 11, "Tuesday", timeout=httpx.Timeout(5.0), retry=RetryPolicy(3, 0, 0)
            )
        assert "\n" not in str(err.value)
        assert len([a for a in proxy.answers if "group_number=11" in a.path]) == 1  # no retry
        assert replay.run(replay.ReplayInputs(), settings)["api"] == ["ok"]
        assert fetch(settings)["status"] == "duplicate"
        figure = check("course_variant", proxy, settings)
    assert figure["by_outcome"]["stored"]["deliveries"] == 6


def test_time_window_resamples_are_deliveries_of_their_own(tmp_path: Path):
    env = {"DATA_API_MIN_INTERVAL_SECONDS": "3", "DATA_API_WINDOW_MODE": "resample"}
    with api(env) as proxy:
        settings = settings_for(proxy.url, tmp_path)
        inside = [fetch(settings) for _ in range(3)]
        assert [r["batch_number"] for r in inside] == [1, 1, 1]
        assert [r["delivery"] for r in inside] == [1, 2, 3]
        assert [r["outcome"] for r in inside] == ["stored", "redelivery", "redelivery"]
        assert len({r["batch_id"] for r in inside}) == 3  # each goes through the pipeline
        assert len({r["sha256"] for r in inside}) == 3
        time.sleep(3.1)
        after = fetch(settings)
        assert (after["batch_number"], after["delivery"]) == (2, 1)
        figure = check("time_window_resample", proxy, settings)
    assert figure["by_outcome"]["redelivery"]["deliveries"] == 2


def test_an_answer_lost_after_the_api_moved_on_is_a_recorded_gap_that_blocks(tmp_path: Path):
    with api() as proxy:
        settings = settings_for(proxy.url, tmp_path)
        httpx.put(
            f"{proxy.upstream}/admin/faults", json={"mode": "lost_answer", "first_n": 1}
        ).raise_for_status()
        gap = fetch(settings)  # batch 1 is lost on the way; the retry gets batch 2
        assert isinstance(gap, DeliveryRefusedError)
        assert "gap: expected batch 0 or 1, got 2" in str(gap)
        ledger = Ledger.open(settings.ledger_url)
        (incident,) = ledger.open_incidents(1, "Tuesday")
        assert (incident.outcome, incident.batch_number) == ("gap", 2)
        assert incident.batch_id is not None  # batch 2 is stored, nothing of it lost
        blocked = fetch(settings)  # an Airflow retry cannot move on to batch 3
        assert isinstance(blocked, FetchBlockedError)
        assert "open incident" in str(blocked)
        assert replay.run(replay.ReplayInputs(), settings)["resolved_incidents"] == [incident.id]
        results = fetch_until_exhausted(settings)
        assert [(r["batch_number"], r["status"]) for r in results[:2]] == [
            (1, "stored"),
            (2, "duplicate"),
        ]
        assert {b.batch_number for b in ledger.batches()} == {1, 2, 3, 4, 5, 6}
        figure = check("lost_answer_gap", proxy, settings)
    assert figure["by_outcome"]["gap"]["deliveries"] == 1


def test_a_gap_can_be_accepted_by_a_person_and_reading_goes_on(tmp_path: Path):
    with api() as proxy:
        settings = settings_for(proxy.url, tmp_path)
        httpx.put(
            f"{proxy.upstream}/admin/faults", json={"mode": "lost_answer", "first_n": 1}
        ).raise_for_status()
        assert isinstance(fetch(settings), DeliveryRefusedError)
        accepted = fetch(settings, resolve_incidents="batch 1 is not needed")
        # the accepted batch 2 goes through the pipeline first, then the API is asked for 3
        assert (accepted["batch_number"], accepted["outcome"]) == (2, "accepted")
        assert len(accepted["resolved"]) == 1
        ledger = Ledger.open(settings.ledger_url)
        record_batch_record(ledger, BatchRecord(batch_id=accepted["batch_id"]))  # its run ended
        following = fetch(settings)
        assert (following["batch_number"], following["status"]) == (3, "stored")
        check("gap_accepted", proxy, settings)
