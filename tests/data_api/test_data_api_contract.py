"""The course's contract, against a real server (scale 0.01, seed 7)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
import pytest

from data_api.scenarios import SCENARIOS

pytestmark = pytest.mark.timeout(60)

END_OF_DATA = {"detail": "Ya se recolectó toda la información mínima necesaria"}
FLOAT_FIELDS = (
    "brokered_by",
    "price",
    "bed",
    "bath",
    "acre_lot",
    "street",
    "zip_code",
    "house_size",
)
STRING_FIELDS = ("status", "city", "state", "prev_sold_date")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _refuse_constant(token: str) -> object:
    raise AssertionError(f"non-JSON token {token} on the wire")


def parse(response: httpx.Response) -> dict:
    """Strict JSON: NaN / Infinity are refused."""
    return json.loads(response.content, parse_constant=_refuse_constant)


def get_batch(client: httpx.Client, group: int, day: str) -> httpx.Response:
    return client.get("/data", params={"group_number": group, "day": day})


def all_batches(client: httpx.Client, group: int, day: str) -> list[dict]:
    client.get("/restart_data_generation", params={"group_number": group, "day": day})
    return [parse(get_batch(client, group, day)) for _ in SCENARIOS]


def test_health_reports_seed_scale_and_batches(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["seed"] == 7
    assert body["scale"] == pytest.approx(0.01)
    assert body["batches"] == 6


def test_response_shape_and_wire_types(client: httpx.Client, fresh_day: Callable[[], str]) -> None:
    day = fresh_day()
    for batch in all_batches(client, 1, day):
        assert list(batch) == ["group_number", "day", "batch_number", "data"]
        assert batch["group_number"] == 1
        assert batch["day"] == day
        assert batch["data"], "a batch is never empty"
        for record in batch["data"]:
            assert set(record) == set(FLOAT_FIELDS) | set(STRING_FIELDS)
            for name in FLOAT_FIELDS:
                value = record[name]
                assert value is None or type(value) is float, (name, value)
            for name in STRING_FIELDS:
                value = record[name]
                assert value is None or type(value) is str, (name, value)
            if record["prev_sold_date"] is not None:
                assert DATE.match(record["prev_sold_date"])
            assert record["status"] in {"for_sale", "sold", "ready_to_build"}


def test_media_type_and_no_nan_token(client: httpx.Client, fresh_day: Callable[[], str]) -> None:
    day = fresh_day()
    for _ in SCENARIOS:
        response = get_batch(client, 2, day)
        assert response.headers["content-type"] == "application/json"
        assert b"NaN" not in response.content
        assert b"Infinity" not in response.content
        parse(response)


def test_cursor_advances_through_six_batches_then_400(
    client: httpx.Client, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    numbers = [parse(get_batch(client, 3, day))["batch_number"] for _ in range(6)]
    assert numbers == [1, 2, 3, 4, 5, 6]
    for _ in range(2):  # stays at the end
        response = get_batch(client, 3, day)
        assert response.status_code == 400
        assert response.json() == END_OF_DATA


def test_cursors_are_independent_per_group_and_day(
    client: httpx.Client, fresh_day: Callable[[], str]
) -> None:
    day_a, day_b = fresh_day(), fresh_day()
    assert parse(get_batch(client, 4, day_a))["batch_number"] == 1
    assert parse(get_batch(client, 4, day_a))["batch_number"] == 2
    assert parse(get_batch(client, 5, day_a))["batch_number"] == 1
    assert parse(get_batch(client, 4, day_b))["batch_number"] == 1
    assert parse(get_batch(client, 4, day_a))["batch_number"] == 3


def test_default_day_is_tuesday(client: httpx.Client) -> None:
    client.get("/restart_data_generation", params={"group_number": 10})
    first = parse(client.get("/data", params={"group_number": 10}))
    assert first["day"] == "Tuesday"
    assert first["batch_number"] == 1
    response = client.get("/restart_data_generation", params={"group_number": 10})
    assert response.json() == {"ok": True, "group_number": 10, "day": "Tuesday"}


def test_restart_resets_the_cursor_and_replays_identical_bytes(
    client: httpx.Client, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    first = get_batch(client, 6, day).content
    get_batch(client, 6, day)
    response = client.get("/restart_data_generation", params={"group_number": 6, "day": day})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    replay = get_batch(client, 6, day)
    assert parse(replay)["batch_number"] == 1
    assert replay.content == first


def test_restart_only_touches_its_own_cursor(
    client: httpx.Client, fresh_day: Callable[[], str]
) -> None:
    day = fresh_day()
    get_batch(client, 7, day)
    get_batch(client, 8, day)
    client.get("/restart_data_generation", params={"group_number": 7, "day": day})
    assert parse(get_batch(client, 8, day))["batch_number"] == 2


@pytest.mark.parametrize("group", ["0", "11", "-1", "abc", "1.5"])
def test_invalid_group_is_422(client: httpx.Client, group: str) -> None:
    assert client.get("/data", params={"group_number": group}).status_code == 422
    response = client.get("/restart_data_generation", params={"group_number": group})
    assert response.status_code == 422


def test_missing_group_is_422(client: httpx.Client) -> None:
    assert client.get("/data").status_code == 422


def test_row_counts_follow_scale(client: httpx.Client, fresh_day: Callable[[], str]) -> None:
    described = client.get("/scenarios").json()["batches"]
    expected = [max(1, round(s.base_rows * 0.01)) for s in SCENARIOS]
    assert [b["rows"] for b in described] == expected == [740, 950, 2300, 40, 3210, 3610]
    assert [b["base_rows"] for b in described] == [74_000, 95_000, 230_000, 4_000, 321_000, 361_000]
    batches = all_batches(client, 9, fresh_day())
    assert [len(b["data"]) for b in batches] == expected


def test_the_six_scenarios_are_visible(client: httpx.Client, fresh_day: Callable[[], str]) -> None:
    b1, b2, b3, b4, b5, b6 = (b["data"] for b in all_batches(client, 1, fresh_day()))
    assert {r["status"] for r in b1} == {"for_sale"}
    assert {r["status"] for r in b2} == {"for_sale"}
    assert {r["status"] for r in b3} == {"sold"}
    # sold rows carry the sale date, always within Oct 2021 - May 2022
    assert all("2021-10-01" <= r["prev_sold_date"] <= "2022-05-31" for r in b3)
    assert {r["state"] for r in b4} == {"Vermont"}
    assert all(r["price"] is not None and r["price"] >= 300_000 for r in b5)
    assert len({r["status"] for r in b6}) >= 2
    prices = {r["price"] for r in b6}
    assert 0.0 in prices
    assert 2_147_483_600.0 in prices
    assert 1_040_400_400.0 in {r["house_size"] for r in b6}
    assert 473.0 in {r["bed"] for r in b6}
    assert 830.0 in {r["bath"] for r in b6}
    assert 100_000.0 in {r["acre_lot"] for r in b6}
    # the second batch's state mix drifts toward the Sun Belt
    sunbelt = {"Florida", "Texas", "Arizona", "Georgia"}
    share = [sum(r["state"] in sunbelt for r in b) / len(b) for b in (b1, b2)]
    assert share[1] > share[0]


def test_zip_codes_are_tied_to_states(client: httpx.Client, fresh_day: Callable[[], str]) -> None:
    batches = all_batches(client, 2, fresh_day())
    zips: dict[str, set[float]] = {}
    for batch in batches:
        for r in batch["data"]:
            if r["state"] and r["zip_code"] is not None:
                zips.setdefault(r["state"], set()).add(r["zip_code"])
    assert all(90_000 <= z < 96_200 for z in zips["California"])
    assert all(5_000 <= z < 6_000 for z in zips["Vermont"])  # leading zero lost: 05xxx
    assert sum(len(v) for v in zips.values()) > 1_000  # high cardinality
