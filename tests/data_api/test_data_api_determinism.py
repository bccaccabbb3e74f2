"""Same seed, same bytes (across processes); another seed, other bytes."""

from __future__ import annotations

import httpx
import pytest

from data_api.batches import encode_body
from data_api.scenarios import build_frame
from tests.data_api.server import running_data_api

pytestmark = pytest.mark.timeout(120)


def _first_batches(base_url: str, group: int, day: str, count: int) -> list[bytes]:
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        http.get("/restart_data_generation", params={"group_number": group, "day": day})
        return [
            http.get("/data", params={"group_number": group, "day": day}).content
            for _ in range(count)
        ]


def test_same_seed_gives_identical_bytes_across_processes(data_api_url: str) -> None:
    reference = _first_batches(data_api_url, 1, "Wednesday", 4)
    with running_data_api(scale=0.01, seed=7) as other:
        assert _first_batches(other, 1, "Wednesday", 4) == reference
    # the server's bytes are exactly the generator's; another seed gives other bytes
    for number, body in enumerate(reference, start=1):
        frame = build_frame(7, 0.01, 1, "Wednesday", number)
        assert body == encode_body(1, "Wednesday", number, frame)
        other_seed = build_frame(8, 0.01, 1, "Wednesday", number)
        assert body != encode_body(1, "Wednesday", number, other_seed)


def test_batches_differ_by_group_and_day() -> None:
    base = build_frame(7, 0.002, 1, "Tuesday", 1)
    assert base.equals(build_frame(7, 0.002, 1, "Tuesday", 1))
    assert not base.equals(build_frame(7, 0.002, 2, "Tuesday", 1))
    assert not base.equals(build_frame(7, 0.002, 1, "Wednesday", 1))


def test_encoding_is_stable_and_wrapped() -> None:
    frame = build_frame(7, 0.001, 3, "Día", 4)
    body = encode_body(3, "Día", 4, frame)
    assert body == encode_body(3, "Día", 4, build_frame(7, 0.001, 3, "Día", 4))
    assert body.startswith(b'{"group_number":3,"day":"D\\u00eda","batch_number":4,"data":[{')
    assert body.endswith(b"}]}")
