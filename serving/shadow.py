"""Shadow scoring: the challenger scores a sample of live requests, off the request path.

With ``SERVING_SHADOW=true`` the watcher holds the version carrying the challenger alias
(``challenger`` unless ``SERVING_CHALLENGER_ALIAS`` says otherwise; train sets it on every
version it registers). After each predict call the predict worker offers a sampled share
(``SERVING_SHADOW_SAMPLE``) of the requests it just answered to a bounded buffer
(``SERVING_SHADOW_QUEUE`` rows; one lock, never blocks); when it is full the rows are dropped
and counted. One thread of its own (:class:`serving.ledger_writer.LedgerWriter`, as the
inference log's) takes them in batches, scores them with the challenger (its fast path, one call per batch) and writes
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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from serving.answers import cents
from serving.errors import describe
from serving.ledger_writer import LedgerWriter, Reporter, WriterSeries
from serving.state import LoadedModel
from tasks.core.ledger import ShadowPrediction

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

    def series(self) -> WriterSeries:
        return WriterSeries(self.queue, self.scored, self.dropped)


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


class ShadowScorer(LedgerWriter):
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
        self.metrics = ShadowMetrics(registry)
        super().__init__(
            "shadow",
            ShadowPrediction.__table__,
            ledger_url,
            self.metrics.series(),
            capacity=capacity,
            batch_rows=batch_rows,
            flush_seconds=flush_seconds,
            timeout_seconds=timeout_seconds,
            reasons=DROP_REASONS,
            consequence="answers are unaffected; these rows are not compared",
        )
        self.get_challenger = get_challenger
        self.alias = alias
        self.sample = sample
        self.draw = draw
        self.failures = 0
        self.last_failure: str | None = None  # the challenger's last failure, kept
        self.idle_reason: str | None = shadow_state(None, None)
        self._failure_reporter = Reporter()
        self._failure_lock = threading.Lock()

    @property
    def scored(self) -> int:
        """Rows the challenger scored and the ledger recorded."""
        return self.written

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
        self.queue(rows)

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
    def handle(self, rows: list[dict[str, Any]]) -> None:
        """Score a batch with the challenger held now, and write what it scored."""
        challenger = self.get_challenger()
        if challenger is None:
            self.lost("no_challenger", len(rows), "the challenger is no longer held")
            return
        scored = self._score(challenger, rows)
        if scored:
            self.write(scored)

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

    # --- the challenger's failures: counted always, logged at most every REPORT_INTERVAL ---
    def _failed(self, count: int, version: str, error: str) -> None:
        self.metrics.failures.inc(count)
        with self._failure_lock:
            self.failures += count
        self.last_failure = f"v{version}: {error}"
        if self._failure_reporter.due():
            self.log.warning(
                "shadow.challenger_failed",
                challenger_version=version,
                rows=count,
                failures_total=self.failures,
                error=error,
                consequence="answers are unaffected (they come from production); these rows "
                "have no shadow prediction",
            )
