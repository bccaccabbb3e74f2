"""The serving process's parts, built once from the settings and started by the app's lifespan.

The :class:`~serving.watcher.ModelWatcher` (registry polls, background loads, atomic swaps),
the :class:`~serving.batcher.MicroBatcher` (concurrent requests share one predict call on one
worker thread), the inference log's writer and exporter threads, the shadow scorer
(``SERVING_SHADOW``: :mod:`serving.shadow`), the Prometheus metrics and the explainer's thread.
The routers (``serving/routes/``) answer from it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request

from serving.answers import answer, cents
from serving.batcher import Job, MicroBatcher
from serving.decisions import no_model_message
from serving.inference_export import InferenceExporter
from serving.inference_log import InferenceLogWriter, log_rows
from serving.metrics import ServingMetrics
from serving.monitor_metrics import LiveWindowCollector
from serving.predict_lane import Admission, Answer, ClientDisconnectedError, admit
from serving.settings import ServingSettings
from serving.shadow import ShadowScorer
from serving.state import LoadedModel
from serving.watcher import ModelWatcher
from tasks.core.logs import get_logger

log = get_logger("serving")


@dataclass
class Service:
    """Everything a route needs; :meth:`start` and :meth:`stop` run in the app's lifespan."""

    settings: ServingSettings
    metrics: ServingMetrics
    watcher: ModelWatcher
    batcher: MicroBatcher
    admission: Admission
    explain_pool: ThreadPoolExecutor
    writer: InferenceLogWriter | None = None
    exporter: InferenceExporter | None = None
    shadow: ShadowScorer | None = None

    async def start(self) -> None:
        self.watcher.start()
        if self.shadow is not None:
            self.shadow.start()
        if self.writer is not None and self.exporter is not None:
            self.writer.start()
            self.exporter.start()
        await self.batcher.start()
        settings = self.settings
        log.info(
            "serving.started",
            model_name=settings.model_name,
            alias=settings.model_alias,
            tracking_uri=settings.mlflow_tracking_uri,
            poll_interval_seconds=settings.poll_interval_seconds,
            inference_log=settings.inference_log_enabled,
            shadow=settings.shadow,
        )

    async def stop(self) -> None:
        await self.batcher.stop()
        self.watcher.stop()
        self.explain_pool.shutdown(wait=False, cancel_futures=True)
        if self.writer is not None and self.exporter is not None:
            await asyncio.to_thread(self.writer.stop)
            await asyncio.to_thread(self.exporter.stop)
        if self.shadow is not None:
            await asyncio.to_thread(self.shadow.stop)
        log.info("serving.stopped")

    def unavailable(self, request_id: str | None = None) -> Answer:
        """503 until a model is loaded, saying why (loading, registry down, no such alias)."""
        settings = self.settings
        message = no_model_message(
            settings.model_alias, settings.model_name, self.watcher.registry, self.watcher.loading
        )
        body: dict[str, Any] = {"detail": message}
        if request_id:
            body["request_id"] = request_id
        return answer(body, 503, {"Retry-After": "5"})

    async def body_of(self, request: Request) -> bytes | Answer:
        """A route's body, admitted as the lane admits it (415, 413 before reading it all)."""
        try:
            return await admit(
                self.admission,
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.receive,
            )
        except ClientDisconnectedError:
            return answer({"detail": "the client went away before its body arrived"}, 400)

    def warn(self, model: LoadedModel, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The out-of-distribution warnings of these records for this version, counted."""
        if model.ranges is None:
            return []
        found = model.ranges.check(features)
        for warning in found:
            self.metrics.input_warnings.labels(warning["feature"], warning["kind"]).inc()
        return found


def _inference_log(
    settings: ServingSettings, metrics: ServingMetrics
) -> tuple[InferenceLogWriter | None, InferenceExporter | None]:
    if not settings.inference_log_enabled:
        return None, None
    writer = InferenceLogWriter(
        settings.ledger_url,
        metrics,
        capacity=settings.inference_log_queue_rows,
        batch_rows=settings.inference_log_batch_rows,
        flush_seconds=settings.inference_log_flush_seconds,
        timeout_seconds=settings.inference_log_db_timeout_seconds,
    )
    exporter = InferenceExporter(writer, settings, metrics)
    return writer, exporter


def _shadow(
    settings: ServingSettings, metrics: ServingMetrics, watcher: ModelWatcher
) -> ShadowScorer | None:
    if not settings.shadow:
        return None
    return ShadowScorer(
        settings.ledger_url,
        metrics.registry,
        lambda: watcher.challenger,
        alias=settings.challenger_alias or "",
        sample=settings.shadow_sample,
        capacity=settings.shadow_queue,
        batch_rows=settings.shadow_batch_rows,
        flush_seconds=settings.inference_log_flush_seconds,
        timeout_seconds=settings.inference_log_db_timeout_seconds,
    )


def build_service(settings: ServingSettings) -> Service:
    """The parts, wired; nothing started yet."""
    metrics = ServingMetrics()
    metrics.registry.register(LiveWindowCollector.of(settings.ledger_url, settings.model_name))
    watcher = ModelWatcher(settings, metrics)
    writer, exporter = _inference_log(settings, metrics)
    shadow = _shadow(settings, metrics, watcher)

    def observe(model: LoadedModel, jobs: list[Job], prices: list[np.ndarray]) -> None:
        """After each predict call, on the worker thread: metrics and the inference log."""
        rows = sum(len(p) for p in prices)
        if not rows:
            return
        metrics.predictions.labels(model.version).inc(rows)
        metrics.micro_batch_rows.observe(rows)
        for batch in prices:
            for price in batch.tolist():
                metrics.predicted_price.observe(price)
        if writer is None and shadow is None:
            return
        paid = [cents(batch) for batch in prices]  # the prices the clients got
        if writer is not None:
            now = dt.datetime.now(dt.UTC)
            logged: list[dict[str, Any]] = []
            for job, batch in zip(jobs, paid, strict=True):
                logged += log_rows(
                    model.name, model.version, job.request_id, job.records, batch, now
                )
            writer.offer(logged)
        if shadow is not None:
            shadow.offer(model, [j.request_id for j in jobs], [j.records for j in jobs], paid)

    batcher = MicroBatcher(
        lambda: watcher.current,
        max_rows=settings.micro_batch_max_rows,
        max_wait_seconds=settings.micro_batch_max_wait_ms / 1000,
        observer=observe,
    )
    return Service(
        settings=settings,
        metrics=metrics,
        watcher=watcher,
        batcher=batcher,
        admission=Admission(settings.body_limit, "SERVING_MAX_BODY_BYTES"),
        explain_pool=ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain"),
        writer=writer,
        exporter=exporter,
        shadow=shadow,
    )
