"""The hot path: POST /predict answered by the ASGI lane is the FastAPI route's answer, byte
for byte; a model swap freezes the heap so full garbage collections stop scanning the model.

The lane (serving/predict_lane.py) takes /predict before routing; the route stays declared for
OpenAPI. Both call the same handler: here the same bodies go through the whole app (lane) and
through the same app built without the lane (the route), before any model is loaded, so every
answer is decided by parsing and the no-model rule, and must be the same.
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.predict_lane import (
    Admission,
    BodyTooLargeError,
    ClientDisconnectedError,
    PredictLane,
    read_body,
)
from serving.watcher import settle_heap
from tests.serving.test_app import RECORD, settings

BODIES = {
    "one record": json.dumps(RECORD),
    "a list": json.dumps([RECORD, {**RECORD, "bed": None}]),
    "a bad field": json.dumps({**RECORD, "bed": -1}),
    "an unknown field": json.dumps({**RECORD, "garage": 2}),
    "a bad field in a list": json.dumps([RECORD, {**RECORD, "zip_code": "1234"}]),
    "too many records": json.dumps([RECORD] * 6),
    "an empty list": "[]",
    "not JSON": "{bed: 3",
    "NaN": '{"bed": NaN}',
    "a number": "42",
    "an empty record": "{}",
    "a boolean for a number": json.dumps({**RECORD, "bed": True}),
    "a status not in the data": json.dumps({**RECORD, "status": "foo"}),
    "a long text": json.dumps({**RECORD, "city": "x" * 5000}),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_the_lane_answers_as_the_route_does(tmp_path: Path, name: str):
    with_lane, without_lane = create_app(settings(tmp_path)), create_app(settings(tmp_path))
    without_lane.user_middleware = [
        m for m in without_lane.user_middleware if m.cls is not PredictLane
    ]  # the stack is built at the first request, so the route answers /predict itself
    assert PredictLane in [m.cls for m in with_lane.user_middleware]
    lane, route = TestClient(with_lane), TestClient(without_lane)
    headers = {"content-type": "application/json", "x-request-id": "req-1"}
    a = lane.post("/predict", content=BODIES[name], headers=headers)
    b = route.post("/predict", content=BODIES[name], headers=headers)
    assert a.status_code == b.status_code
    assert a.status_code in {413, 422, 503}
    assert a.content == b.content
    for header in ("content-type", "content-length", "retry-after", "x-request-id"):
        assert a.headers.get(header) == b.headers.get(header)


def _chunks(size: int):
    yield b'{"city": "'
    for _ in range(size // 1000):
        yield b"x" * 1000
    yield b'"}'


#: (content type, body, what the answer must say); the body cap is 3,000 bytes here
REFUSED = {
    "text/plain": ("text/plain", json.dumps(RECORD), 415, "Content-Type 'text/plain'"),
    "form": ("application/x-www-form-urlencoded", "bed=3", 415, "application/json"),
    "too long by Content-Length": (
        "application/json",
        json.dumps({**RECORD, "city": "x" * 4000}),
        413,
        "larger than 3,000 bytes (SERVING_MAX_BODY_BYTES)",
    ),
    "too long, chunked": (
        "application/json",
        _chunks,
        413,
        "larger than 3,000 bytes (SERVING_MAX_BODY_BYTES)",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_the_lane_refuses_as_the_route_does_before_parsing(tmp_path: Path, name: str):
    content_type, body, status, says = REFUSED[name]
    with_lane = create_app(settings(tmp_path, max_body_bytes=3000))
    without_lane = create_app(settings(tmp_path, max_body_bytes=3000))
    without_lane.user_middleware = [
        m for m in without_lane.user_middleware if m.cls is not PredictLane
    ]
    answers = []
    for app in (with_lane, without_lane):
        content = body(100_000) if callable(body) else body  # a generator is sent chunked
        answers.append(
            TestClient(app).post(
                "/predict", content=content, headers={"content-type": content_type}
            )
        )
    a, b = answers
    assert a.status_code == b.status_code == status
    assert a.content == b.content
    assert says in a.json()["detail"]


def test_what_counts_as_json():
    from serving.predict_lane import is_json

    for accepted in (
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ):
        assert is_json(accepted), accepted
    for refused in ("text/plain", "application/jsonp", "text/json", "", "multipart/form-data"):
        assert not is_json(refused), refused


def test_the_lane_counts_its_requests_under_the_route_template(tmp_path: Path):
    client = TestClient(create_app(settings(tmp_path)))
    assert client.post("/predict", content="[]").status_code == 422
    assert client.get("/predict").status_code == 405  # not the lane's: FastAPI answers
    metrics = client.get("/metrics").text
    assert 'realtor_http_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in (
        metrics
    )
    assert 'realtor_http_requests_total{endpoint="/predict",method="GET",status="405"} 1.0' in (
        metrics
    )


def test_a_body_in_several_messages_and_a_client_that_leaves():
    asyncio.run(body_and_leaving())


async def body_and_leaving() -> None:
    messages = [
        {"type": "http.request", "body": b'{"bed"', "more_body": True},
        {"type": "http.request", "body": b": 3}", "more_body": False},
    ]

    async def receive():
        return messages.pop(0)

    assert await read_body(receive) == b'{"bed": 3}'

    chunked = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 3

    async def endless():
        return chunked.pop(0)

    with pytest.raises(BodyTooLargeError):  # stops at the second chunk, never reads the third
        await read_body(endless, limit=1000)
    assert len(chunked) == 1

    async def gone():
        return {"type": "http.disconnect"}

    with pytest.raises(ClientDisconnectedError):
        await read_body(gone)

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def handler(body, request_id):  # pragma: no cover - must not be called
        raise AssertionError("a client that left must not be answered")

    admission = Admission(1000, "SERVING_MAX_BODY_BYTES")
    lane = PredictLane(None, path="/predict", handler=handler, route=None, admission=admission)
    scope = {"type": "http", "path": "/predict", "method": "POST", "headers": []}
    await lane(scope, gone, send)
    assert sent == []


class _Cycle:
    """Garbage only the cyclic collector can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


def test_a_swap_freezes_the_heap_and_still_frees_what_it_replaced():
    """After a swap the live objects are frozen (full collections stop scanning the model), and
    the next swap's collection still frees the cycles of what the previous one froze."""
    gc.unfreeze()
    survivor = _Cycle()
    gone = weakref.ref(survivor)
    settle_heap()
    assert gc.get_freeze_count() > 1000
    del survivor  # a cycle among frozen objects: no collection sees it until unfrozen
    gc.collect()
    assert gone() is not None
    settle_heap()
    assert gone() is None
    gc.unfreeze()
