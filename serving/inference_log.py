"""The inference log: every prediction goes to the ledger's ``inference_log`` table.

Never on the request path: the predict worker offers rows to a bounded buffer and one writer
thread inserts them in batches (:class:`serving.ledger_writer.LedgerWriter`). When the buffer is
full (the writer is behind or the ledger is down) new rows are dropped; when an insert fails its
rows are dropped too. Either way the loss is counted
(``realtor_inference_log_rows_dropped_total{reason}``) and logged, and predictions go on. The
writer's connections have bounded connect and statement timeouts, so nothing hangs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from serving.ledger_writer import LedgerWriter, WriterSeries
from serving.metrics import ServingMetrics
from tasks.core.ledger import InferenceLog


def log_rows(
    model_name: str,
    model_version: str,
    request_id: str,
    records: Iterable[dict[str, Any]],
    prices: Iterable[float],
    at: dt.datetime,
) -> list[dict[str, Any]]:
    """Rows of ``inference_log`` for one request's predictions."""
    return [
        {
            "request_id": request_id,
            "row_index": index,
            "model_name": model_name,
            "model_version": model_version,
            "predicted_at": at,
            "price": float(price),
            "features": {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in record.items()
            },
        }
        for index, (record, price) in enumerate(zip(records, prices, strict=True))
    ]


class InferenceLogWriter(LedgerWriter):
    """The writer thread: buffer -> ``inference_log`` in batches; losses counted, never raised."""

    def __init__(
        self,
        ledger_url: str,
        metrics: ServingMetrics,
        *,
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        timeout_seconds: float,
    ) -> None:
        super().__init__(
            "inference_log",
            InferenceLog.__table__,
            ledger_url,
            WriterSeries(
                metrics.inference_queue, metrics.inference_logged, metrics.inference_dropped
            ),
            capacity=capacity,
            batch_rows=batch_rows,
            flush_seconds=flush_seconds,
            timeout_seconds=timeout_seconds,
            consequence="predictions still served; these rows are missing from the inference log",
        )

    def offer(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows for the ledger (called on the predict worker; never blocks)."""
        self.queue(rows)

    def status(self) -> dict[str, Any]:
        return {
            "queued": len(self.buffer),
            "written": self.written,
            "dropped": dict(self.dropped),
            "last_error": self.last_error,
        }
