"""A server configured only through DATA_API_* variables: faults and the minimum interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.data_api.server import running_data_api

pytestmark = pytest.mark.timeout(60)

ENV = {
    "DATA_API_MIN_INTERVAL_SECONDS": "1.0",
    "DATA_API_FAULT_MODE": "error500",
    "DATA_API_FAULT_FIRST_N": "1",
}


@dataclass
class Configured:
    http: httpx.Client
    faults_at_start: dict
    first_status: int  # status of the very first /data request


@pytest.fixture(scope="module")
def configured() -> Iterator[Configured]:
    with (
        running_data_api(scale=0.001, seed=3, env=ENV) as base_url,
        httpx.Client(base_url=base_url, timeout=30.0) as http,
    ):
        faults = http.get("/admin/faults").json()
        first = http.get("/data", params={"group_number": 1, "day": "faults"})
        yield Configured(http, faults, first.status_code)


def test_fault_settings_come_from_the_environment(configured: Configured) -> None:
    assert configured.faults_at_start["mode"] == "error500"
    assert configured.faults_at_start["first_n"] == 1
    assert configured.faults_at_start["timeout_seconds"] == 30.0
    assert configured.first_status == 500
    after = configured.http.get("/data", params={"group_number": 1, "day": "faults"})
    assert after.json()["batch_number"] == 1  # the faulted request did not advance


def test_requests_inside_the_interval_get_the_same_batch(configured: Configured) -> None:
    http = configured.http
    assert http.get("/health").json()["min_interval_seconds"] == 1.0
    params = {"group_number": 1, "day": "Tuesday"}
    first = http.get("/data", params=params)
    again = http.get("/data", params=params)
    assert first.json()["batch_number"] == again.json()["batch_number"] == 1
    assert again.content == first.content
    time.sleep(1.05)
    assert http.get("/data", params=params).json()["batch_number"] == 2
    # another cursor is not held back by this one
    assert http.get("/data", params={"group_number": 2}).json()["batch_number"] == 1
    # a restart starts over at once
    http.get("/restart_data_generation", params=params)
    assert http.get("/data", params=params).content == first.content
