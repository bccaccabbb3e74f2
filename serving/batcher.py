"""Micro-batching: concurrent /predict requests share one predict call on one worker thread.

Each request puts its records and a future on an asyncio queue. One collector task takes the
first waiting request, adds every request already queued (and, with ``max_wait_seconds``,
those arriving shortly after) up to ``max_rows`` rows, and runs one predict call for all of
them on a single worker thread; the prices are then split back per request. While the worker
predicts, new requests queue up, so batches grow exactly when the service is busy and a lone
request never waits for company (``max_wait_seconds=0``).

Every call reads the served model once (``get_model()``), so all requests of a batch get the
same version. If a combined call fails, each request is predicted alone, so one bad request
cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.state import LoadedModel
from tasks.core.logs import get_logger

log = get_logger("serving.batcher")


class NoModelError(RuntimeError):
    """No model is loaded yet (HTTP 503)."""


@dataclass(frozen=True)
class Prediction:
    """The prices of one request's records, and the version that produced them."""

    model: LoadedModel
    prices: np.ndarray


@dataclass
class Job:
    """One request waiting in the queue."""

    records: list[dict[str, Any]]
    request_id: str
    future: asyncio.Future[Prediction]


#: Called on the worker thread after each predict call: (model, jobs, prices per job).
Observer = Callable[[LoadedModel, list[Job], list[np.ndarray]], None]


class MicroBatcher:
    """Collects concurrent requests into predict calls on one worker thread."""

    def __init__(
        self,
        get_model: Callable[[], LoadedModel | None],
        *,
        max_rows: int,
        max_wait_seconds: float = 0.0,
        observer: Observer | None = None,
    ) -> None:
        self._get_model = get_model
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._observer = observer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._collect(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, records: list[dict[str, Any]], request_id: str) -> Prediction:
        """The prices of ``records`` (raises :class:`NoModelError` before the first model)."""
        if self._queue is None:
            raise RuntimeError("the micro-batcher is not started (the app's lifespan starts it)")
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(records, request_id, future))
        return await future

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch(loop)
            try:
                results = await loop.run_in_executor(self._executor, self._run, jobs)
            except Exception as exc:  # _run handles per-job errors; this is a last resort
                results = [exc] * len(jobs)
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> list[Job]:
        assert self._queue is not None
        jobs = [await self._queue.get()]
        rows = len(jobs[0].records)
        deadline = loop.time() + self._max_wait
        while rows < self._max_rows:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            rows += len(job.records)
        return jobs

    def _run(self, jobs: list[Job]) -> list[Prediction | BaseException]:
        """On the worker thread: one predict call for every job (or one each if it fails)."""
        model = self._get_model()
        if model is None:
            return [NoModelError("no model loaded yet")] * len(jobs)
        started = time.perf_counter()
        rows = [record for job in jobs for record in job.records]
        per_job: list[np.ndarray | BaseException]
        try:
            prices = model.predict(rows)
            bounds = np.cumsum([0] + [len(job.records) for job in jobs])
            per_job = [prices[a:b] for a, b in itertools.pairwise(bounds)]
        except Exception as exc:
            if len(jobs) == 1:
                log.exception("predict.failed", rows=len(rows), version=model.version)
                per_job = [exc]
            else:
                per_job = [self._run_one(model, job) for job in jobs]
        if self._observer is not None:
            ok = [
                (job, p) for job, p in zip(jobs, per_job, strict=True) if isinstance(p, np.ndarray)
            ]
            try:
                self._observer(model, [j for j, _ in ok], [p for _, p in ok])
            except Exception:
                log.exception("predict.observer_failed")
        log.debug(
            "predict.batch",
            jobs=len(jobs),
            rows=len(rows),
            ms=(time.perf_counter() - started) * 1e3,
        )
        return [p if isinstance(p, BaseException) else Prediction(model, p) for p in per_job]

    @staticmethod
    def _run_one(model: LoadedModel, job: Job) -> np.ndarray | BaseException:
        try:
            return model.predict(job.records)
        except Exception as exc:
            log.exception("predict.failed", rows=len(job.records), version=model.version)
            return exc
