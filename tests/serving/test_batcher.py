"""Micro-batching with a real fitted model: shared calls, prices routed back, faults isolated."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from serving.batcher import MicroBatcher, NoModelError
from serving.loader import WARMUP_RECORDS

RECORDS = [dict(r) for r in WARMUP_RECORDS]


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_calls_and_get_their_own_prices(local_model):
    calls: list[int] = []

    def observer(model, jobs, prices):
        calls.append(sum(len(p) for p in prices))

    async def scenario():
        batcher = MicroBatcher(lambda: local_model, max_rows=64, observer=observer)
        await batcher.start()
        try:
            requests = [[RECORDS[i % len(RECORDS)]] for i in range(40)]
            answers = await asyncio.gather(
                *(batcher.predict(records, f"r{i}") for i, records in enumerate(requests))
            )
        finally:
            await batcher.stop()
        return requests, answers

    requests, answers = run(scenario())
    alone = local_model.predict_native(RECORDS)
    for records, answer in zip(requests, answers, strict=True):
        index = RECORDS.index(records[0])
        assert answer.model is local_model
        assert answer.prices.shape == (1,)
        assert answer.prices[0] == pytest.approx(alone[index], rel=1e-9)
    assert sum(calls) == 40
    assert len(calls) < 40, f"no request was batched with another: {calls}"


def test_a_failing_request_does_not_fail_its_neighbours(local_model):
    bad = {**RECORDS[0], "house_size": float("inf")}  # the model itself refuses infinity

    async def scenario():
        batcher = MicroBatcher(lambda: local_model, max_rows=64, max_wait_seconds=0.01)
        await batcher.start()
        try:
            return await asyncio.gather(
                batcher.predict([RECORDS[0]], "good-1"),
                batcher.predict([bad], "bad"),
                batcher.predict(RECORDS, "good-2"),
                return_exceptions=True,
            )
        finally:
            await batcher.stop()

    good, failed, many = run(scenario())
    assert isinstance(failed, ValueError)
    assert good.prices.shape == (1,) and many.prices.shape == (len(RECORDS),)
    assert np.all(np.isfinite(many.prices))


def test_no_model_is_an_error_of_its_own():
    async def scenario():
        batcher = MicroBatcher(lambda: None, max_rows=8)
        await batcher.start()
        try:
            await batcher.predict([RECORDS[0]], "r")
        finally:
            await batcher.stop()

    with pytest.raises(NoModelError):
        run(scenario())
