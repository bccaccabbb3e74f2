"""Fault injection on /data: faulted requests never advance a cursor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

Configure = Callable[..., dict[str, object]]


def get(client: httpx.Client, group: int, day: str) -> httpx.Response:
    return client.get("/data", params={"group_number": group, "day": day})


def test_first_n_error500_then_recovers_without_losing_a_batch(
    client: httpx.Client, faults: Configure, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    faults(mode="error500", first_n=2)
    assert get(client, 1, day).status_code == 500
    assert get(client, 1, day).status_code == 500
    ok = get(client, 1, day)
    assert ok.status_code == 200
    assert ok.json()["batch_number"] == 1
    assert get(client, 1, day).json()["batch_number"] == 2
    state = client.get("/admin/faults").json()
    assert state["mode"] == "error500"
    assert state["faults_injected"] == 2
    assert state["data_requests"] == 4


def test_malformed_is_a_200_that_does_not_parse(
    client: httpx.Client, faults: Configure, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    faults(mode="malformed", first_n=1)
    bad = get(client, 2, day)
    assert bad.status_code == 200
    assert bad.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.content)
    good = get(client, 2, day)
    assert good.json()["batch_number"] == 1
    assert good.content.startswith(bad.content)  # the truncated body of the same batch


def test_timeout_sleeps_then_fails_without_advancing(
    client: httpx.Client, faults: Configure, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    faults(mode="timeout", first_n=1, timeout_seconds=0.6)
    started = time.monotonic()
    slow = get(client, 3, day)
    assert time.monotonic() - started >= 0.6
    assert slow.status_code == 504
    faults(mode="timeout", first_n=1, timeout_seconds=2.0)
    with pytest.raises(httpx.ReadTimeout):  # what a client with a short timeout sees
        client.get("/data", params={"group_number": 3, "day": day}, timeout=0.3)
    faults(mode="none")
    assert get(client, 3, day).json()["batch_number"] == 1


def test_rate_faults_keep_the_sequence_gapless_and_are_seeded(
    client: httpx.Client, faults: Configure, fresh_day: Callable[[], str]
) -> None:
    def run() -> list[tuple[int, int | None]]:
        day = fresh_day()
        faults(mode="error500", rate=0.5)
        outcomes = []
        for _ in range(16):
            response = get(client, 4, day)
            number = response.json()["batch_number"] if response.status_code == 200 else None
            outcomes.append((response.status_code, number))
        return outcomes

    outcomes = run()
    assert outcomes == run()  # reseeded on each configuration: the same pattern
    codes = [code for code, _ in outcomes]
    assert 3 <= codes.count(500) <= 13
    served = [number for code, number in outcomes if code == 200]
    assert served == list(range(1, len(served) + 1))  # no batch skipped by a fault
    after_last = [code for code, _ in outcomes if code != 500][6:]
    assert all(code == 400 for code in after_last)


def test_faults_apply_only_to_data(
    client: httpx.Client, faults: Configure, fresh_day: Callable[[], str]
) -> None:
    faults(mode="error500", rate=1.0)
    assert client.get("/health").status_code == 200
    assert client.get("/scenarios").status_code == 200
    params = {"group_number": 5, "day": fresh_day()}
    assert client.get("/restart_data_generation", params=params).status_code == 200
    assert client.get("/data", params=params).status_code == 500


def test_invalid_fault_config_is_refused(client: httpx.Client) -> None:
    assert client.put("/admin/faults", json={"mode": "explode"}).status_code == 422
    assert client.put("/admin/faults", json={"mode": "error500", "rate": 2}).status_code == 422
    assert client.get("/admin/faults").json()["mode"] == "none"
