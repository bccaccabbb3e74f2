"""Shadow scoring: the challenger scores a sample of live requests, off the request path.

With ``SERVING_SHADOW=true`` the watcher holds the version carrying the challenger alias
(``challenger`` unless ``SERVING_CHALLENGER_ALIAS`` says otherwise; train sets it on every
version it registers). After each predict call the predict worker offers a sampled share
(``SERVING_SHADOW_SAMPLE``) of the requests it just answered to a bounded buffer
(``SERVING_SHADOW_QUEUE`` rows, :class:`serving.inference_log.RowBuffer`: one lock, never
blocks); when it is full the rows are dropped and counted. One thread of its own takes them in
batches, scores them with the challenger (its fast path, one call per batch) and writes
``shadow_predictions`` rows to the ledger beside the price production answered.

Answers always come from production: nothing here runs before an answer is sent, and nothing
here can change one. A challenger that fails (an exception, a price that is not finite) is
counted (``realtor_shadow_failures_total``) and logged; no request pays for it. When the
challenger is the production version (a promoted challenger keeps its alias) nothing is
shadowed: comparing a version with itself says nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from serving.answers import cents
from serving.errors import describe
from serving.inference_log import RowBuffer, make_engine
from serving.state import LoadedModel
from tasks.core.ledger import ShadowPrediction, migrate
from tasks.core.logs import get_logger

log = get_logger("serving.shadow")

#: Seconds between two log lines about dropped or failed rows (the metrics count every row).
REPORT_INTERVAL = 10.0
DROP_REASONS = ("queue_full", "db_error", "no_challenger")


class ShadowMetrics:
    """The shadow's Prometheus series, registered in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scored = Counter(
            "realtor_shadow_scored_total",
            "Live rows the shadow challenger scored and the ledger recorded",
            registry=registry,
        )
        self.dropped = Counter(
            "realtor_shadow_dropped_total",
            "Sampled rows never scored: queue_full (the shadow is behind), db_error (ledger "
            "down), no_challenger (the challenger went away before its turn)",
            ["reason"],
            registry=registry,
        )
        self.failures = Counter(
            "realtor_shadow_failures_total",
            "Rows the shadow challenger failed to score (an exception or a non-finite price)",
            registry=registry,
        )
        self.queue = Gauge(
            "realtor_shadow_queue_rows", "Rows waiting for the shadow scorer", registry=registry
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason)


def shadow_state(challenger: LoadedModel | None, production: LoadedModel | None) -> str | None:
    """Why nothing is shadowed now (None: the challenger scores). A pure decision."""
    if challenger is None:
        return "no challenger held (no version carries the alias, or it is still loading)"
    if production is not None and challenger.version == production.version:
        return f"the challenger v{challenger.version} is the production version: nothing to compare"
    return None


def sampled(count: int, share: float, draw: Callable[[], float]) -> list[bool]:
    """Which of ``count`` requests the shadow takes: each one with probability ``share``."""
    if share >= 1.0:
        return [True] * count
    if share <= 0.0:
        return [False] * count
    return [draw() < share for _ in range(count)]


class ShadowScorer:
    """The shadow: sampled rows in (:meth:`offer`), scored and written by one thread."""

    def __init__(
        self,
        ledger_url: str,
        registry: CollectorRegistry,
        get_challenger: Callable[[], LoadedModel | None],
        *,
        alias: str,
        sample: float,
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        timeout_seconds: float,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.ledger_url = ledger_url
        self.metrics = ShadowMetrics(registry)
        self.get_challenger = get_challenger
        self.alias = alias
        self.sample = sample
        self.buffer = RowBuffer(capacity)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.timeout_seconds = timeout_seconds
        self.draw = draw
        self.engine: Engine | None = None
        self.migrated = False
        self.scored = 0
        self.failures = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.last_error: str | None = None  # the ledger's, cleared once a write succeeds
        self.last_failure: str | None = None  # the challenger's last failure, kept
        self.idle_reason: str | None = shadow_state(None, None)
        self._last_report = 0.0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> None:
        self.engine = make_engine(self.ledger_url, self.timeout_seconds)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Score and write what is queued (within ``timeout``), then stop."""
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.engine is not None:
            self.engine.dispose()

    # --- the predict worker's side: O(rows), never blocks ---
    def offer(
        self,
        production: LoadedModel,
        request_ids: Sequence[str],
        records: Sequence[list[dict[str, Any]]],
        paid: Sequence[list[float]],
    ) -> None:
        """Queue a sample of the requests just answered (their records and the prices paid)."""
        challenger = self.get_challenger()
        self.idle_reason = shadow_state(challenger, production)
        if self.idle_reason is not None:
            return
        at = dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        taken = sampled(len(request_ids), self.sample, self.draw)
        for keep, request_id, batch, prices in zip(taken, request_ids, records, paid, strict=True):
            if keep:
                rows += [
                    {
                        "request_id": request_id,
                        "row_index": index,
                        "production_version": production.version,
                        "predicted_at": at,
                        "production_price": price,
                        "record": record,
                    }
                    for index, (record, price) in enumerate(zip(batch, prices, strict=True))
                ]
        if rows:
            dropped = self.buffer.offer(rows)
            if dropped:
                self._lost("queue_full", dropped, "the shadow scorer is behind")
        self.metrics.queue.set(len(self.buffer))

    def status(self, production: LoadedModel | None) -> dict[str, Any]:
        """/model's ``shadow``: which version, how much is sampled, and what became of it."""
        challenger = self.get_challenger()
        self.idle_reason = shadow_state(challenger, production)
        return {
            "enabled": True,
            "alias": self.alias,
            "challenger_version": challenger.version if challenger is not None else None,
            "scoring": self.idle_reason is None,
            "idle_reason": self.idle_reason,
            "sample": self.sample,
            "queue_rows": self.buffer.capacity,
            "queued": len(self.buffer),
            "scored": self.scored,
            "dropped": dict(self.dropped),
            "failures": self.failures,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }

    # --- the shadow's thread ---
    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            rows = self.buffer.take(self.batch_rows, 0.0 if stopping else self.flush_seconds)
            self.metrics.queue.set(len(self.buffer))
            if rows:
                try:
                    self._score_and_write(rows)
                except Exception as exc:  # never let the thread die; these rows are lost
                    log.exception("shadow.crashed", error=describe(exc))
                    self._lost("db_error", len(rows), describe(exc))
            elif stopping:
                return

    def _score_and_write(self, rows: list[dict[str, Any]]) -> None:
        challenger = self.get_challenger()
        if challenger is None:
            self._lost("no_challenger", len(rows), "the challenger is no longer held")
            return
        scored = self._score(challenger, rows)
        if scored:
            self._write(scored)

    def _score(self, challenger: LoadedModel, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ledger rows of the rows the challenger scored; failures counted, never raised.

        One predict call for the batch; if it fails, one per request, so a request the
        challenger cannot score costs only its own rows.
        """
        try:
            prices = [challenger.predict([row["record"] for row in rows])]
            groups = [rows]
        except Exception:
            groups = [list(g) for _, g in itertools.groupby(rows, key=lambda r: r["request_id"])]
            prices = []
            for group in groups:
                try:
                    prices.append(challenger.predict([row["record"] for row in group]))
                except Exception as exc:
                    prices.append(None)
                    self._failed(len(group), challenger.version, describe(exc))
        out: list[dict[str, Any]] = []
        for group, found in zip(groups, prices, strict=True):
            if found is None:
                continue
            finite = np.isfinite(found)
            if not finite.all():
                self._failed(int((~finite).sum()), challenger.version, "non-finite prices")
            for row, price, ok in zip(group, cents(found), finite.tolist(), strict=True):
                if ok and math.isfinite(price):
                    out.append(
                        {
                            "request_id": row["request_id"],
                            "row_index": row["row_index"],
                            "model_name": challenger.name,
                            "production_version": row["production_version"],
                            "challenger_version": challenger.version,
                            "predicted_at": row["predicted_at"],
                            "production_price": row["production_price"],
                            "challenger_price": price,
                        }
                    )
        return out

    def _write(self, rows: list[dict[str, Any]]) -> None:
        assert self.engine is not None
        try:
            if not self.migrated:
                migrate(self.engine)
                self.migrated = True
            with self.engine.begin() as connection:
                connection.execute(insert(ShadowPrediction.__table__), rows)
        except Exception as exc:
            self.last_error = describe(exc)
            self._lost("db_error", len(rows), self.last_error)
            if not self._stop.is_set():
                self._stop.wait(min(self.flush_seconds, 1.0))  # do not spin on a dead ledger
            return
        self.last_error = None
        self.scored += len(rows)
        self.metrics.scored.inc(len(rows))

    # --- losses: counted always, logged at most every REPORT_INTERVAL ---
    def _failed(self, count: int, version: str, error: str) -> None:
        self.metrics.failures.inc(count)
        with self._count_lock:
            self.failures += count
        self.last_failure = f"v{version}: {error}"
        if self._may_report():
            log.warning(
                "shadow.challenger_failed",
                challenger_version=version,
                rows=count,
                failures_total=self.failures,
                error=error,
                consequence="answers are unaffected (they come from production); these rows "
                "have no shadow prediction",
            )

    def _lost(self, reason: str, count: int, error: str) -> None:
        self.metrics.dropped.labels(reason).inc(count)
        with self._count_lock:
            self.dropped[reason] += count
        if self._may_report():
            log.warning(
                "shadow.rows_dropped",
                reason=reason,
                rows=count,
                dropped_total=dict(self.dropped),
                error=error,
                consequence="answers are unaffected; these rows are not compared",
            )

    def _may_report(self) -> bool:
        with self._count_lock:
            now = time.monotonic()
            if now - self._last_report < REPORT_INTERVAL:
                return False
            self._last_report = now
            return True
