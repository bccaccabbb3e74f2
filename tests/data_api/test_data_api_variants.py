"""The course's other behaviours, as options of the real server, and the lost-answer fault."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.data_api.server import running_data_api

pytestmark = pytest.mark.timeout(90)

COURSE = {
    "DATA_API_FIRST_BATCH_NUMBER": "0",
    "DATA_API_END_OF_DATA_MESSAGE": "Ya se recolectó toda la información minima necesaria",
    "DATA_API_INVALID_GROUP_STATUS": "400",
    "DATA_API_RESTART_ANSWER": "ok_list",
    "DATA_API_MIN_INTERVAL_SECONDS": "1.5",
    "DATA_API_WINDOW_MODE": "resample",
}


@pytest.fixture(scope="module")
def course() -> Iterator[httpx.Client]:
    with (
        running_data_api(scale=0.001, seed=3, env=COURSE) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def test_health_names_the_variant(course: httpx.Client) -> None:
    health = course.get("/health").json()
    assert (health["first_batch_number"], health["window_mode"]) == (0, "resample")


def test_inside_the_window_each_call_is_a_new_sample_under_the_same_number(
    course: httpx.Client,
) -> None:
    params = {"group_number": 4, "day": "window"}
    bodies = [course.get("/data", params=params) for _ in range(3)]
    assert [b.json()["batch_number"] for b in bodies] == [0, 0, 0]
    assert len({b.content for b in bodies}) == 3  # three different samples
    assert all(len(b.json()["data"]) == len(bodies[0].json()["data"]) for b in bodies)
    time.sleep(1.6)
    assert course.get("/data", params=params).json()["batch_number"] == 1


def test_numbers_run_from_zero_then_the_accentless_end(course: httpx.Client) -> None:
    params = {"group_number": 5, "day": "zero"}
    numbers = []
    for _ in range(6):
        numbers.append(course.get("/data", params=params).json()["batch_number"])
        time.sleep(1.55)
    assert numbers == [0, 1, 2, 3, 4, 5]
    end = course.get("/data", params=params)
    assert end.status_code == 400
    assert end.json() == {"detail": "Ya se recolectó toda la información minima necesaria"}
    assert course.get("/restart_data_generation", params=params).json() == ["ok"]
    assert course.get("/data", params=params).json()["batch_number"] == 0


@pytest.mark.parametrize("group", ["0", "11"])
def test_an_invalid_group_is_400_with_the_course_message(course: httpx.Client, group: str) -> None:
    response = course.get("/data", params={"group_number": group})
    assert response.status_code == 400
    assert response.json() == {"detail": "Número de grupo inválido"}


def test_lost_answer_moves_the_cursor_then_drops_the_answer() -> None:
    with (
        running_data_api(scale=0.001, seed=3) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        http.put("/admin/faults", json={"mode": "lost_answer", "first_n": 1}).raise_for_status()
        params = {"group_number": 1, "day": "lost"}
        lost = http.get("/data", params=params)
        assert lost.status_code == 502
        assert http.get("/data", params=params).json()["batch_number"] == 2  # batch 1 is gone
        assert http.get("/admin/faults").json()["faults_injected"] == 1
